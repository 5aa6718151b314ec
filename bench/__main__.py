"""Entry point of ``python -m bench`` (``make bench``)."""

import sys

from bench.cli import main

sys.exit(main())
