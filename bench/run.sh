#!/usr/bin/env bash
# bench/run.sh: builds telem in release mode, starts its own MariaDB, Redis, InfluxDB and telemd,
# runs the benchmark scenarios and writes BENCHMARKS.md (table, machine facts, command).
#
#   bash bench/run.sh [SCENARIO...]   scenarios: micro ingest stores trade_ids redis_impact influx
#                                     baseline redis client (default: all of them)
#   BENCH_SECONDS=60                  steady-state length of each end-to-end run
#   BENCH_PROFILES="100 300 1000"     profiles (x 3 scripts, one connection each) per store run
#   BENCH_STORES="sqlite mariadb redis all"
#   BENCH_RATE_<STORE>=N              offered records/s for that store (defaults below)
#   BENCH_OUT=FILE                    where the table goes (default BENCHMARKS.md)
#
# Every end-to-end figure is rows stored per second over the steady window (the sink's own
# telem_sink_rows_total, which counts rows committed in the store; for "all", the slowest
# sink), with the sink's lag at the end to show it stayed bounded. "ack to visible" is the age
# of the oldest acknowledged record not yet in the store (telem_sink_oldest_unsent_seconds),
# sampled every second: its p99 over the window. The machine is shared and noisy: compare
# ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${BENCH_SECONDS:-60}
profiles_list=${BENCH_PROFILES:-"100 300 1000"}
stores=${BENCH_STORES:-"sqlite mariadb redis all"}
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(micro ingest stores trade_ids redis_impact influx baseline redis client)
declare -A offered=(
    [sqlite]=${BENCH_RATE_SQLITE:-200000}
    [mariadb]=${BENCH_RATE_MARIADB:-250000}
    [redis]=${BENCH_RATE_REDIS:-150000}
    [all]=${BENCH_RATE_ALL:-100000}
)

lg_extra="" # more loadgen flags for store_run
work=$(mktemp -d "${TMPDIR:-/tmp}/telem-bench.XXXXXX")
results=$work/results.md
telemd_pid=""
influx_pid=""
services=""
cleanup() {
    [[ -n $telemd_pid ]] && kill "$telemd_pid" 2>/dev/null && wait "$telemd_pid" 2>/dev/null
    [[ -n $influx_pid ]] && kill "$influx_pid" 2>/dev/null && wait "$influx_pid" 2>/dev/null
    [[ -n $services ]] && bash scripts/test-services.sh stop "$services" >/dev/null 2>&1
    rm -rf "$work"
    true
}
trap cleanup EXIT

bash scripts/install-deps.sh >/dev/null
if [[ ! -f build-release/build.ninja ]]; then
    meson setup build-release --buildtype=release -Dwerror=true >/dev/null
fi
ninja -C build-release >/dev/null
telemd=$root/build-release/src/daemon/telemd
telemctl=$root/build-release/src/cli/telemctl

row() { printf '%s\n' "$*" >>"$results"; }
say() { printf '\n== %s\n' "$*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_telemd DIR ARGS...: telemd on DIR with a free TCP port; sets telemd_pid and port.
start_telemd() {
    local dir=$1
    shift
    port=$(free_port)
    mkdir -p "$dir"
    "$telemd" --data-dir "$dir" --http "127.0.0.1:$port" "$@" >"$dir/stdout" 2>"$dir/stderr" &
    telemd_pid=$!
    for _ in $(seq 1 100); do
        grep -q '^telemd: listening' "$dir/stdout" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench: telemd did not start:" >&2
    cat "$dir/stderr" >&2
    return 1
}

stop_telemd() {
    kill "$telemd_pid" 2>/dev/null || true
    wait "$telemd_pid" 2>/dev/null || true
    telemd_pid=""
}

# metric NAME_WITH_LABELS: one value from telemd's /metrics (empty when absent).
metric() {
    curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# proc_stats PID: "peak_rss_mib cpu_seconds" of a process.
proc_stats() {
    local pid=$1 rss ticks
    rss=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
    ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    echo "$rss $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }')"
}

json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

# p99 FILE: the 99th percentile of the numbers in FILE, one a line.
p99() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] } }'; }

ensure_services() {
    [[ -n $services ]] && return 0
    services=$work/services
    mkdir -p "$services"
    bash scripts/test-services.sh start "$services" >"$services/env"
    # shellcheck disable=SC1091
    source "$services/env"
}

mdb() { mariadb --no-defaults --socket="$TELEM_TEST_MARIADB_SOCKET" -uroot -N "$@"; }

# sink_args STORE: telemd flags for that store ("all" is SQLite + MariaDB + Redis).
sink_args() {
    local m="mariadb://telem@localhost/bench?socket=$TELEM_TEST_MARIADB_SOCKET"
    local r="redis://127.0.0.1:$TELEM_TEST_REDIS_PORT/0"
    case $1 in
    sqlite) echo "--sink sqlite:telem.db" ;;
    mariadb) echo "--sink $m" ;;
    redis) echo "--sink $r" ;;
    all) echo "--sink sqlite:telem.db --sink $m --sink $r" ;;
    mariadb+redis) echo "--sink $m --sink $r" ;;
    mariadb+redis-down) echo "--sink $m --sink redis://127.0.0.1:$(free_port)/0" ;;
    esac
}

# store_run STORE PROFILES [SINKS]: 3 scripts a profile, each its own connection, at the
# store's offered rate, for $seconds s after 10 s of warm-up; the figure is the slowest of SINKS
# (default: every sink of STORE). Sets last_rows to that figure.
store_run() {
    local store=$1 profiles=$2 rate=${offered[$1]} measured=${3:-}
    local dir=$work/$store-$profiles
    mdb -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench; FLUSH STATUS'
    redis-cli -p "$TELEM_TEST_REDIS_PORT" flushall >/dev/null
    # shellcheck disable=SC2046
    TELEM_MARIADB_PASSWORD=$TELEM_TEST_MARIADB_PASSWORD start_telemd "$dir" $(sink_args "$store")
    local sinks
    case $store in all) sinks="sqlite mariadb redis" ;; *) sinks=$store ;; esac
    [[ -n $measured ]] && sinks=$measured
    # shellcheck disable=SC2086
    "$telemctl" loadgen --http "127.0.0.1:$port" --profiles "$profiles" --scripts 3 --batch 1000 \
        --rate "$rate" --duration $((seconds + 12)) --json --quiet $lg_extra >"$dir/loadgen.json" &
    local lg=$!
    sleep 10
    declare -A r0 r1
    local s
    for s in $sinks; do r0[$s]=$(metric "telem_sink_rows_total{sink=\"$s\"}"); done
    local t0 t1
    t0=$(date +%s.%N)
    : >"$dir/age"
    for _ in $(seq 1 "$seconds"); do
        sleep 1
        for s in $sinks; do
            metric "telem_sink_oldest_unsent_seconds{sink=\"$s\"}" >>"$dir/age"
        done
    done
    for s in $sinks; do r1[$s]=$(metric "telem_sink_rows_total{sink=\"$s\"}"); done
    t1=$(date +%s.%N)
    local lag="" slowest=""
    for s in $sinks; do
        local rs
        rs=$(awk -v a="${r0[$s]:-0}" -v b="${r1[$s]:-0}" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')
        [[ -z $slowest || $rs -lt $slowest ]] && slowest=$rs
        lag+="$s $(metric "telem_sink_lag_records{sink=\"$s\"}") "
    done
    local stats conns=""
    stats=$(proc_stats "$telemd_pid")
    wait "$lg" || true
    case $store in
    mariadb | all | mariadb+redis*) conns+="MariaDB Max_used_connections $(mdb -e "SHOW GLOBAL STATUS LIKE 'Max_used_connections'" | awk '{print $2}') (incl. this query); " ;;
    esac
    case $store in
    redis | all | mariadb+redis) conns+="Redis connected_clients $(redis-cli -p "$TELEM_TEST_REDIS_PORT" info clients | awk -F: '/^connected_clients/ { print $2 + 0 }') (incl. this one)" ;;
    esac
    last_rows=$slowest
    row "| $store, ${profiles}x3 senders${lg_extra:+ ($lg_extra)}, offered $rate rec/s | **$slowest rows/s stored** (lag at end: $lag) | ack p50 $(json_field "$dir/loadgen.json" ack_p50_ms) / p99 $(json_field "$dir/loadgen.json" ack_p99_ms) ms; ack to visible p99 $(p99 "$dir/age") s | RSS ${stats% *} MiB, CPU ${stats#* } s; $conns |"
    stop_telemd
}

scenario_micro() {
    say "micro: parse and spool"
    local med
    med=$("$root/build-release/bench/bench_ingest_parse" 7 2 | awk '/^median/ { print $2 }')
    row "| parse + map + encode, one core, 1000-line bodies | **$med lines/s** (median of 7) | | |"
    "$root/build-release/bench/bench_spool_append" "$work/spool" 5 300 >"$work/spool.txt"
    while read -r line; do
        row "| spool append + group commit, ${line%% *} | **$(echo "$line" | awk '{print $2}') records/s** | 300 frames of 1000 records waiting for durability | |"
    done <"$work/spool.txt"
    rm -rf "$work/spool"
}

scenario_ingest() {
    say "ingest only: spool with fsync=always, the sink's store unreachable"
    local dir=$work/ingest
    start_telemd "$dir" --sink "mariadb://telem@127.0.0.1:1/none" --fsync always
    "$telemctl" loadgen --http "127.0.0.1:$port" --profiles 100 --scripts 3 --batch 1000 \
        --duration 30 --json --quiet >"$dir/loadgen.json" || true
    local stats
    stats=$(proc_stats "$telemd_pid")
    row "| ingest only (parse + spool + fdatasync + 204), 100x3 senders over TCP, 30 s | **$(json_field "$dir/loadgen.json" records_per_s) lines/s acked** | ack p50 $(json_field "$dir/loadgen.json" ack_p50_ms) / p99 $(json_field "$dir/loadgen.json" ack_p99_ms) ms | RSS ${stats% *} MiB, CPU ${stats#* } s |"
    stop_telemd
    local dir2=$work/ingest-100k
    start_telemd "$dir2" --sink "mariadb://telem@127.0.0.1:1/none" --fsync always
    "$telemctl" loadgen --http "127.0.0.1:$port" --profiles 100 --scripts 3 --batch 1000 \
        --rate 100000 --duration 30 --json --quiet >"$dir2/loadgen.json" || true
    row "| ingest at 100,000 rec/s offered, 100x3 senders | $(json_field "$dir2/loadgen.json" records_per_s) lines/s acked | ack p50 $(json_field "$dir2/loadgen.json" ack_p50_ms) / p99 $(json_field "$dir2/loadgen.json" ack_p99_ms) ms | |"
    stop_telemd
}

scenario_stores() {
    ensure_services
    local store profiles
    for store in $stores; do
        for profiles in $profiles_list; do
            say "end to end: $store, ${profiles}x3 senders"
            store_run "$store" "$profiles"
        done
    done
}

# MariaDB with every trade carrying a trade_id (unique per profile: the register table).
scenario_trade_ids() {
    ensure_services
    say "end to end: mariadb, 300x3 senders, every trade with a trade_id"
    lg_extra=--trade-ids
    store_run mariadb 300
    lg_extra=""
}

# The MariaDB sink's rate with a Redis sink beside it, Redis running versus unreachable: at the
# rate the Redis sink sustains (both sinks keep up) and at the MariaDB rate (the machine's two
# cores are the limit, and a running Redis takes its share of them).
scenario_redis_impact() {
    ensure_services
    local rate running down
    for rate in "${offered[redis]}" "${offered[mariadb]}"; do
        say "the MariaDB sink beside a Redis sink at $rate rec/s, Redis running and unreachable"
        offered[mariadb+redis]=$rate
        offered[mariadb+redis-down]=$rate
        store_run mariadb+redis 300 mariadb
        running=$last_rows
        store_run mariadb+redis-down 300 mariadb
        down=$last_rows
        row "| MariaDB sink rows/s with Redis running / Redis unreachable, offered $rate rec/s (issue 4: within 10%) | **$(awk -v a="$running" -v b="$down" 'BEGIN { printf "%.2f", a / b }')** ($running / $down rows/s) | | |"
    done
}

scenario_influx() {
    say "InfluxDB 1.x, the same line-protocol load"
    if ! command -v influxd >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null
    fi
    local dir=$work/influx port_i
    mkdir -p "$dir"
    port_i=$(free_port)
    cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$(free_port)"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port_i"
  log-enabled = false
EOF
    influxd -config "$dir/influxdb.conf" >"$dir/log" 2>&1 &
    influx_pid=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port_i/ping" && break
        sleep 0.2
    done
    curl -s -XPOST "http://127.0.0.1:$port_i/query" --data-urlencode 'q=CREATE DATABASE telem' >/dev/null
    local profiles
    for profiles in 100 1000; do
        "$telemctl" loadgen --http "127.0.0.1:$port_i" --profiles "$profiles" --scripts 3 \
            --batch 1000 --rate "${offered[mariadb]}" --duration "$seconds" --json --quiet \
            >"$dir/loadgen-$profiles.json" || true
        local stats resources
        if kill -0 "$influx_pid" 2>/dev/null; then
            stats=$(proc_stats "$influx_pid")
            resources="influxd RSS ${stats% *} MiB, CPU ${stats#* } s"
        else
            resources="influxd died during the run: $(dmesg 2>/dev/null | grep -o 'Out of memory: Killed process [0-9]* (influxd)' | tail -1 || true)"
        fi
        row "| InfluxDB 1.6 (Debian), ${profiles}x3 senders, offered ${offered[mariadb]} rec/s | **$(json_field "$dir/loadgen-$profiles.json" records_per_s) lines/s acked** (its own store) | ack p50 $(json_field "$dir/loadgen-$profiles.json" ack_p50_ms) / p99 $(json_field "$dir/loadgen-$profiles.json" ack_p99_ms) ms | $resources |"
    done
    kill "$influx_pid" 2>/dev/null || true
    wait "$influx_pid" 2>/dev/null || true
    influx_pid=""
}

scenario_baseline() {
    say "the old design (one Python process per script, own pools)"
    ensure_services
    mdb -e 'DROP DATABASE IF EXISTS baseline; CREATE DATABASE baseline'
    MDB_SOCKET=$TELEM_TEST_MARIADB_SOCKET MDB_USER=root MDB_DB=baseline \
        /usr/bin/python3 ../shared/baseline/seed_load.py 100 3 2000 >"$work/baseline.txt" 2>&1 || true
    row "| old design, 100x3 processes x 2000 records, max_connections 1000 | $(tail -1 "$work/baseline.txt" | cut -c1-260) | | |"
    mdb -e 'DROP DATABASE IF EXISTS baseline; CREATE DATABASE baseline; SET GLOBAL max_connections = 151'
    MDB_SOCKET=$TELEM_TEST_MARIADB_SOCKET MDB_USER=root MDB_DB=baseline \
        /usr/bin/python3 ../shared/baseline/seed_load.py 100 3 2000 >"$work/baseline151.txt" 2>&1 || true
    mdb -e 'SET GLOBAL max_connections = 1000'
    row "| old design, same, at MariaDB's default max_connections 151 | $(tail -1 "$work/baseline151.txt" | cut -c1-260) | | |"
}

scenario_redis() {
    say "Redis sink beside raw pipelined XADD"
    ensure_services
    "$root/build-release/bench/bench_redis" "redis://127.0.0.1:$TELEM_TEST_REDIS_PORT/0" >"$work/redis.txt" 2>&1 || true
    while read -r line; do
        row "| redis: $line | | | |"
    done < <(grep -E '/s' "$work/redis.txt")
}

scenario_client() {
    say "clients"
    local dir=$work/client
    start_telemd "$dir" --sink "mariadb://telem@127.0.0.1:1/none"
    "$root/build-release/bench/bench_client" "unix:$dir/telemd.sock" >"$work/client.txt" 2>&1 || true
    while read -r line; do
        row "| C client: $line | | | |"
    done < <(grep -E 'ns|/s' "$work/client.txt")
    /usr/bin/python3 bench/bench_client.py "unix:$dir/telemd.sock" >"$work/client-py.txt" 2>&1 || true
    while read -r line; do
        row "| Python client: $line | | | |"
    done < <(grep -E '/s' "$work/client-py.txt")
    stop_telemd
}

: >"$results"
for s in "${scenarios[@]}"; do
    "scenario_$s"
done
bash bench/ratios.sh "$results" >>"$results"

out=${BENCH_OUT:-$root/BENCHMARKS.md}
{
    echo "# Benchmarks"
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(. /etc/os-release; echo "$PRETTY_NAME")."
    echo "Command: \`bash bench/run.sh ${scenarios[*]}\` (BENCH_SECONDS=$seconds, BENCH_PROFILES=\"$profiles_list\", BENCH_STORES=\"$stores\")."
    echo "The machine is shared and noisy: compare figures within one run."
    echo
    echo "| scenario | result | latency | resources |"
    echo "| --- | --- | --- | --- |"
    cat "$results"
} >"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
