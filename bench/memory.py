"""Phase 4: resident memory (VmRSS) of each worker process after the load."""

from __future__ import annotations

from dataclasses import dataclass

from bench.procs import Server, rss_mb

RSS_TARGET_MB = 60.0


@dataclass(frozen=True)
class MemorySnapshot:
    label: str
    parent_mb: float
    workers_mb: list[tuple[int, float]]  # (pid, MiB)

    @property
    def max_mb(self) -> float:
        return max((mb for _, mb in self.workers_mb), default=0.0)

    @property
    def met(self) -> bool:
        return self.max_mb < RSS_TARGET_MB


def snapshot(label: str, server: Server) -> MemorySnapshot:
    workers = [(pid, rss_mb(pid)) for pid in server.workers()]
    snap = MemorySnapshot(label, rss_mb(server.proc.pid), workers)
    sizes = ", ".join(f"{mb:.1f}" for _, mb in workers)
    print(f"  {label:<40} workers {sizes} MiB (supervisor {snap.parent_mb:.1f} MiB)", flush=True)
    return snap
