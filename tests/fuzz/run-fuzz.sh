#!/usr/bin/env bash
# run-fuzz.sh EXE CORPUS SECONDS ARTIFACTS: runs one libFuzzer target for SECONDS on a temporary
# copy of its seed corpus (so the committed corpus is never modified), and keeps any crashing
# input in ARTIFACTS, printing it so the test log shows what failed.
set -euo pipefail
exe=$1 corpus=$2 seconds=$3 artifacts=$4

work=$(mktemp -d "${TMPDIR:-/tmp}/telem-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"
if [[ -d $corpus ]]; then
    cp -R "$corpus"/. "$work/corpus"/
fi
seeds=$(find "$work/corpus" -type f | wc -l)
if ((seeds == 0)); then
    echo "run-fuzz: no seed corpus in $corpus" >&2
    exit 1
fi
echo "run-fuzz: $(basename "$exe") for ${seconds}s on $seeds seeds"

rc=0
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work/corpus" || rc=$?
if ((rc != 0)); then
    for f in "$artifacts"/*; do
        [[ -f $f ]] || continue
        echo "run-fuzz: failing input $f:" >&2
        od -A d -c "$f" | head -40 >&2
    done
fi
exit "$rc"
