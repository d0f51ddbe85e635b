#!/usr/bin/env bash
# test-services.sh: throwaway MariaDB and Redis servers for tests and benchmarks.
#
#   scripts/test-services.sh start DIR    start both under DIR (a fresh temporary folder), print
#                                         `export VAR=...` lines for the shell to eval
#   scripts/test-services.sh stop DIR     stop the servers started under DIR, by their pids
#
# Each server gets its own data folder, unix socket and a free loopback port, so several runs
# can live side by side and nothing touches a system-wide server. Variables printed:
#   TELEM_TEST_MARIADB_SOCKET, TELEM_TEST_MARIADB_PORT, TELEM_TEST_MARIADB_USER (telem),
#   TELEM_TEST_MARIADB_PASSWORD (telem), TELEM_TEST_MARIADB_PID,
#   TELEM_TEST_REDIS_PORT, TELEM_TEST_REDIS_SOCKET, TELEM_TEST_REDIS_PID
# MariaDB runs with innodb_flush_log_at_trx_commit=1 (the durability telem relies on) and
# max_connections raised so the old design's 300-process baseline can run against it.
set -euo pipefail

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # wait_for SECONDS CMD...: retry CMD until it succeeds or time runs out
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then return 1; fi
        sleep 0.2
    done
}

start_mariadb() {
    local dir=$1/mariadb port
    mkdir -p "$dir"
    port=$(free_port)
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 || {
        cat "$dir/install.log" >&2; return 1; }
    mariadbd --no-defaults --user=root --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" \
        --log-error="$dir/error.log" --innodb-flush-log-at-trx-commit=1 \
        --innodb-buffer-pool-size=1G --innodb-log-file-size=512M --max-connections=1000 \
        --skip-name-resolve --max-allowed-packet=256M >/dev/null 2>&1 &
    echo $! >"$dir/launcher.pid"
    if ! wait_for 60 mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e 'SELECT 1'; then
        echo "test-services: mariadbd did not start; see $dir/error.log" >&2
        tail -20 "$dir/error.log" >&2 || true
        return 1
    fi
    mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'telem'@'localhost' IDENTIFIED BY 'telem';
CREATE USER IF NOT EXISTS 'telem'@'127.0.0.1' IDENTIFIED BY 'telem';
GRANT ALL ON *.* TO 'telem'@'localhost';
GRANT ALL ON *.* TO 'telem'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS telem;
SQL
    echo "export TELEM_TEST_MARIADB_SOCKET=$dir/mysqld.sock"
    echo "export TELEM_TEST_MARIADB_PORT=$port"
    echo "export TELEM_TEST_MARIADB_USER=telem"
    echo "export TELEM_TEST_MARIADB_PASSWORD=telem"
    echo "export TELEM_TEST_MARIADB_PID=$(cat "$dir/mysqld.pid")"
}

start_redis() {
    local dir=$1/redis port
    mkdir -p "$dir"
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$dir/redis.sock" \
        --unixsocketperm 700 --dir "$dir" --pidfile "$dir/redis.pid" --daemonize no \
        --save '' --appendonly yes --appendfsync always --logfile "$dir/redis.log" >/dev/null 2>&1 &
    echo $! >"$dir/redis.pid.launcher"
    if ! wait_for 30 redis-cli -p "$port" ping; then
        echo "test-services: redis-server did not start; see $dir/redis.log" >&2
        return 1
    fi
    echo "export TELEM_TEST_REDIS_PORT=$port"
    echo "export TELEM_TEST_REDIS_SOCKET=$dir/redis.sock"
    echo "export TELEM_TEST_REDIS_PID=$(cat "$dir/redis.pid.launcher")"
}

stop_pidfile() { # stop_pidfile FILE: TERM the pid in FILE, wait, then KILL
    local f=$1 pid
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
start)
    dir=${2:?usage: test-services.sh start DIR}
    mkdir -p "$dir"
    start_mariadb "$dir"
    start_redis "$dir"
    ;;
stop)
    dir=${2:?usage: test-services.sh stop DIR}
    stop_pidfile "$dir/redis/redis.pid.launcher"
    stop_pidfile "$dir/mariadb/launcher.pid"
    ;;
*)
    echo "usage: test-services.sh start|stop DIR" >&2
    exit 2
    ;;
esac
