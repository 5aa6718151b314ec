"""The settings of one load-test run, as parsed from the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_TARGET = "http://127.0.0.1:8888"
DEFAULT_REPORT = Path("reports/loadtest.html")


@dataclass(frozen=True)
class Config:
    """Everything that shapes a run; see ``python -m loadtest --help``."""

    target: str = DEFAULT_TARGET
    users: int = 10
    duration: float = 30.0
    ramp: float = 2.0
    think: float = 0.1
    actions: int = 20
    new_connection_every: int = 3
    timeout: float = 15.0
    grace: float = 20.0
    fetch_limit: int = 1000
    session_cookie: str = "sid"
    seed: int | None = None
    report: Path | None = DEFAULT_REPORT
    json: Path | None = None
    max_error_rate: float = 0.0
    max_violations: int = 0
    require_sharing: bool = False
    progress: str = "auto"  # "auto", "tty", "lines" or "off"
    progress_interval: float | None = None
    max_users_shown: int = 50

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("report", "json"):
            data[key] = None if data[key] is None else str(data[key])
        return data
