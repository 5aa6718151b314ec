"""Pass or fail: the thresholds of the run applied to its result."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtest.result import RunResult


@dataclass(frozen=True)
class Verdict:
    """``passed`` and, when not, one sentence per reason."""

    passed: bool
    failures: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def evaluate(result: RunResult) -> Verdict:
    """Apply ``--max-violations``, ``--max-error-rate`` and ``--require-sharing``."""
    config = result.config
    failures: list[str] = []

    violations = result.violations
    if violations.total > config.max_violations:
        kinds = ", ".join(f"{n} {kind}" for kind, n in violations.counts.most_common())
        failures.append(
            f"{violations.total} correctness violation(s), {config.max_violations} allowed: {kinds}"
        )

    stats = result.stats
    if stats.requests == 0:
        failures.append("no request completed")
    elif result.error_rate > config.max_error_rate:
        top = ", ".join(f"{n}x {kind}" for kind, n in stats.error_kinds.most_common(5))
        failures.append(
            f"{stats.errors} of {stats.requests} requests failed ({result.error_rate:.2%}), "
            f"{config.max_error_rate:.2%} allowed (--max-error-rate): {top}"
        )

    if result.unfinished:
        failures.append(
            f"{result.unfinished} user(s) were stopped before finishing (the {config.grace:g}s "
            f"grace period ran out, or a second Ctrl-C); their last checks did not run"
        )
    for crash in result.crashes:
        failures.append(f"a virtual user crashed: {crash}")

    if config.require_sharing:
        summary = result.sharing.summary()
        if summary.sessions_shared == 0:
            failures.append(
                f"no session was served by more than one process "
                f"({len(summary.processes)} process(es) seen; --require-sharing)"
            )
    return Verdict(not failures, failures)
