#!/usr/bin/env bash
# Where a single read's instructions go: the gateway of bench/proxy.sh run under
# `valgrind --tool=callgrind` (instruction counts are stable on a shared machine, unlike time),
# REQUESTS sequential reads of one PingBack conversation over one keep-alive connection, then
# `callgrind_annotate` of the whole run and the instructions per request.
#
#   bash bench/profile.sh              # 2000 reads
#   REQUESTS=500 TOP=60 bash bench/profile.sh
#   OUT=/tmp/cg.out bash bench/profile.sh   # keep the callgrind file for `callgrind_annotate --inclusive=yes`
#   READ_PATH='/v1/conversations?limit=50' REQUESTS=40 bash bench/profile.sh   # another read: page 1 of the inbox
#   STORE=embedded bash bench/profile.sh   # with the embedded file, as `serve` runs by default
#   BIN=/path/to/switchboard bash bench/profile.sh   # another build (nothing is built)
#   LOG=info bash bench/profile.sh     # at another log level (`warn` by default, as the benchmarks run)
#
# Installs valgrind from Debian's packages when missing; builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."

requests="${REQUESTS:-2000}"
top="${TOP:-40}"
bin="${BIN:-$PWD/target/release/switchboard}"

. scripts/lib.sh
. bench/single-read.sh
ensure_installed valgrind valgrind
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin switchboard

work="$(mktemp -d /tmp/switchboard-bench-profile.XXXXXX)"
out="${OUT:-$work/callgrind.out}"
stop() {
    stop_spawned
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

start_single_read
gateway_port="$(free_port)"
spawn "$work/gateway.log" env SWITCHBOARD_LOG="${LOG:-warn}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bin" serve --config "$work/gateway.toml" --bind "127.0.0.1:$gateway_port"
gateway_pid="${spawned[-1]}"
wait_ready "$bin" "http://127.0.0.1:$gateway_port/healthz"

# The reads, after a warm-up; instructions are collected only while the measured reads run.
read_n() { # count
    python3 - "$gateway_port" "${READ_PATH:-$(single_read_path)}" "$1" <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    conn.request("GET", path, headers={"Authorization": "Bearer demo-token"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"read answered {r.status}")
PY
}
read_n 50
callgrind_control --instr=on "$gateway_pid" >/dev/null
read_n "$requests"
callgrind_control --instr=off "$gateway_pid" >/dev/null
callgrind_control --dump=measured "$gateway_pid" >/dev/null
measured="$(ls -t "$out".* | head -1)"
total="$(callgrind_annotate "$measured" | awk '/PROGRAM TOTALS/ && !t { gsub(",", "", $1); t = $1 } END { print t }')"
echo "# ${READ_PATH:-Single read} under callgrind: $requests reads, $((total / requests)) instructions per read"
echo
callgrind_annotate "$measured" | sed -n '/^--.*$/,$p' | grep -v '^$' | head -n "$((top + 6))"
[ -n "${OUT:-}" ] && echo "kept: $measured"
