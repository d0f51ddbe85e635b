#!/usr/bin/env bash
# build.sh: configures (once) and builds the release build in ./build: telemd, telemctl and the
# client library, warnings as errors. Run scripts/install-deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f build/build.ninja ]]; then
    meson setup build --buildtype=release -Dwerror=true
fi
ninja -C build
