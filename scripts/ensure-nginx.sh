#!/usr/bin/env bash
# Make sure an nginx binary is available for the local stack and the nginx test.
#
#   scripts/ensure-nginx.sh          # silent when nginx is already installed
#
# Looks for $NGINX, then `nginx` on PATH, then /usr/sbin/nginx and /usr/local/sbin/nginx.
# When none is found and we run as root on a Debian/Ubuntu machine, installs Debian's
# `nginx` package (the plain binary; bookworm's `nginx-light` is only a meta-package on
# top of it) without recommends. The package's own service is never started: the project
# runs nginx itself with a rendered config (deploy/render-nginx-conf.py), never with
# /etc/nginx's default site or the distribution's systemd unit.
#
# Otherwise it stops with a message saying what to install. Idempotent; prints nothing
# and returns at once when nginx is already there.
set -euo pipefail

find_nginx() {
    local candidate
    for candidate in "${NGINX:-}" "$(command -v nginx 2>/dev/null || true)" \
        /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

if find_nginx >/dev/null; then
    exit 0
fi

explain() {
    cat >&2 <<'EOF'
nginx is required (for `make stack` and the nginx integration test) but was not found.
Install it, then run this again:
  Debian/Ubuntu:  sudo apt-get install --no-install-recommends nginx
  Fedora/RHEL:    sudo dnf install nginx
  macOS:          brew install nginx
or point NGINX at an nginx binary: NGINX=/path/to/nginx
The project never uses the distribution's nginx service or /etc/nginx: it renders its own
config from deploy/nginx.conf and runs nginx with it.
EOF
    exit 1
}

if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    explain
fi

echo "ensure-nginx: installing Debian's nginx package" >&2

# Keep the package's init script / systemd unit from starting nginx (with the default
# site on port 80) during the install: the policy layer that invoke-rc.d and
# deb-systemd-invoke consult answers "101: action forbidden". An existing policy is
# left alone; ours is removed again on exit.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [[ "$created_policy" -eq 1 ]]; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# temporary, from scripts/ensure-nginx.sh\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    apt-get install -y -q --no-install-recommends nginx >&2
}
if ! apt_install; then
    # Package lists missing or stale (a fresh machine): refresh once and retry.
    apt-get update -q >&2
    apt_install
fi

if ! nginx_bin="$(find_nginx)"; then
    echo "ensure-nginx: nginx was installed but no binary was found" >&2
    explain
fi
echo "ensure-nginx: $("$nginx_bin" -v 2>&1) at $nginx_bin" >&2
