#!/usr/bin/env bash
# The workspace tests, on a fresh machine too: installs what they need (redis-server, and
# chromium with chromium-driver for the console's browser test, from Debian's packages) when
# missing, then runs `cargo test --workspace` with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
ensure_installed redis-server redis-server chromium chromium chromedriver chromium-driver

cargo test --workspace "$@"
