"""The size limits are stated once (``limits.py``): forms, README and nginx follow it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import limits

ROOT = Path(__file__).resolve().parents[2]


def test_no_form_field_carries_its_own_length() -> None:
    for template in (ROOT / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"(max|min)length=\"\d", text), template.name
        assert not re.search(r"\(\d+ characters or more\)", text), template.name


def test_the_readme_states_the_limits_of_limits_py() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    stated = (
        f"name up to {limits.MAX_NAME} characters, e-mail up to {limits.MAX_EMAIL}, "
        f"password {limits.MIN_PASSWORD_CHARS} characters to {limits.MAX_PASSWORD_BYTES} "
        f"bytes, status 1 to {limits.MAX_STATUS} characters, request body "
        f"{limits.MAX_BODY_BYTES // 1024} KB"
    )
    assert stated in readme


def test_nginx_refuses_bodies_over_the_apps_limit() -> None:
    spec = importlib.util.spec_from_file_location(
        "render_nginx_conf", ROOT / "deploy" / "render-nginx-conf.py"
    )
    assert spec is not None and spec.loader is not None
    renderer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(renderer)
    assert renderer._app_max_body() == str(limits.MAX_BODY_BYTES)
    assert "client_max_body_size @MAX_BODY@;" in (ROOT / "deploy" / "nginx.conf").read_text()
