#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:6379 and MariaDB on 127.0.0.1:3306, and that
# MariaDB's root can log in over TCP with an empty password (what the app and the tests use).
#
#   scripts/ensure-services.sh              check, start or install the services
#   scripts/ensure-services.sh --db [NAME]  also create database NAME (default appdb)
#                                           and apply schema.sql (python -m storage.schema)
#
# A service that does not answer is started directly (no systemd needed) when its server is
# installed; installed with apt-get first when it is not and we are root; otherwise the
# script stops and says what to install. Quiet when everything is already up.
#
# Environment: SERVICES_TIMEOUT  seconds to wait for each service to answer (default 30)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOST=127.0.0.1
REDIS_PORT=6379
MYSQL_PORT=3306
TIMEOUT="${SERVICES_TIMEOUT:-30}"

DB_NAME=""
case "${1:-}" in
    "") ;;
    --db) DB_NAME="${2:-appdb}" ;;
    -h | --help)
        script_help
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
esac
[[ -z "$DB_NAME" || "$DB_NAME" =~ ^[A-Za-z0-9_]+$ ]] || die "bad database name '$DB_NAME'"

# --- probes (no Python needed) -----------------------------------------------------------

# True when something accepts TCP connections on HOST:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

redis_up() {
    if have redis-cli; then
        [[ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
    else
        # RESP inline command over bash's /dev/tcp.
        # shellcheck disable=SC2016  # expanded by the inner bash
        timeout 3 bash -c '
            exec 3<>"/dev/tcp/$0/$1" || exit 1
            printf "PING\r\n" >&3
            IFS= read -r -t 2 reply <&3 && [[ "$reply" == +PONG* ]]
        ' "$HOST" "$REDIS_PORT" 2>/dev/null
    fi
}

mysql_admin() { command -v mariadb-admin || command -v mysqladmin || true; }
mysql_client() { command -v mariadb || command -v mysql || true; }

mysql_up() {
    local admin
    admin="$(mysql_admin)"
    # ping exits 0 whenever the server answers, even if it refuses the password...
    if [[ -n "$admin" ]] && timeout 5 "$admin" --no-defaults --protocol=tcp -h"$HOST" \
        -P"$MYSQL_PORT" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
        return 0
    fi
    # ...but not when it refuses the host (error 1130). The server speaks first: any packet
    # (a handshake, or such an error) means it is up; the login is checked later.
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        [[ -n "$(head -c 5 <&3 | od -An -tx1)" ]]
    ' "$HOST" "$MYSQL_PORT" 2>/dev/null
}

# wait_for NAME PROBE LOGFILE: poll PROBE until it succeeds or TIMEOUT seconds pass.
wait_for() {
    local name="$1" probe="$2" log="$3" deadline=$((SECONDS + TIMEOUT))
    while ! "$probe"; do
        if ((SECONDS >= deadline)); then
            [[ -r "$log" ]] && tail -n 15 "$log" >&2
            die "$name did not answer on $HOST within ${TIMEOUT}s (log: $log)"
        fi
        sleep 0.2
    done
}

systemd_unit() { # systemd_unit UNIT: true when systemd runs here and knows UNIT
    [[ -d /run/systemd/system ]] && have systemctl && systemctl cat "$1" >/dev/null 2>&1
}

# --- Redis -------------------------------------------------------------------------------

ensure_redis() {
    redis_up && return 0
    if port_open "$REDIS_PORT"; then
        die "something listens on $HOST:$REDIS_PORT but does not answer Redis PING (a password, or not Redis?)"
    fi
    if ! have redis-server; then
        is_root || die "Redis is not installed: install it with '$(install_hint redis-server)' (or run this script as root)"
        apt_install redis-server
        if redis_up; then return 0; fi # the package may have started it
    fi

    local dir log
    if is_root; then
        dir=/var/lib/redis
        log=/var/log/redis/server.log
    else
        dir="$REPO_ROOT/var/redis"
        log="$dir/server.log"
    fi
    mkdir -p "$dir" "$(dirname "$log")"
    if is_root && systemd_unit redis-server.service; then
        systemctl start redis-server.service
        log="journalctl -u redis-server"
        say "started Redis (systemctl start redis-server)"
    else
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
            --save "" --appendonly no --dir "$dir" --logfile "$log" >/dev/null
        say "started Redis on $HOST:$REDIS_PORT (no persistence; log $log)"
    fi
    wait_for Redis redis_up "$log"
}

# --- MariaDB -----------------------------------------------------------------------------

mysql_server_bin() {
    local b
    for b in mariadbd mysqld; do
        if have "$b"; then command -v "$b"; return 0; fi
        if [[ -x "/usr/sbin/$b" ]]; then echo "/usr/sbin/$b"; return 0; fi
    done
    return 1
}

# The server's effective option --NAME (from its config files), or DEFAULT.
server_option() {
    local bin="$1" name="$2" default="$3" value
    value="$("$bin" --print-defaults 2>/dev/null | tr ' ' '\n' | sed -n "s/^--$name=//p" | tail -n 1)"
    echo "${value:-$default}"
}

ensure_mariadb() {
    mysql_up && return 0
    if port_open "$MYSQL_PORT"; then
        die "something listens on $HOST:$MYSQL_PORT but does not answer as MariaDB"
    fi
    local bin
    if ! bin="$(mysql_server_bin)"; then
        is_root || die "MariaDB is not installed: install it with '$(install_hint mariadb-server mariadb-client)' (or run this script as root)"
        apt_install mariadb-server mariadb-client
        if mysql_up; then return 0; fi # the package may have started it
        bin="$(mysql_server_bin)" || die "mariadb-server installed but no mariadbd found"
    fi
    is_root || die "MariaDB is installed but not running on $HOST:$MYSQL_PORT: start it as root (e.g. 'sudo start-stop-daemon --start --oknodo --background --exec $bin') or run this script as root"

    if systemd_unit mariadb.service; then
        systemctl start mariadb.service
        say "started MariaDB (systemctl start mariadb)"
        wait_for MariaDB mysql_up "journalctl -u mariadb"
        return 0
    fi

    local datadir socket errlog
    datadir="$(server_option "$bin" datadir /var/lib/mysql)"
    socket="$(server_option "$bin" socket /run/mysqld/mysqld.sock)"
    errlog="$(server_option "$bin" log-error "")"
    install -d -o mysql -g mysql -m 0755 "$(dirname "$socket")"
    if [[ -n "$errlog" && ! -d "$(dirname "$errlog")" ]]; then
        install -d -o mysql -g mysql -m 0750 "$(dirname "$errlog")"
    fi
    if [[ ! -d "$datadir/mysql" ]]; then
        [[ -d "$datadir" ]] || install -d -o mysql -g mysql -m 0750 "$datadir"
        local installer
        installer="$(command -v mariadb-install-db || command -v mysql_install_db)" ||
            die "the MariaDB data directory $datadir is empty and mariadb-install-db is missing"
        "$installer" --user=mysql --datadir="$datadir" --skip-test-db >/dev/null 2>&1 ||
            die "$installer --datadir=$datadir failed"
        say "initialised the MariaDB data directory $datadir"
    fi
    if have start-stop-daemon; then
        start-stop-daemon --start --oknodo --background --exec "$bin" -- --user=mysql
    elif have mysqld_safe; then
        (mysqld_safe --user=mysql </dev/null >/dev/null 2>&1 &)
    else
        ("$bin" --user=mysql </dev/null >/dev/null 2>&1 &)
    fi
    say "started MariaDB on $HOST:$MYSQL_PORT ($bin, data $datadir)"
    wait_for MariaDB mysql_up "${errlog:-$datadir}"
}

# root must log in over TCP with an empty password. A fresh Debian MariaDB lets root in
# only through the unix socket: widen that, but only when the TCP login fails.
tcp_login_ok() {
    timeout 10 "$1" --no-defaults --protocol=tcp -h"$HOST" -P"$MYSQL_PORT" -uroot \
        --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1
}

ensure_root_tcp_login() {
    local client
    client="$(mysql_client)"
    [[ -n "$client" ]] || return 0 # no client to check with; the app reports a refused login
    tcp_login_ok "$client" && return 0
    is_root || die "MariaDB refuses root@$HOST with an empty password; as root run: $client -uroot -e \"ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); CREATE USER IF NOT EXISTS root@'127.0.0.1'; ALTER USER root@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION\""
    timeout 10 "$client" --protocol=socket -uroot <<'SQL' ||
ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS root@'127.0.0.1';
ALTER USER root@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
        die "MariaDB refuses root over TCP and the socket login as root failed too"
    say "MariaDB: root@localhost and root@127.0.0.1 may now log in over TCP with an empty password"
    tcp_login_ok "$client" || die "MariaDB still refuses root@$HOST with an empty password"
}

# --- database ----------------------------------------------------------------------------

ensure_database() {
    # One way to create the database and its tables: storage/schema.py, as server.py does.
    local python="${VENV:-$REPO_ROOT/.venv}/bin/python"
    [[ "$python" = /* ]] || python="$REPO_ROOT/$python"
    [[ -x "$python" ]] || die "no $python: run 'make venv' first"
    (cd "$REPO_ROOT" && "$python" -m storage.schema "mysql://root@$HOST:$MYSQL_PORT/$DB_NAME")
}

ensure_redis
ensure_mariadb
ensure_root_tcp_login
[[ -z "$DB_NAME" ]] || ensure_database
