# shellcheck shell=bash
# Shared helpers for the scripts in scripts/. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Defines REPO_ROOT and the functions say, warn, die, have, is_root, install_hint,
# apt_install, script_help and parse_print_flag.

# shellcheck disable=SC2034  # used by the scripts that source this file
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME="$(basename "${BASH_SOURCE[1]:-${0}}" .sh)"

# One short line about something the script did.
say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }

warn() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

die() {
    printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# How a person installs a Debian package on this machine (for messages).
install_hint() {
    if is_root; then
        printf 'apt-get install -y %s' "$*"
    else
        printf 'sudo apt-get install -y %s' "$*"
    fi
}

# apt_install PACKAGE...: install Debian packages non-interactively (root only).
# Runs `apt-get update` once per script run. apt's output goes to a log that is
# shown only when the install fails.
_APT_UPDATED=0
apt_install() {
    is_root || die "installing $* needs root: run '$(install_hint "$@")'"
    have apt-get || die "no apt-get here: install $* with the system's package manager"
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/apt-install.XXXXXX")"
    if [[ "$_APT_UPDATED" -eq 0 ]]; then
        if ! apt-get update -q >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            die "apt-get update failed (full log: $log)"
        fi
        _APT_UPDATED=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" </dev/null >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "apt-get install $* failed (full log: $log)"
    fi
    rm -f "$log"
    say "installed $* (apt-get)"
}

# The running script's header comment (from its second line to the first line that is
# not a comment), without the comment marks: its --help text.
script_help() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[-1]}"
}

# parse_print_flag "$@": no argument, or --print (PRINT=1: print the path found), or
# --help (the header comment); anything else stops the script.
parse_print_flag() {
    PRINT=0
    case "${1:-}" in
        "") ;;
        --print) PRINT=1 ;;
        -h | --help)
            script_help
            exit 0
            ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
}
