#!/usr/bin/env bash
# test.sh: installs what telem needs, builds it, and runs the whole test suite:
#   1. a debug build with warnings as errors in ./build-test;
#   2. throwaway MariaDB and Redis servers (scripts/test-services.sh) in a temporary folder,
#      stopped by pid when this script exits, however it exits;
#   3. `meson test` in build-test: the unit tests and the C integration tests;
#   4. the libFuzzer targets, built with clang in ./build-fuzz and run briefly on their seeds;
#   5. the release build that scripts/run.sh makes (./build), so README command 1 is checked;
#   6. the Python integration tests (tests/integration, clients/python/tests) against the
#      telemd of build-test.
# It goes on after a failing step so one run shows everything, and ends with one line
# `N passed, N failed` summing meson's and unittest's counts; the exit status is non-zero when
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

passed=0
failed=0
logs=$(mktemp -d "${TMPDIR:-/tmp}/telem-test-logs.XXXXXX")
services=""

cleanup() {
    if [[ -n $services ]]; then
        bash "$root/scripts/test-services.sh" stop "$services" >/dev/null 2>&1 || true
        rm -rf "$services"
    fi
    rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { printf '\n=== %s\n' "$*"; }

# fail_step NAME: one failure for a step that could not run at all (a build, the services).
fail_step() {
    echo "test.sh: FAILED: $1" >&2
    failed=$((failed + 1))
}

# count_meson LOG: adds meson test's summary counts (Ok / Fail / Timeout / Unexpected Pass).
count_meson() {
    local log=$1 ok fail timeout upass
    ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
    fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
    timeout=$(sed -n 's/^Timeout:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
    upass=$(sed -n 's/^Unexpected Pass:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
    if [[ -z $ok ]]; then
        fail_step "meson test printed no summary ($log)"
        return
    fi
    passed=$((passed + ok))
    failed=$((failed + ${fail:-0} + ${timeout:-0} + ${upass:-0}))
}

# count_unittest LOG NAME: adds unittest's counts from its "Ran N tests" and OK/FAILED lines.
count_unittest() {
    local log=$1 name=$2 ran result f e s x u
    ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log" | tail -1)
    if [[ -z $ran ]]; then
        fail_step "$name: unittest did not finish"
        return
    fi
    if ((ran == 0)); then
        fail_step "$name: no test ran"
        return
    fi
    result=$(grep -E '^(OK|FAILED)' "$log" | tail -1)
    f=0 e=0 s=0 x=0 u=0
    if [[ $result == *"("*")"* ]]; then
        local part parts
        result=${result#*(}
        IFS=',' read -ra parts <<<"${result%)*}"
        for part in "${parts[@]}"; do
            part=${part# }
            case $part in
            failures=*) f=${part#*=} ;;
            errors=*) e=${part#*=} ;;
            skipped=*) s=${part#*=} ;;
            "expected failures="*) x=${part#*=} ;;
            "unexpected successes="*) u=${part#*=} ;;
            esac
        done
    fi
    passed=$((passed + ran - f - e - s - x - u))
    failed=$((failed + f + e + u))
}

note "install dependencies"
if ! bash scripts/install-deps.sh; then
    echo "test.sh: installing dependencies failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

note "build (debug, -Dwerror=true) in build-test"
if [[ -f build-test/build.ninja ]]; then
    meson setup --reconfigure build-test >"$logs/setup-test.log" 2>&1
else
    meson setup build-test --buildtype=debug -Dwerror=true >"$logs/setup-test.log" 2>&1
fi
setup_rc=$?
if ((setup_rc != 0)); then
    cat "$logs/setup-test.log"
    echo "test.sh: meson setup build-test failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
if ! ninja -C build-test; then
    echo "test.sh: the build failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
export TELEMD=$root/build-test/src/daemon/telemd
export TELEMCTL=$root/build-test/src/cli/telemctl

note "start throwaway MariaDB and Redis"
services=$(mktemp -d "${TMPDIR:-/tmp}/telem-services.XXXXXX")
if bash scripts/test-services.sh start "$services" >"$logs/services.env" 2>"$logs/services.err"; then
    # shellcheck disable=SC1091
    source "$logs/services.env"
    grep -o 'TELEM_TEST_[A-Z_]*=[^ ]*' "$logs/services.env" | grep -v PASSWORD
else
    cat "$logs/services.err" >&2
    fail_step "scripts/test-services.sh start"
fi

note "meson test (unit and C integration tests)"
meson test -C build-test --print-errorlogs --num-processes 2 2>&1 | tee "$logs/meson-test.log"
count_meson "$logs/meson-test.log"

note "fuzz targets (clang, libFuzzer) in build-fuzz"
# The whole build is instrumented (sanitizers, and coverage for libFuzzer through
# fuzzer-no-link), but only the fuzz targets and what they link are built.
fuzz_setup=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
    -Dc_args=-fsanitize=fuzzer-no-link)
# The unit tests are not needed there; the top-level meson.build reaches tests/fuzz without
# them only when it knows the fuzz option.
if grep -q "get_option('fuzz')" meson.build; then
    fuzz_setup+=(-Dtests=disabled)
fi
fuzz_targets=()
for f in tests/fuzz/fuzz_*.c; do
    [[ -f $f ]] && fuzz_targets+=("tests/fuzz/$(basename "$f" .c)")
done
if ((${#fuzz_targets[@]} == 0)); then
    fail_step "no fuzz target in tests/fuzz"
else
    if [[ -f build-fuzz/build.ninja ]]; then
        meson setup --reconfigure build-fuzz "${fuzz_setup[@]}" >"$logs/setup-fuzz.log" 2>&1
    else
        CC=clang meson setup build-fuzz "${fuzz_setup[@]}" >"$logs/setup-fuzz.log" 2>&1
    fi
    fuzz_rc=$?
    if ((fuzz_rc != 0)); then
        echo "test.sh: meson setup build-fuzz failed:" >&2
        tail -40 "$logs/setup-fuzz.log" >&2
        fail_step "configuring the fuzz build"
    elif ! ninja -C build-fuzz "${fuzz_targets[@]}" >"$logs/build-fuzz.log" 2>&1; then
        echo "test.sh: building the fuzz targets failed:" >&2
        grep -E -A5 'error|FAILED' "$logs/build-fuzz.log" | head -60 >&2
        fail_step "building the fuzz targets"
    else
        meson test -C build-fuzz --no-rebuild --suite fuzz --print-errorlogs --num-processes 2 \
            2>&1 | tee "$logs/meson-fuzz.log"
        count_meson "$logs/meson-fuzz.log"
    fi
fi

note "release build, as scripts/run.sh makes it (scripts/build.sh, warnings as errors)"
if bash scripts/build.sh >"$logs/build-release.log" 2>&1; then
    echo "release build: ok"
    passed=$((passed + 1))
else
    grep -E -A5 'error|FAILED' "$logs/build-release.log" | head -40 >&2
    fail_step "scripts/build.sh (the release build of README command 1)"
fi

python=/usr/bin/python3
for suite in tests/integration clients/python/tests; do
    if [[ ! -d $suite ]]; then
        if [[ $suite == tests/integration ]]; then
            fail_step "$suite is missing"
        fi
        continue
    fi
    note "Python tests: $suite"
    log=$logs/unittest-${suite//\//_}.log
    "$python" -m unittest discover -s "$suite" -p 'test_*.py' -v 2>&1 | tee "$log"
    count_unittest "$log" "$suite"
done

echo
echo "$passed passed, $failed failed"
((failed == 0))
