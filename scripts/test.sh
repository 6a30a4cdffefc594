#!/usr/bin/env bash
# The workspace tests, on a fresh machine too: installs what they need (redis-server, from
# Debian's package) when missing, then runs `cargo test --workspace` with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
ensure_installed redis-server redis-server

cargo test --workspace "$@"
