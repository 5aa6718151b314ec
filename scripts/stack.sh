#!/usr/bin/env bash
# Run the whole stack locally, in the foreground: server.py (forked processes, --xheaders,
# --reuse_port: nginx keeps its upstream connections alive, and one socket per worker is
# what spreads them over every worker)
# behind nginx, on one host or on several app hosts, with Redis as one server, a Redis
# Cluster or a Sentinel group. Ctrl-C or SIGTERM stops everything it started, by PID.
#
#   scripts/stack.sh [OPTIONS] [-- SERVER_OPTIONS...]      (make stack HOSTS=3 REDIS=cluster)
#
#   --port N          nginx port (env STACK_PORT, default 8080)
#   --listen ADDR     nginx address (env STACK_LISTEN, default 127.0.0.1)
#   --app-port N      first app port (env STACK_APP_PORT, default 8888)
#   --processes N     forked processes per app instance or host, 0 = one per core
#                     (env STACK_PROCESSES, default 0)
#   --instances N     run N single-process app instances on ports APP_PORT..APP_PORT+N-1
#                     instead of one forked server; nginx balances them per request
#                     (env STACK_INSTANCES, default 1)
#   --hosts N         N >= 2: N app hosts, each a server.py with --processes workers in a
#                     network namespace of its own (scripts/apphosts.py), all on APP_PORT,
#                     behind one nginx upstream; they reach Redis and MariaDB through a
#                     relay onto this machine's loopback. Without the privileges for
#                     namespaces: loopback addresses 127.0.0.2, ... (said in the output).
#                     A host that exits is reported; the stack runs on while one is left
#                     (env STACK_HOSTS, default 1: the app on 127.0.0.1 as usual)
#   --loopback        app hosts on loopback addresses even where namespaces would work
#                     (env STACK_LOOPBACK=1)
#   --redis KIND      single: the Redis of --redis_url (default 127.0.0.1:6379);
#                     cluster: a private 6-node Redis Cluster; sentinel: a private
#                     Sentinel group (1 primary, 1 replica, 3 sentinels); both on free
#                     loopback ports, started by scripts/redis_topology.py and stopped
#                     on exit (env STACK_REDIS, default single)
#   --var-dir DIR     where the rendered nginx config, its logs and temp files (and a
#                     started Redis topology) go (env STACK_VAR_DIR, default var/nginx)
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
HOSTS="${STACK_HOSTS:-1}"
LOOPBACK="${STACK_LOOPBACK:-0}"
REDIS_KIND="${STACK_REDIS:-single}"
VAR="${STACK_VAR_DIR:-}"
SERVER_ARGS=()

usage() { script_help; }

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
        --hosts) need_value "$@"; HOSTS="$2"; shift 2 ;;
        --hosts=*) HOSTS="${1#*=}"; shift ;;
        --loopback) LOOPBACK=1; shift ;;
        --redis) need_value "$@"; REDIS_KIND="$2"; shift 2 ;;
        --redis=*) REDIS_KIND="${1#*=}"; shift ;;
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
if ! is_number "$HOSTS" || ((HOSTS < 1 || HOSTS > 63)); then
    die "bad host count '$HOSTS' (1 to 63)"
fi
((HOSTS > 1 && INSTANCES > 1)) && die "--hosts and --instances do not combine: choose one"
case "$REDIS_KIND" in
    single | cluster | sentinel) ;;
    *) die "bad --redis '$REDIS_KIND' (single, cluster or sentinel)" ;;
esac
# The stores' URLs as server.py will see them: the command line wins over APP_*, and
# these are server.py's defaults (`server.py --help`).
REDIS_URL="${APP_REDIS_URL:-redis://127.0.0.1:6379/0}"
MYSQL_URL="${APP_MYSQL_URL:-mysql://root@127.0.0.1:3306/appdb}"
for arg in "${SERVER_ARGS[@]}"; do
    case "$arg" in
        --redis_url=*)
            [[ "$REDIS_KIND" == single ]] ||
                die "--redis $REDIS_KIND starts its own Redis: leave out --redis_url"
            REDIS_URL="${arg#*=}" ;;
        --mysql_url=*) MYSQL_URL="${arg#*=}" ;;
        --address=* | --port=* | --processes=*)
            die "give $arg as a stack.sh option (--app-port, --processes), not to server.py" ;;
    esac
done

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
HOSTS_PY=("$PY" "$REPO_ROOT/scripts/apphosts.py")

# --- process management ------------------------------------------------------------------
# Job control gives every background job its own process group, so a Ctrl-C in the
# terminal reaches only this script, which then stops the servers in order.
set -m
APP_PIDS=()     # one server.py parent per instance or host
APP_NAMES=()    # what each one is, for messages
NGINX_PID=""
RELAY_PID=""
RUN=""          # the app hosts' run (scripts/apphosts.py), when there is one
TOPOLOGY_DIR="" # a Redis topology started here, when there is one
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
    # children and lets their in-flight requests finish within 10 s; then the relay,
    # the hosts' namespaces and a Redis topology started here.
    if alive "$NGINX_PID"; then
        say "stopping nginx (pid $NGINX_PID)"
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
    fi
    local i pid
    for i in "${!APP_PIDS[@]}"; do
        pid="${APP_PIDS[$i]}"
        if alive "$pid"; then
            say "stopping ${APP_NAMES[$i]} (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    if alive "$NGINX_PID" && ! wait_gone "$NGINX_PID" 15; then
        warn "nginx did not stop within 15 s: killing it"
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait_gone "$NGINX_PID" 5 || true
    fi
    for i in "${!APP_PIDS[@]}"; do
        pid="${APP_PIDS[$i]}"
        if alive "$pid" && ! wait_gone "$pid" 15; then
            warn "${APP_NAMES[$i]} (pid $pid) did not stop within 15 s: killing its process group"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5 || true
        fi
    done
    clean_group "$NGINX_PID"
    for pid in "${APP_PIDS[@]}"; do
        clean_group "$pid"
    done
    if alive "$RELAY_PID"; then
        kill -TERM "$RELAY_PID" 2>/dev/null || true
        wait_gone "$RELAY_PID" 5 || kill -KILL "$RELAY_PID" 2>/dev/null || true
    fi
    if [[ -n "$RUN" ]]; then
        "${HOSTS_PY[@]}" down --run "$RUN" || warn "could not remove app hosts run $RUN"
    fi
    if [[ -n "$TOPOLOGY_DIR" ]]; then
        say "stopping the Redis $REDIS_KIND"
        "$PY" -m scripts.redis_topology stop --dir "$TOPOLOGY_DIR" ||
            warn "could not stop the Redis $REDIS_KIND in $TOPOLOGY_DIR"
    fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all; exit 129' HUP
trap 'stop_all' EXIT

# wait_http URL SECONDS PID: poll URL until it answers 200; fail early if PID exits.
wait_http() {
    "$PY" - "$@" <<'PYEOF'
import os, sys, time, urllib.error, urllib.request
url, limit, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + limit
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"process {pid} exited before {url} answered")
    try:
        with direct.open(url, timeout=2) as resp:
            if resp.status == 200:
                sys.exit(0)
    except (OSError, urllib.error.URLError):
        pass
    time.sleep(0.2)
sys.exit(f"{url} did not answer 200 within {limit:.0f} s")
PYEOF
}

# --- Redis -------------------------------------------------------------------------------
STORE_PORTS=()  # extra loopback ports the app hosts must reach (a topology's nodes)
if [[ "$REDIS_KIND" != single ]]; then
    [[ -f scripts/redis_topology.py ]] || die "--redis $REDIS_KIND needs scripts/redis_topology.py"
    TOPOLOGY_DIR="$VAR/redis-$REDIS_KIND"
    say "starting a private Redis $REDIS_KIND on free loopback ports ($TOPOLOGY_DIR)"
    REDIS_URL="$("$PY" -m scripts.redis_topology start "$REDIS_KIND" --dir "$TOPOLOGY_DIR")" ||
        die "the Redis $REDIS_KIND did not start"
    SERVER_ARGS+=("--redis_url=$REDIS_URL")
    # Every node, primaries, replicas and sentinels: the app may be sent to any of them.
    read -r -a STORE_PORTS < <("$PY" -c '
import json, sys
print(" ".join(str(n["port"]) for n in json.load(open(sys.argv[1]))["nodes"]))
' "$TOPOLOGY_DIR/topology.json")
    say "Redis $REDIS_KIND: $REDIS_URL"
fi

# --- the app: instances on 127.0.0.1, or hosts ------------------------------------------
APP_ADDRS=()  # address:port of each upstream server
APP_CMDS=()   # the host index a process runs on (empty: this machine as it is)
HOST_DESC=()
if ((HOSTS > 1)); then
    up_args=(up --hosts "$HOSTS" --owner "$$")
    ((LOOPBACK)) && up_args+=(--loopback)
    run_json="$("${HOSTS_PY[@]}" "${up_args[@]}")" || die "could not set up $HOSTS app hosts"
    # run, mode, then one "index name address netns" line per host
    mapfile -t host_lines < <("$PY" -c '
import json, sys
run = json.loads(sys.argv[1])
print(run["run"], run["mode"])
for h in run["hosts"]:
    print(h["index"], h["name"], h["address"], h["netns"] or "-")
' "$run_json")
    read -r RUN MODE <<<"${host_lines[0]}"
    for line in "${host_lines[@]:1}"; do
        read -r index name address netns <<<"$line"
        APP_ADDRS+=("$address:$APP_FIRST_PORT")
        APP_NAMES+=("$name")
        if [[ "$MODE" == netns ]]; then
            APP_CMDS+=("$index")
            HOST_DESC+=("$name: $address:$APP_FIRST_PORT in network namespace $netns")
        else
            APP_CMDS+=("")
            HOST_DESC+=("$name: $address:$APP_FIRST_PORT on this machine's loopback")
        fi
    done
    if [[ "$MODE" == netns ]]; then
        # Inside a namespace 127.0.0.1 is the host's own: relay the stores' ports there.
        read -r -a url_ports < <("${HOSTS_PY[@]}" ports "$REDIS_URL" "$MYSQL_URL") ||
            die "the app hosts cannot reach these stores"
        relay_args=(relay --run "$RUN" --ready-file "$VAR/relay.ready")
        for port in $(printf '%s\n' "${url_ports[@]}" "${STORE_PORTS[@]}" | sort -nu); do
            relay_args+=(--port "$port")
        done
        mkdir -p "$VAR"
        rm -f "$VAR/relay.ready"
        "${HOSTS_PY[@]}" "${relay_args[@]}" </dev/null &
        RELAY_PID=$!
        for _ in $(seq 100); do
            [[ -s "$VAR/relay.ready" ]] && break
            alive "$RELAY_PID" || die "the store relay exited"
            sleep 0.1
        done
        [[ -s "$VAR/relay.ready" ]] || die "the store relay did not start"
    fi
else
    for ((i = 0; i < INSTANCES; i++)); do
        APP_ADDRS+=("127.0.0.1:$((APP_FIRST_PORT + i))")
        APP_NAMES+=("server.py")
        APP_CMDS+=("")
    done
fi

# --- render and check the nginx config ---------------------------------------------------
render_args=(--prefix "$VAR" --output "$CONF" --listen "$NGINX_LISTEN:$NGINX_PORT"
    --static-root "$REPO_ROOT/static")
# Started by root, nginx would run its workers as `nobody`, who may not be able to read
# a checkout under a private home directory: locally they run as the checkout's owner,
# like the app (as any other user, nginx runs its workers as that user anyway).
if is_root; then
    render_args+=(--user "$(stat -c '%U %G' "$REPO_ROOT")")
fi
for addr in "${APP_ADDRS[@]}"; do
    render_args+=(--upstream "$addr")
done
"$PY" deploy/render-nginx-conf.py "${render_args[@]}"
NGINX_CMD=("$NGINX_BIN" -e stderr -p "$VAR" -c "$CONF")
"${NGINX_CMD[@]}" -t -q || die "nginx rejected $CONF"

# --- start -------------------------------------------------------------------------------
start_app() {
    local i="$1" addr="${APP_ADDRS[$1]}" prefix=()
    if [[ -n "${APP_CMDS[$i]}" ]]; then  # into the host's namespace, with its hostname
        prefix=("${HOSTS_PY[@]}" exec --run "$RUN" --host "${APP_CMDS[$i]}" --)
    fi
    "${prefix[@]}" "$PY" server.py "--port=${addr##*:}" "--address=${addr%:*}" \
        "--processes=$PROCESSES" --xheaders --reuse_port "${SERVER_ARGS[@]}" </dev/null &
    APP_PIDS[i]=$!
}
wait_app() {
    local addr="${APP_ADDRS[$1]}"
    wait_http "http://$addr/healthz" 60 "${APP_PIDS[$1]}" ||
        die "${APP_NAMES[$1]} on $addr did not become healthy (see its output above)"
}
# All must sign cookies with the same secret. Without --cookie_secret the first one
# creates var/cookie_secret, which the others then read: it starts alone.
first=1
if [[ -n "${APP_COOKIE_SECRET:-}" || " ${SERVER_ARGS[*]} " == *" --cookie_secret="* ]]; then
    first=${#APP_ADDRS[@]}
fi
for ((i = 0; i < ${#APP_ADDRS[@]}; i++)); do
    ((i == first)) && wait_app 0
    start_app "$i"
done
for ((i = 0; i < ${#APP_ADDRS[@]}; i++)); do
    wait_app "$i"
done

"${NGINX_CMD[@]}" -g 'daemon off;' </dev/null &
NGINX_PID=$!
wait_http "http://$NGINX_LISTEN:$NGINX_PORT/healthz" 20 "$NGINX_PID" ||
    die "nginx did not answer on $NGINX_LISTEN:$NGINX_PORT (log: $VAR/logs/error.log)"

desc="$PROCESSES process(es)"
[[ "$PROCESSES" == 0 ]] && desc="one process per core"
say "stack up: http://$NGINX_LISTEN:$NGINX_PORT  (nginx pid $NGINX_PID, logs in $VAR/logs)"
if ((HOSTS > 1)); then
    if [[ "$MODE" != netns ]]; then
        say "  NO NETWORK NAMESPACES: the $HOSTS app hosts are loopback addresses of this machine"
    fi
    for i in "${!APP_ADDRS[@]}"; do
        say "  -> host ${HOST_DESC[$i]}, server.py pid ${APP_PIDS[$i]} ($desc, --xheaders --reuse_port)"
    done
    if [[ -n "$RELAY_PID" ]]; then
        relayed="$(printf '%s\n' "${url_ports[@]}" "${STORE_PORTS[@]}" | sort -nu | xargs)"
        say "  store relay pid $RELAY_PID: 127.0.0.1 ports $relayed inside each host"
    fi
    say "Redis: $REDIS_URL. Ctrl-C stops everything."
else
    say "  -> server.py on 127.0.0.1, port(s) ${APP_ADDRS[*]##*:}, --xheaders --reuse_port, $desc each (pids ${APP_PIDS[*]})"
    [[ -n "$TOPOLOGY_DIR" ]] && say "Redis: $REDIS_URL"
    say "Ctrl-C stops both."
fi

# Run until a signal arrives, nginx exits, or (hosts) the last host exits; one instance
# exiting stops everything, one host exiting is reported and the others keep serving.
REPORTED=()
while true; do
    status=0
    watched=("$NGINX_PID")
    for i in "${!APP_PIDS[@]}"; do
        [[ -z "${REPORTED[$i]:-}" ]] && watched+=("${APP_PIDS[$i]}")
    done
    [[ -n "$RELAY_PID" ]] && watched+=("$RELAY_PID")
    wait -n "${watched[@]}" || status=$?
    if ! alive "$NGINX_PID"; then
        warn "nginx exited (status $status); stopping the app"
        stop_all
        exit 1
    fi
    if [[ -n "$RELAY_PID" ]] && ! alive "$RELAY_PID"; then
        warn "the store relay exited (status $status); stopping the stack"
        stop_all
        exit 1
    fi
    left=0
    for i in "${!APP_PIDS[@]}"; do
        pid="${APP_PIDS[$i]}"
        if alive "$pid"; then
            left=$((left + 1))
        elif [[ -z "${REPORTED[$i]:-}" ]]; then
            REPORTED[i]=1
            if ((HOSTS > 1)); then
                warn "host ${APP_NAMES[$i]} (server.py pid $pid) exited (status $status); nginx sends its requests to the other hosts"
            else
                warn "server.py (pid $pid) exited (status $status); stopping the rest"
                stop_all
                exit 1
            fi
        fi
    done
    if ((left == 0)); then
        warn "no app host left; stopping the stack"
        stop_all
        exit 1
    fi
done
