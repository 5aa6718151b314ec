"""What a run produced, in one object that the checks and the reports read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from loadtest.checks import ViolationLog
from loadtest.config import Config
from loadtest.sharing import SharingLog
from loadtest.stats import RunStats


@dataclass(frozen=True)
class UserSummary:
    """One virtual user at the end of the run."""

    index: int
    email: str
    sessions: int
    home_visits: int
    statuses_posted: int
    finished: bool


@dataclass
class RunResult:
    """Measurements, the sharing log and the violations of one run."""

    config: Config
    run_id: str
    started_at: str  # wall-clock start, ISO 8601
    elapsed: float  # seconds from start to the last user stopping
    stats: RunStats
    sharing: SharingLog
    violations: ViolationLog
    users: list[UserSummary] = field(default_factory=list)
    unfinished: int = 0  # users still running when the grace period ran out
    crashes: list[str] = field(default_factory=list)  # unexpected exceptions in users
    interrupted: bool = False  # stopped early with Ctrl-C

    @property
    def throughput(self) -> float:
        """Completed requests per second over the whole run."""
        return self.stats.requests / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.stats.errors / self.stats.requests if self.stats.requests else 0.0

    def user_summaries_json(self) -> list[dict[str, object]]:
        per_user = self.sharing.per_user
        rows = []
        for user in self.users:
            row: dict[str, object] = asdict(user)
            row["served_by"] = dict(per_user[user.index])
            row["process_count"] = len(per_user[user.index])
            rows.append(row)
        return rows
