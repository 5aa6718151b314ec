#!/usr/bin/env bash
# Create the virtual environment and install the pinned dependencies into it, with their
# hashes checked, but only when the lock file changed since the last install.
#
#   scripts/ensure-python.sh [LOCK]    LOCK: requirements-dev.txt (default: runtime, test
#                                      and lint) or requirements.txt (runtime only)
#
# The app itself is not installed: it runs from its checkout (README, "Dependencies").
#
# Environment:
#   VENV     where the virtual environment lives (default: .venv in the repository root)
#   PYTHON3  the interpreter that creates it (default: python3; 3.11 or newer)
#
# The stamp file $VENV/.installed-<LOCK> holds a hash of that lock file and the
# interpreter; it is written only after a successful install.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
LOCK="${1:-requirements-dev.txt}"
[[ -f "$LOCK" ]] || die "no lock file $LOCK (make lock writes it from setup.cfg)"
VENV="${VENV:-.venv}"
[[ "$VENV" = /* ]] || VENV="$REPO_ROOT/$VENV"
PYTHON3="${PYTHON3:-python3}"
VENV_PY="$VENV/bin/python"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

stamp_of() { printf '%s/.installed-%s' "$VENV" "$(basename "$1")"; }

wanted_stamp() {
    # The venv's own interpreter is part of the stamp: a venv rebuilt on another Python
    # reinstalls.
    {
        sha256sum "$1"
        readlink -f "$VENV_PY" 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
}

current() { [[ -f "$(stamp_of "$1")" && "$(cat "$(stamp_of "$1")")" == "$(wanted_stamp "$1")" ]]; }

# Fast path: the venv runs and this lock (or the development lock, which pins a superset
# at the same versions: `make lock` compiles requirements.txt with it as constraints) is
# installed as it is now.
if [[ -x "$VENV_PY" ]] && { current "$LOCK" || current requirements-dev.txt; }; then
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
fi

# Earlier versions installed the app itself (editable); it runs from the checkout now.
if "$VENV_PY" -m pip show -q tornado-redis-sessions-app >/dev/null 2>&1; then
    "$VENV_PY" -m pip uninstall -q -y tornado-redis-sessions-app
    say "removed the old editable install of the app from $VENV"
fi

# Every file pip downloads must match a hash in the lock, and every package must be pinned.
"$VENV_PY" -m pip install -q --require-hashes -r "$LOCK"
# setuptools stays below 82 (the `test` extra pins it): pytest-tornado needs pkg_resources.
"$VENV_PY" - <<'PY' || die "pytest-tornado is installed but pkg_resources is not (setuptools must stay <82)"
import importlib.util, sys
if importlib.util.find_spec("pytest_tornado") and not importlib.util.find_spec("pkg_resources"):
    sys.exit(1)
PY
rm -f "$VENV/.installed" # the stamp of earlier versions
wanted_stamp "$LOCK" >"$(stamp_of "$LOCK")"
say "installed $LOCK into $VENV"
