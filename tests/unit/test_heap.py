"""The worker's long-lived objects are kept out of the garbage collector's work
(``serving.settle_heap``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_settling_freezes_what_exists_and_raises_the_young_threshold() -> None:
    # In a child process: freezing is for the whole interpreter.
    script = (
        "import gc, serving\n"
        "before = gc.get_threshold()\n"
        "serving.settle_heap()\n"
        "print(gc.get_freeze_count(), *gc.get_threshold(), *before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, young, older, oldest, young_before, older_before, oldest_before = map(int, out)
    assert frozen > 1000  # the modules, and everything serving imported
    assert young == 10_000 > young_before
    assert (older, oldest) == (older_before, oldest_before)
