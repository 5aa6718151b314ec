"""Configuration: options and their environment variables, cookie secrets, ``--help``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from tornado.options import OptionParser

import settings
from tests.support.server_process import REPO_ROOT

ISSUE_OPTIONS = [
    "port",
    "address",
    "processes",
    "redis_url",
    "mysql_url",
    "cookie_secret",
    "session_idle_timeout",
    "session_absolute_timeout",
    "bcrypt_rounds",
    "worker_threads",
    "xheaders",
    "debug",
]


def test_help_lists_every_option():
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "server.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    text = out.stdout + out.stderr
    for name in ISSUE_OPTIONS:
        assert f"--{name.replace('_', '-')}" in text, name
    assert "(default 1800)" in text and "(default 28800)" in text and "(default 12)" in text


def make_parser() -> OptionParser:
    parser = OptionParser()
    parser.define("redis_url", default="redis://default")
    parser.define("session_idle_timeout", default=1800, type=int)
    parser.define("xheaders", default=False, type=bool)
    return parser


def test_environment_sets_options_and_command_line_wins():
    parser = make_parser()
    settings.apply_environment(
        parser,
        {
            "APP_REDIS_URL": "redis://from-env",
            "APP_SESSION_IDLE_TIMEOUT": "60",
            "APP_XHEADERS": "true",
            "OTHER": "x",
        },
    )
    assert parser.redis_url == "redis://from-env"
    assert parser.session_idle_timeout == 60 and parser.xheaders is True
    parser.parse_command_line(["server.py", "--redis_url=redis://from-argv"])
    assert parser.redis_url == "redis://from-argv"
    assert parser.session_idle_timeout == 60


def test_bad_environment_value_is_a_clear_error():
    with pytest.raises(ValueError, match="APP_SESSION_IDLE_TIMEOUT='soon'"):
        settings.apply_environment(make_parser(), {"APP_SESSION_IDLE_TIMEOUT": "soon"})


def test_secrets_single_and_versioned():
    assert settings.parse_secrets("s" * 32) == {1: "s" * 32}
    assert settings.parse_secrets(f"1:{'a' * 32}, 3:{'b' * 32}\n") == {1: "a" * 32, 3: "b" * 32}
    with pytest.raises(ValueError, match="shorter"):
        settings.parse_secrets("short")
    with pytest.raises(ValueError, match="VERSION:SECRET"):
        settings.parse_secrets(f"{'a' * 32} {'b' * 32}")
    with pytest.raises(ValueError):
        settings.parse_secrets("   ")


def test_secret_file_is_generated_once_owner_only(tmp_path):
    path = tmp_path / "var" / "cookie_secret"
    first = settings.load_cookie_secrets("", str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert settings.load_cookie_secrets("", str(path)) == first  # restarts agree
    assert len(first[1]) >= 32
    assert settings.load_cookie_secrets("x" * 40, str(path)) == {1: "x" * 40}  # option wins


def test_secret_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "secret"
    path.write_text("1:" + "z" * 40)
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        settings.load_cookie_secrets("", str(path))


def test_server_reports_a_bad_environment_variable(tmp_path):
    env = {**os.environ, "APP_PORT": "eighty"}
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "server.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "APP_PORT='eighty'" in out.stderr and "Traceback" not in out.stderr


def test_server_refuses_bad_configuration_with_a_message(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "server.py"),
            "--bcrypt_rounds=3",
            f"--cookie_secret_file={tmp_path / 's'}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "bcrypt_rounds must be between 4 and 31" in out.stderr
