#!/usr/bin/env bash
# The chaos run of tests/chaos.rs, for minutes: two replicas on a durable Redis in front of the
# simulators, random vendor faults, Redis killed and restarted, a replica killed with SIGKILL.
# Prints the report line: requests, faults injected per kind, recoveries, lost, doubled.
#
#   bash bench/chaos.sh [SECONDS]      (default 180)
#
# PROFILE=debug runs the debug build (no release compile).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_installed redis-server redis-server
SECS=${1:-180}
PROFILE_FLAG=--release
[[ ${PROFILE:-release} == debug ]] && PROFILE_FLAG=
CHAOS_SECS=$SECS cargo test $PROFILE_FLAG --test chaos -- --nocapture 2>&1 | grep -E "chaos report|test result|panicked"
