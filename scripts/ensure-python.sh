#!/usr/bin/env bash
# Create the virtual environment and install the project into it (editable, with the
# `test` extra), but only when setup.cfg or pyproject.toml changed since the last install.
#
# Environment:
#   VENV     where the virtual environment lives (default: .venv in the repository root)
#   PYTHON3  the interpreter that creates it (default: python3; 3.11 or newer)
#
# The stamp file $VENV/.installed holds a hash of setup.cfg, pyproject.toml and the
# interpreter version; it is written only after a successful install.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
VENV="${VENV:-.venv}"
[[ "$VENV" = /* ]] || VENV="$REPO_ROOT/$VENV"
PYTHON3="${PYTHON3:-python3}"
STAMP="$VENV/.installed"
VENV_PY="$VENV/bin/python"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

wanted_stamp() {
    # The venv's own interpreter version is part of the stamp: a venv rebuilt on another
    # Python reinstalls.
    {
        sha256sum setup.cfg pyproject.toml
        readlink -f "$VENV_PY" 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
}

# Fast path: venv interpreter present and the stamp matches.
if [[ -x "$VENV_PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$(wanted_stamp)" ]]; then
    exit 0
fi

ensure_base_python() {
    if ! have "$PYTHON3"; then
        if [[ "$PYTHON3" == python3 ]] && is_root && have apt-get; then
            apt_install python3 python3-venv
        fi
        have "$PYTHON3" ||
            die "$PYTHON3 not found: install Python 3.11 or newer ($(install_hint python3 python3-venv))"
    fi
    "$PYTHON3" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$PYTHON3 is $("$PYTHON3" -V 2>&1); the project needs Python 3.11 or newer (set PYTHON3=...)"
    # Debian splits ensurepip (needed by `python3 -m venv`) into the python3-venv package.
    if ! "$PYTHON3" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        local where
        where="$(readlink -f "$(command -v "$PYTHON3")")"
        if is_root && have apt-get && [[ "$where" == /usr/bin/* ]]; then
            apt_install python3-venv
        else
            die "the venv module of $PYTHON3 ($where) is missing: install python3-venv ($(install_hint python3-venv))"
        fi
    fi
}

# A venv whose interpreter no longer runs, or that has no pip, is rebuilt from scratch.
if [[ -d "$VENV" ]] && ! "$VENV_PY" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    say "removed broken virtual environment $VENV"
fi

if [[ ! -x "$VENV_PY" ]]; then
    ensure_base_python
    "$PYTHON3" -m venv "$VENV"
    say "created virtual environment $VENV ($("$VENV_PY" -V 2>&1))"
    "$VENV_PY" -m pip install -q --upgrade pip
    say "upgraded pip to $("$VENV_PY" -m pip --version | cut -d' ' -f2)"
fi

# setuptools stays below 82 (the `test` extra pins it): pytest-tornado needs pkg_resources.
"$VENV_PY" -m pip install -q -e '.[test]'
"$VENV_PY" - <<'EOF' || die "pytest-tornado is installed but pkg_resources is not (setuptools must stay <82)"
import importlib.util, sys
if importlib.util.find_spec("pytest_tornado") and not importlib.util.find_spec("pkg_resources"):
    sys.exit(1)
EOF
wanted_stamp >"$STAMP"
say "installed the project with its test extra into $VENV"
