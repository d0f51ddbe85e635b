#!/usr/bin/env bash
# install-deps.sh: installs every Debian 12 package telem needs to build, test and run: the C
# toolchain (gcc, clang with libFuzzer), meson and ninja, the libraries (libevent, SQLite, inih,
# cmocka, zlib, MariaDB Connector/C, hiredis), the servers the integration tests start
# (mariadb-server, redis-server), and the tools the tests call (python3 with pymysql and redis,
# sqlite3, curl, promtool from the prometheus package).
#
# It asks dpkg first and does nothing when everything is already there, so running it before
# every build costs well under a second. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
    build-essential gcc clang libclang-rt-14-dev clang-format meson ninja-build pkg-config
    libevent-dev libsqlite3-dev libinih-dev libcmocka-dev zlib1g-dev libmariadb-dev
    libhiredis-dev
    mariadb-server mariadb-client redis-server redis-tools
    python3 python3-pymysql python3-redis sqlite3 curl prometheus
)

# One dpkg-query for all of them: a package it does not list as installed is missing.
installed=" $(dpkg-query -W -f='${Package}:${db:Status-Status} ' "${packages[@]}" 2>/dev/null || true) "
missing=()
for p in "${packages[@]}"; do
    [[ $installed == *" $p:installed "* ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "install-deps: missing packages (${missing[*]}) and not root: run as root" >&2
        exit 1
    fi
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" </dev/null
