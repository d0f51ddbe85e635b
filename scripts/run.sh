#!/usr/bin/env bash
# run.sh: installs what telem needs, builds it, and runs telemd in the foreground on its
# embedded default: data folder ./telem-data (spool, SQLite store telem.db, unix socket
# telemd.sock) and HTTP on 127.0.0.1:8186. telemd prints where it listens. Arguments are passed
# to telemd (for example --config FILE, --http 127.0.0.1:9000, --sink URL); stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh >&2
exec build/src/daemon/telemd "$@"
