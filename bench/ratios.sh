#!/usr/bin/env bash
# bench/ratios.sh TABLE: prints the side-by-side ratios of one bench/run.sh table (its rows on
# standard input or in TABLE) as more table rows: telem's MariaDB store against the old design
# and against InfluxDB with the same senders, and telem's connections against the old design's.
# bench/run.sh appends them to the table it writes; run alone, it reads a saved BENCHMARKS.md.
set -euo pipefail
awk '
# bold: the bold figure of a row ("**123 rows/s stored**" or "**123 lines/s acked**").
function bold(line) {
    if (match(line, /\*\*[0-9]+ /)) return substr(line, RSTART + 2, RLENGTH - 3) + 0
    return 0
}
function field(line, key,    re) {
    re = key "=[0-9.]+"
    if (match(line, re)) return substr(line, RSTART + length(key) + 1, RLENGTH - length(key) - 1) + 0
    return 0
}
# profiles: the N of "Nx3 senders" in a row.
function profiles(line) {
    if (match(line, /[0-9]+x3 senders/)) return substr(line, RSTART, RLENGTH - 10) + 0
    return 0
}
/^\| mariadb, [0-9]+x3 senders, offered/ { telem[profiles($0)] = bold($0) }
/^\| InfluxDB .*, [0-9]+x3 senders/ { influx[profiles($0)] = bold($0) }
/^\| old design, 100x3 processes/ {
    old = field($0, "rows_per_s"); oldconn = field($0, "max_used_connections")
}
/^\| mariadb, 100x3 senders/ {
    if (match($0, /Max_used_connections [0-9]+/)) conn = substr($0, RSTART + 21, RLENGTH - 21)
}
END {
    if (old > 0 && telem[100] > 0)
        printf "| ratio: telem MariaDB / old design, 100x3 (issue 3 and 6 target >= 4) | **%.1fx** (%d / %d rows/s) | | connections: %s (incl. the query) / %d |\n", telem[100] / old, telem[100], old, conn, oldconn
    for (p in telem)
        if (influx[p] > 0)
            printf "| ratio: telem MariaDB rows stored / InfluxDB lines acked, %sx3 | **%.2fx** (%d / %d) | | |\n", p, telem[p] / influx[p], telem[p], influx[p]
}' "${1:-/dev/stdin}"
