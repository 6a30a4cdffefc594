#!/usr/bin/env bash
# Single read, side by side in one run: nginx `proxy_pass` and Switchboard in front of the same
# PingBack simulator, under the same wrk load. Prints a markdown table.
#
#   bash bench/proxy.sh                # 32 connections, 10 s per run, 2 rounds
#   CONNECTIONS=64 DURATION=20s ROUNDS=3 bash bench/proxy.sh
#
# Installs nginx and wrk from Debian's packages when missing. Builds the release binary. The
# gateway runs with its page cache off (`cache_ttl_ms = 0`): every request it serves is one vendor
# request, as every request nginx serves is. It still authenticates the caller, applies the
# client's and the connection's quotas, normalizes the vendor's JSON and records metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if ((${#need[@]})); then
    echo "bench/proxy.sh: installing ${need[*]} (Debian packages)" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet
BIN=$PWD/target/release/switchboard
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
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
    echo "bench/proxy.sh: $1 never answered" >&2
    exit 1
}

SIM_PORT=$(free_port)
NGINX_PORT=$(free_port)
GW_PORT=$(free_port)
SIM=http://127.0.0.1:$SIM_PORT

"$BIN" sim --bind "127.0.0.1:$SIM_PORT" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
wait_http "$SIM/_control"

JWT=$(curl -s -X POST "$SIM/pingback/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"owner@helpdesk.example.com","password":"pingback-sim-owner-password"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
CONV=$(curl -s -H "Authorization: Bearer $JWT" "$SIM/pingback/api/v1/conversations/?page=1&limit=1" |
    python3 -c 'import json, sys; d = json.load(sys.stdin); d = d.get("data", d) if isinstance(d, dict) else d; print(d[0]["id"])')

# nginx: as many workers as cores, keep-alive to the simulator, the vendor's token set by nginx.
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream sim { server 127.0.0.1:$SIM_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://sim/pingback/api/v1/conversations/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $JWT";
        }
    }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon on;'

# Switchboard: the simulator's config, cache off, memory store, quotas out of the way.
"$BIN" sim --bind "127.0.0.1:$SIM_PORT" --print-config |
    python3 -c '
import sys
text = sys.stdin.read()
quota = "rate_limit = { requests = 100000000, per_seconds = 1 }\n"
text = text.replace("[server]\nbind = \"127.0.0.1:8080\"\n",
    "[server]\nbind = \"127.0.0.1:'"$GW_PORT"'\"\ncache_ttl_ms = 0\n\n[store]\nkind = \"memory\"\n", 1)
text = text.replace("scopes = [", quota + "scopes = [", 1)
text = text.replace("provider = \"pingback\"\n", "provider = \"pingback\"\n" + quota, 1)
print(text)' >"$WORK/gateway.toml"
SWITCHBOARD_LOG=warn "$BIN" serve --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
GW_PID=$!
wait_http "http://127.0.0.1:$GW_PORT/healthz"

NGINX_URL="http://127.0.0.1:$NGINX_PORT/$CONV"
GW_URL="http://127.0.0.1:$GW_PORT/v1/conversations/helpdesk-pingback:$CONV"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$NGINX_URL")" = 200 ] || { echo "nginx does not serve $NGINX_URL" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer demo-token' "$GW_URL")" = 200 ] ||
    { echo "the gateway does not serve $GW_URL" >&2; exit 1; }

# wrk's latency distribution in ms: "50%" and "99%" lines, and Requests/sec.
run_wrk() {
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
    python3 - "$out" <<'EOF'
import re, sys
out = sys.argv[1]
def ms(label):
    m = re.search(r"^\s*" + re.escape(label) + r"\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
print(f"{rps:.0f} {ms('50%'):.2f} {ms('99%'):.2f} {non2xx.group(1) if non2xx else 0}")
EOF
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "# Single read: nginx proxy_pass vs Switchboard"
echo
echo "- one PingBack conversation of the simulator, \`wrk -t$THREADS -c$CONNECTIONS -d$DURATION\`, $ROUNDS rounds, alternating"
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- Switchboard: release build, \`cache_ttl_ms = 0\` (one vendor request per request), memory store"
echo
echo "| round | path | req/s | p50 | p99 | non-2xx | ratio to nginx (req/s) | gateway RSS after |"
echo "|---|---|---|---|---|---|---|---|"
# Warm-up.
wrk -t1 -c4 -d2s "$NGINX_URL" >/dev/null
wrk -t1 -c4 -d2s -H 'Authorization: Bearer demo-token' "$GW_URL" >/dev/null
for round in $(seq "$ROUNDS"); do
    read -r n_rps n_p50 n_p99 n_bad <<<"$(run_wrk "$NGINX_URL")"
    read -r g_rps g_p50 g_p99 g_bad <<<"$(run_wrk -H 'Authorization: Bearer demo-token' "$GW_URL")"
    ratio=$(python3 -c "print(f'{$g_rps / $n_rps:.2f}x')")
    echo "| $round | nginx \`proxy_pass\` → simulator | $n_rps | $n_p50 ms | $n_p99 ms | $n_bad | 1.00x | – |"
    echo "| $round | Switchboard → simulator | $g_rps | $g_p50 ms | $g_p99 ms | $g_bad | $ratio | $(($(rss_kb "$GW_PID") / 1024)) MB |"
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
