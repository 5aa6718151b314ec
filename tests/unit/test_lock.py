"""The lock files pin what ``setup.cfg`` declares: every requirement, inside its range.

A dependency added to ``setup.cfg`` without ``make lock`` fails here, before anything
else runs, rather than as an import error somewhere in the suite.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def declared(*extras: str) -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += cfg["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def pinned(lock: str) -> dict[str, Version]:
    text = (ROOT / lock).read_text()
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text, re.M)
    return {canonicalize_name(name): Version(version) for name, version in found}


def test_every_line_of_the_locks_carries_a_hash() -> None:
    for lock in ("requirements.txt", "requirements-dev.txt"):
        text = (ROOT / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert len(blocks) == len(pinned(lock)), lock
        for block in blocks:
            assert re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", block), block
            assert "--hash=sha256:" in block, f"{lock}: no hash for {block.splitlines()[0]}"


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.txt", ()), ("requirements-dev.txt", ("test", "lint"))],
)
def test_the_lock_pins_every_declared_requirement_inside_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = pinned(lock)
    for requirement in declared(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is in setup.cfg but not in {lock}: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]} outside {requirement}: run make lock"
        )


def test_the_runtime_lock_is_the_tested_subset() -> None:
    runtime, dev = pinned("requirements.txt"), pinned("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
