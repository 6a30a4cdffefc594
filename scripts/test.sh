#!/usr/bin/env bash
# The workspace tests, on a fresh machine too: installs what they need (redis-server, from
# Debian's package) when missing, then runs `cargo test --workspace` with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    echo "scripts/test.sh: installing redis-server (Debian package) for the store tests" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

cargo test --workspace "$@"
