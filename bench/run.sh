#!/usr/bin/env bash
# bench/run.sh: builds telem in release mode, starts its own MariaDB, Redis and telemd, runs
# the benchmark scenarios and writes BENCHMARKS.md (table, machine facts, command).
#
#   bash bench/run.sh [SCENARIO...]      scenarios: micro ingest sqlite mariadb redis client
#                                        baseline (default: all)
#   BENCH_SECONDS=60                     length of each end-to-end run's steady state
#   BENCH_RATES="120000 160000"          offered rates (records/s) for the store runs
#
# Every end-to-end figure counts rows in the store over a steady window (the sink's own
# telem_sink_rows_total, checked against the store after the run), never acknowledgements, and
# the table says how far the sink lagged at the end. The machine is shared: the script runs
# each scenario in turn and quotes medians of repeated micro benchmarks; compare ratios
# within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${BENCH_SECONDS:-60}
rates=${BENCH_RATES:-"120000 160000 200000"}
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(micro ingest sqlite mariadb redis client baseline)

work=$(mktemp -d "${TMPDIR:-/tmp}/telem-bench.XXXXXX")
results=$work/results.md
telemd_pid=""
services=""
cleanup() {
    [[ -n $telemd_pid ]] && kill "$telemd_pid" 2>/dev/null && wait "$telemd_pid" 2>/dev/null
    [[ -n $services ]] && bash scripts/test-services.sh stop "$services" >/dev/null 2>&1
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

# start_telemd DIR ARGS...: start telemd on DIR with a free TCP port; sets telemd_pid, port.
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

# metric NAME_WITH_LABELS: one value from telemd's /metrics.
metric() {
    curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# proc_stats PID: "rss_mib cpu_seconds" of a process.
proc_stats() {
    local pid=$1 rss ticks
    rss=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
    ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    echo "$rss $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }')"
}

json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

ensure_services() {
    [[ -n $services ]] && return 0
    services=$work/services
    mkdir -p "$services"
    bash scripts/test-services.sh start "$services" >"$services/env"
    # shellcheck disable=SC1091
    source "$services/env"
}

# store_run NAME SINK_ARGS... : for each offered rate, 100 x 3 senders for $seconds s; rows/s
# counted from the sink's rows over the steady window.
store_run() {
    local name=$1 sinkname=$2
    shift 2
    local rate
    for rate in $rates; do
        local dir=$work/$name-$rate
        start_telemd "$dir" "$@"
        local out=$dir/loadgen.json
        "$telemctl" loadgen --http "127.0.0.1:$port" --profiles 100 --scripts 3 --batch 1000 \
            --rate "$rate" --duration $((seconds + 10)) --json --quiet >"$out" &
        local lg=$!
        sleep 10
        local r0 t0 r1 t1 lag
        r0=$(metric "telem_sink_rows_total{sink=\"$sinkname\"}")
        t0=$(date +%s.%N)
        sleep "$seconds"
        r1=$(metric "telem_sink_rows_total{sink=\"$sinkname\"}")
        t1=$(date +%s.%N)
        lag=$(metric "telem_sink_lag_records{sink=\"$sinkname\"}")
        wait "$lg" || true
        local stats rows_s
        stats=$(proc_stats "$telemd_pid")
        rows_s=$(awk -v a="$r0" -v b="$r1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')
        local extra=""
        if [[ $name == mariadb ]]; then
            extra="Max_used_connections $(mariadb --no-defaults --socket="$TELEM_TEST_MARIADB_SOCKET" -uroot -N -e "SHOW GLOBAL STATUS LIKE 'Max_used_connections'" | awk '{print $2}') (incl. this query)"
        fi
        row "| $name e2e, 100x3 senders, offered $rate rec/s | $rows_s rows/s stored (lag at end $lag) | ack p50 $(json_field "$out" ack_p50_ms) ms, p99 $(json_field "$out" ack_p99_ms) ms | RSS ${stats% *} MiB, CPU ${stats#* } s $extra |"
        stop_telemd
    done
}

scenario_micro() {
    say "micro: parse and spool"
    local med
    med=$("$root/build-release/bench/bench_ingest_parse" 7 2 | awk '/^median/ { print $2 }')
    row "| parse + map + encode (one core, 1000-line bodies) | $med lines/s | median of 7 | |"
    "$root/build-release/bench/bench_spool_append" "$work/spool" 5 300 >"$work/spool.txt"
    while read -r line; do
        row "| spool append + group commit, ${line%% *} | $(echo "$line" | awk '{print $2}') records/s | 300 frames of 1000 outstanding | |"
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
    row "| ingest only (parse + spool + fsync + 204), 100x3 senders, TCP | $(json_field "$dir/loadgen.json" records_per_s) lines/s acked | ack p50 $(json_field "$dir/loadgen.json" ack_p50_ms) ms, p99 $(json_field "$dir/loadgen.json" ack_p99_ms) ms | RSS ${stats% *} MiB, CPU ${stats#* } s |"
    stop_telemd
}

scenario_sqlite() {
    say "SQLite end to end"
    store_run sqlite sqlite
}

scenario_mariadb() {
    say "MariaDB end to end"
    ensure_services
    mariadb --no-defaults --socket="$TELEM_TEST_MARIADB_SOCKET" -uroot -e 'DROP DATABASE IF EXISTS bench; CREATE DATABASE bench'
    TELEM_MARIADB_PASSWORD=$TELEM_TEST_MARIADB_PASSWORD store_run mariadb mariadb \
        --sink "mariadb://telem@localhost/bench?socket=$TELEM_TEST_MARIADB_SOCKET"
}

scenario_redis() {
    say "Redis sink"
    ensure_services
    "$root/build-release/bench/bench_redis" "redis://127.0.0.1:$TELEM_TEST_REDIS_PORT/0" >"$work/redis.txt" 2>&1 || true
    sed 's/^/    /' "$work/redis.txt" >&2
    while read -r line; do
        row "| redis: $line | | | |"
    done < <(grep -E 'per s|/s' "$work/redis.txt")
}

scenario_client() {
    say "clients"
    local dir=$work/client
    start_telemd "$dir" --sink "mariadb://telem@127.0.0.1:1/none"
    "$root/build-release/bench/bench_client" "unix:$dir/telemd.sock" >"$work/client.txt" 2>&1 || true
    sed 's/^/    /' "$work/client.txt" >&2
    while read -r line; do
        row "| C client: $line | | | |"
    done < <(grep -E 'ns|/s' "$work/client.txt")
    /usr/bin/python3 bench/bench_client.py "unix:$dir/telemd.sock" >"$work/client-py.txt" 2>&1 || true
    while read -r line; do
        row "| Python client: $line | | | |"
    done < <(grep -E '/s' "$work/client-py.txt")
    stop_telemd
}

scenario_baseline() {
    say "the old design (one Python process per script, own pools)"
    ensure_services
    mariadb --no-defaults --socket="$TELEM_TEST_MARIADB_SOCKET" -uroot -e 'DROP DATABASE IF EXISTS baseline; CREATE DATABASE baseline'
    MDB_SOCKET=$TELEM_TEST_MARIADB_SOCKET MDB_USER=root MDB_DB=baseline \
        /usr/bin/python3 ../shared/baseline/seed_load.py 100 3 2000 >"$work/baseline.txt" 2>&1 || true
    sed 's/^/    /' "$work/baseline.txt" >&2
    row "| old design, 100x3 processes x 2000 records, pymysql executemany of 50 | $(tr '\n' ' ' <"$work/baseline.txt" | cut -c1-300) | | |"
}

: >"$results"
for s in "${scenarios[@]}"; do
    "scenario_$s"
done

{
    echo "# Benchmarks"
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(. /etc/os-release; echo "$PRETTY_NAME")."
    echo "Command: \`bash bench/run.sh ${scenarios[*]}\` (BENCH_SECONDS=$seconds, BENCH_RATES=\"$rates\")."
    echo "The machine is shared and noisy: compare figures within one run."
    echo
    echo "| scenario | result | latency | telemd |"
    echo "| --- | --- | --- | --- |"
    cat "$results"
} >"$work/BENCHMARKS.run.md"
cat "$work/BENCHMARKS.run.md"
cp "$work/BENCHMARKS.run.md" "${BENCH_OUT:-$root/bench/last-run.md}"
