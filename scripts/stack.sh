#!/usr/bin/env bash
# Run the whole stack locally, in the foreground: server.py (forked processes, --xheaders)
# behind nginx. Ctrl-C or SIGTERM stops both cleanly; if either dies, the other is stopped.
#
#   scripts/stack.sh [OPTIONS] [-- SERVER_OPTIONS...]      (make stack STACK_ARGS='...')
#
#   --port N          nginx port (env STACK_PORT, default 8080)
#   --listen ADDR     nginx address (env STACK_LISTEN, default 127.0.0.1)
#   --app-port N      first app port (env STACK_APP_PORT, default 8888)
#   --processes N     forked processes per app instance, 0 = one per core
#                     (env STACK_PROCESSES, default 0)
#   --instances N     run N single-process app instances on ports APP_PORT..APP_PORT+N-1
#                     instead of one forked server; nginx balances them per request
#                     (env STACK_INSTANCES, default 1)
#   --var-dir DIR     where the rendered nginx config, its logs and temp files go
#                     (env STACK_VAR_DIR, default var/nginx)
#   -h, --help        this text
# Everything after `--` goes to server.py (e.g. -- --debug --redis_url=redis://...); the
# APP_* environment variables reach server.py as usual.
#
# Prerequisites (what `make stack` does first): the virtual environment (make venv), Redis
# and MariaDB with the app's database (make db), and nginx (scripts/ensure-nginx.sh).
# Files: var/nginx/nginx.conf (rendered from deploy/nginx.conf), var/nginx/logs/.
# The servers get their own process groups; nothing is left running when this exits.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NGINX_PORT="${STACK_PORT:-8080}"
NGINX_LISTEN="${STACK_LISTEN:-127.0.0.1}"
APP_FIRST_PORT="${STACK_APP_PORT:-8888}"
PROCESSES="${STACK_PROCESSES:-0}"
INSTANCES="${STACK_INSTANCES:-1}"
VAR="${STACK_VAR_DIR:-}"
SERVER_ARGS=()

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (try --help)"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) need_value "$@"; NGINX_PORT="$2"; shift 2 ;;
        --port=*) NGINX_PORT="${1#*=}"; shift ;;
        --listen) need_value "$@"; NGINX_LISTEN="$2"; shift 2 ;;
        --listen=*) NGINX_LISTEN="${1#*=}"; shift ;;
        --app-port) need_value "$@"; APP_FIRST_PORT="$2"; shift 2 ;;
        --app-port=*) APP_FIRST_PORT="${1#*=}"; shift ;;
        --processes) need_value "$@"; PROCESSES="$2"; shift 2 ;;
        --processes=*) PROCESSES="${1#*=}"; shift ;;
        --instances) need_value "$@"; INSTANCES="$2"; shift 2 ;;
        --instances=*) INSTANCES="${1#*=}"; shift ;;
        --var-dir) need_value "$@"; VAR="$2"; shift 2 ;;
        --var-dir=*) VAR="${1#*=}"; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; SERVER_ARGS=("$@"); break ;;
        *) die "unknown argument '$1' (try --help; server.py options go after --)" ;;
    esac
done

is_number() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_port() { is_number "$1" && (($1 > 0 && $1 < 65536)); }
is_port "$NGINX_PORT" || die "bad nginx port '$NGINX_PORT'"
is_port "$APP_FIRST_PORT" || die "bad app port '$APP_FIRST_PORT'"
is_number "$PROCESSES" || die "bad process count '$PROCESSES'"
if ! is_number "$INSTANCES" || ((INSTANCES < 1)); then
    die "bad instance count '$INSTANCES'"
fi
if ((INSTANCES > 1)); then
    PROCESSES=1
fi

cd "$REPO_ROOT"
VENV="${VENV:-.venv}"
[[ "$VENV" = /* ]] || VENV="$REPO_ROOT/$VENV"
PY="$VENV/bin/python"
[[ -x "$PY" ]] || die "no virtual environment at $VENV: run 'make venv' (or 'make stack')"
[[ -f server.py ]] || die "server.py is missing from $REPO_ROOT"
NGINX_BIN="$(bash scripts/ensure-nginx.sh --print)"

VAR="${VAR:-$REPO_ROOT/var/nginx}"
[[ "$VAR" = /* ]] || VAR="$REPO_ROOT/$VAR"
CONF="$VAR/nginx.conf"
APP_PORTS=()
for ((i = 0; i < INSTANCES; i++)); do
    APP_PORTS+=("$((APP_FIRST_PORT + i))")
done

# --- render and check the nginx config ---------------------------------------------------
render_args=(--prefix "$VAR" --output "$CONF" --listen "$NGINX_LISTEN:$NGINX_PORT"
    --static-root "$REPO_ROOT/static")
# Started by root, nginx would run its workers as `nobody`, who may not be able to read
# a checkout under a private home directory: locally they run as the checkout's owner,
# like the app (as any other user, nginx runs its workers as that user anyway).
if is_root; then
    render_args+=(--user "$(stat -c '%U %G' "$REPO_ROOT")")
fi
for port in "${APP_PORTS[@]}"; do
    render_args+=(--upstream "127.0.0.1:$port")
done
"$PY" deploy/render-nginx-conf.py "${render_args[@]}"
NGINX_CMD=("$NGINX_BIN" -e stderr -p "$VAR" -c "$CONF")
"${NGINX_CMD[@]}" -t -q || die "nginx rejected $CONF"

# --- process management ------------------------------------------------------------------
# Job control gives every background job its own process group, so a Ctrl-C in the
# terminal reaches only this script, which then stops the servers in order.
set -m
APP_PIDS=()
NGINX_PID=""
STOPPING=0

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# wait_gone PID SECONDS: true once PID has exited (and been reaped).
wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

# clean_group PGID: once a job's leader is gone, make sure nothing of its process group
# is left (nginx workers outlive a master that was killed; so do server.py's children).
clean_group() {
    [[ -n "$1" ]] && kill -0 -- "-$1" 2>/dev/null || return 0
    kill -TERM -- "-$1" 2>/dev/null || true
    sleep 0.5
    kill -KILL -- "-$1" 2>/dev/null || true
}

stop_all() {
    ((STOPPING)) && return 0
    STOPPING=1
    trap '' INT TERM HUP
    # nginx first: stop accepting, let the requests it is proxying finish (SIGQUIT is
    # nginx's graceful shutdown); then SIGTERM to each server.py parent, which stops its
    # children and lets their in-flight requests finish within 10 s.
    if alive "$NGINX_PID"; then
        say "stopping nginx (pid $NGINX_PID)"
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
    fi
    local pid
    for pid in "${APP_PIDS[@]}"; do
        if alive "$pid"; then
            say "stopping server.py (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    if alive "$NGINX_PID" && ! wait_gone "$NGINX_PID" 15; then
        warn "nginx did not stop within 15 s: killing it"
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait_gone "$NGINX_PID" 5 || true
    fi
    for pid in "${APP_PIDS[@]}"; do
        if alive "$pid" && ! wait_gone "$pid" 15; then
            warn "server.py (pid $pid) did not stop within 15 s: killing its process group"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5 || true
        fi
    done
    clean_group "$NGINX_PID"
    for pid in "${APP_PIDS[@]}"; do
        clean_group "$pid"
    done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all; exit 129' HUP
trap 'stop_all' EXIT

# wait_http URL SECONDS PID: poll URL until it answers 200; fail early if PID exits.
wait_http() {
    "$PY" - "$@" <<'EOF'
import os, sys, time, urllib.error, urllib.request
url, limit, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"process {pid} exited before {url} answered")
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                sys.exit(0)
    except (OSError, urllib.error.URLError):
        pass
    time.sleep(0.2)
sys.exit(f"{url} did not answer 200 within {limit:.0f} s")
EOF
}

for port in "${APP_PORTS[@]}"; do
    "$PY" server.py "--port=$port" --address=127.0.0.1 "--processes=$PROCESSES" --xheaders \
        "${SERVER_ARGS[@]}" </dev/null &
    APP_PIDS+=("$!")
done
for i in "${!APP_PORTS[@]}"; do
    wait_http "http://127.0.0.1:${APP_PORTS[$i]}/healthz" 60 "${APP_PIDS[$i]}" ||
        die "server.py on port ${APP_PORTS[$i]} did not become healthy (see its output above)"
done

"${NGINX_CMD[@]}" -g 'daemon off;' </dev/null &
NGINX_PID=$!
wait_http "http://$NGINX_LISTEN:$NGINX_PORT/healthz" 20 "$NGINX_PID" ||
    die "nginx did not answer on $NGINX_LISTEN:$NGINX_PORT (log: $VAR/logs/error.log)"

desc="$PROCESSES process(es)"
[[ "$PROCESSES" == 0 ]] && desc="one process per core"
say "stack up: http://$NGINX_LISTEN:$NGINX_PORT  (nginx pid $NGINX_PID, logs in $VAR/logs)"
say "  -> server.py on 127.0.0.1, port(s) ${APP_PORTS[*]}, --xheaders, $desc each (pids ${APP_PIDS[*]})"
say "Ctrl-C stops both."

# Run until a signal arrives or one of the servers exits on its own.
while true; do
    status=0
    wait -n "$NGINX_PID" "${APP_PIDS[@]}" || status=$?
    if ! alive "$NGINX_PID"; then
        warn "nginx exited (status $status); stopping the app"
        stop_all
        exit 1
    fi
    for pid in "${APP_PIDS[@]}"; do
        if ! alive "$pid"; then
            warn "server.py (pid $pid) exited (status $status); stopping the rest"
            stop_all
            exit 1
        fi
    done
done
