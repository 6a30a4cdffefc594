#!/usr/bin/env bash
# A full traversal of the inbox through a `switchboard serve` process, as a slow client makes it:
# the upstream requests it costs (the simulator's `GET /_control` counters read before and after)
# against the upstream pages it needs, and the gateway's memory during it (VmRSS after every
# page, VmHWM at the end, from /proc).
#
#   bench/traversal.sh                       # cache off: what a client slower than the cache gets
#   PAUSE_MS=3000 CACHE_TTL_MS=2000 bench/traversal.sh   # one page every 3 s, default cache
#
# Environment: CONVERSATIONS per vendor (3000), LIMIT (50), PAUSE_MS between pages (0),
# CACHE_TTL_MS (0), TRAVERSAL_TTL_SECS (the default when unset; 0 keeps no pages), STORE
# (memory | embedded; default embedded, as `serve` runs by default).
set -euo pipefail
cd "$(dirname "$0")/.."

CONVERSATIONS=${CONVERSATIONS:-3000}
LIMIT=${LIMIT:-50}
PAUSE_MS=${PAUSE_MS:-0}
CACHE_TTL_MS=${CACHE_TTL_MS:-0}
STORE=${STORE:-embedded}

cargo build --release --quiet --bin switchboard
BIN=$PWD/target/release/switchboard
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench/traversal.sh: $1 never answered" >&2
    exit 1
}

SIM_PORT=$(free_port)
GW_PORT=$(free_port)
SIM=http://127.0.0.1:$SIM_PORT
"$BIN" sim --bind "127.0.0.1:$SIM_PORT" --conversations "$CONVERSATIONS" --no-rate-limits \
    >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
wait_http "$SIM/_control"

SERVER="cache_ttl_ms = $CACHE_TTL_MS"
if [ -n "${TRAVERSAL_TTL_SECS:-}" ]; then SERVER="$SERVER\ntraversal_ttl_secs = $TRAVERSAL_TTL_SECS"; fi
if [ "$STORE" = embedded ]; then
    STORE_TOML="[store]\nkind = \"embedded\"\npath = \"$WORK/switchboard.redb\"\n"
else
    STORE_TOML="[store]\nkind = \"memory\"\n"
fi
"$BIN" sim --bind "127.0.0.1:$SIM_PORT" --print-config |
    SERVER="$SERVER" STORE_TOML="$STORE_TOML" GW_PORT="$GW_PORT" python3 -c '
import os, sys
text = sys.stdin.read()
quota = "rate_limit = { requests = 100000000, per_seconds = 1 }\n"
server = os.environ["SERVER"].replace("\\n", "\n")
store = os.environ["STORE_TOML"].replace("\\n", "\n")
text = text.replace("[server]\nbind = \"127.0.0.1:8080\"\n",
    "[server]\nbind = \"127.0.0.1:" + os.environ["GW_PORT"] + "\"\n" + server + "\n\n" + store, 1)
text = text.replace("scopes = [", quota + "scopes = [", 1)
text = text.replace("[[connections]]\n", "[[connections]]\n" + quota)
print(text)' >"$WORK/gateway.toml"
SWITCHBOARD_LOG=warn "$BIN" serve --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
wait_http "http://127.0.0.1:$GW_PORT/healthz"

echo "# Inbox traversal through \`switchboard serve\`"
echo
echo "- $CONVERSATIONS conversations per simulated vendor, \`limit=$LIMIT\`, one page every ${PAUSE_MS} ms (plus the page's own time)"
echo "- gateway: release build, \`cache_ttl_ms = $CACHE_TTL_MS\`, traversal_ttl_secs ${TRAVERSAL_TTL_SECS:-default}, $STORE store"
echo "- machine: $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$SIM" "http://127.0.0.1:$GW_PORT" "$GW_PID" "$LIMIT" "$PAUSE_MS" <<'EOF'
import json, sys, time, urllib.parse, urllib.request

sim, gateway, pid, limit, pause_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def counters():
    with urllib.request.urlopen(sim + "/_control") as r:
        return json.load(r)["requests"]

def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0

def page(cursor):
    url = f"{gateway}/v1/conversations?limit={limit}"
    if cursor:
        url += "&cursor=" + urllib.parse.quote(cursor)
    req = urllib.request.Request(url, headers={"Authorization": "Bearer demo-token"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

rss_start = status("VmRSS")
before = counters()
cursor, pages, items, ids, rss = None, 0, 0, set(), []
start = time.monotonic()
while True:
    body = page(cursor)
    pages += 1
    assert not body["partial"], body["partial"]
    items += len(body["data"])
    ids.update(c["id"] for c in body["data"])
    rss.append(status("VmRSS"))
    cursor = body["next_cursor"]
    if not cursor:
        break
    if pause_ms:
        time.sleep(pause_ms / 1000)
wall = time.monotonic() - start
after = counters()
calls = {k: after[k] - before.get(k, 0) for k in after}
total = sum(calls.values())
by_vendor = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
print("| pages | items | distinct | upstream requests (by vendor) | per page | wall time | gateway VmRSS before / max during / after (MB) | VmHWM (MB) |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {pages} | {items} | {len(ids)} | {total} ({by_vendor}) | {total / pages:.2f} | {wall:.1f} s "
      f"| {rss_start} / {max(rss)} / {rss[-1]} | {status('VmHWM')} |")
EOF
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
