#!/usr/bin/env bash
# Make sure an nginx binary is available for `make stack` and the nginx integration test.
#
#   scripts/ensure-nginx.sh          silent, and instant, when nginx is already installed
#   scripts/ensure-nginx.sh --print  also print the path of the nginx binary
#
# Looks for $NGINX, then `nginx` on PATH, then /usr/sbin and /usr/local/sbin. When none is
# found and we run as root with apt-get, installs Debian's `nginx` package without
# recommends (on Debian 12 `nginx-light` is only a meta-package on top of it). The
# package's own service is kept from starting during the install and is never used: the
# project runs nginx itself with a config rendered from deploy/nginx.conf, never with
# /etc/nginx or the distribution's systemd unit. Otherwise it stops and says what to install.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_print_flag "$@"

find_nginx() {
    local candidate
    if [[ -n "${NGINX:-}" ]]; then
        printf '%s\n' "$NGINX"
        return 0
    fi
    for candidate in "$(command -v nginx 2>/dev/null || true)" \
        /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ -n "${NGINX:-}" ]] && [[ ! -x "$NGINX" || -d "$NGINX" ]]; then
    die "NGINX=$NGINX is not an executable file"
fi
if nginx_bin="$(find_nginx)"; then
    [[ "$PRINT" -eq 1 ]] && printf '%s\n' "$nginx_bin"
    exit 0
fi

if ! is_root || ! have apt-get; then
    die "nginx is not installed: install it with '$(install_hint nginx)' (Debian/Ubuntu; \
'dnf install nginx' on Fedora, 'brew install nginx' on macOS), or point NGINX at a binary. \
Only the binary is used: the project renders its own config from deploy/nginx.conf."
fi

# Keep the package's init script / systemd unit from starting nginx (with the default
# site on port 80) during the install: invoke-rc.d and deb-systemd-invoke ask
# policy-rc.d, and 101 means "action forbidden". An existing policy is left alone; ours
# is removed again on exit.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
# shellcheck disable=SC2317  # called by the EXIT trap
remove_policy() { if [[ "$created_policy" -eq 1 ]]; then rm -f "$POLICY"; fi; }
trap remove_policy EXIT
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# temporary, from scripts/ensure-nginx.sh: start no services\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    created_policy=1
fi

apt_install nginx
nginx_bin="$(find_nginx)" || die "the nginx package is installed but no nginx binary was found"
say "$("$nginx_bin" -v 2>&1) at $nginx_bin"
[[ "$PRINT" -eq 1 ]] && printf '%s\n' "$nginx_bin"
exit 0
