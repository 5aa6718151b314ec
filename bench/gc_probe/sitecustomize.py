"""Garbage-collector time per process, for a benchmark run: not part of the app.

Put this directory on ``PYTHONPATH`` and every Python process started with it (the
benchmark, the hello world, the app's workers) counts its collections per generation
and the CPU time spent in them (``time.thread_time``, so time the process was not
running is not counted), and rewrites ``<GC_PROBE_DIR>/gc.<pid>`` every 2 s:

    GC_PROBE_DIR=/tmp/gc PYTHONPATH=bench/gc_probe python -m bench --only session --rounds 1

Each file holds one line: the command, collections and seconds per generation, and the
process's CPU seconds so far. Python imports ``sitecustomize`` at start-up by itself.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
from typing import Any

_DIR = os.environ.get("GC_PROBE_DIR") or tempfile.gettempdir()
_seconds = [0.0, 0.0, 0.0]
_counts = [0, 0, 0]
_started = [0.0]
_written = [time.monotonic()]


def _note(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
        return
    generation = info["generation"]
    _seconds[generation] += time.thread_time() - _started[0]
    _counts[generation] += 1
    now = time.monotonic()
    if now - _written[0] < 2:
        return
    _written[0] = now
    command = " ".join(os.path.basename(arg) for arg in sys.argv[:2])
    line = (
        f"{command}: collections {_counts} seconds {[round(s, 3) for s in _seconds]} "
        f"cpu {time.process_time():.2f}\n"
    )
    with open(os.path.join(_DIR, f"gc.{os.getpid()}"), "w") as out:
        out.write(line)


gc.callbacks.append(_note)
