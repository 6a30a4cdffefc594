#!/usr/bin/env bash
# Single read, side by side in one run: nginx `proxy_pass` and Switchboard in front of the same
# PingBack simulator, under the same wrk load, alternating in rounds. Prints a markdown table with,
# for each, requests/s, latency and the CPU each process spent per request (method:
# bench/README.md, "proxy").
#
#   bash bench/proxy.sh                # 32 connections, 10 s per run, 3 rounds
#   CONNECTIONS=64 DURATION=20 ROUNDS=5 bash bench/proxy.sh
#
# Installs nginx and wrk from Debian's packages when missing; builds the release binary. The
# gateway runs with its page cache off (`cache_ttl_ms = 0`): every request it serves is one vendor
# request, as every request nginx serves is. It still authenticates the caller, applies the
# client's and the connection's quotas, normalizes the vendor's JSON and records metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

connections="${CONNECTIONS:-32}"
duration="${DURATION:-10}"
rounds="${ROUNDS:-3}"
threads="${THREADS:-2}"
bin="$PWD/target/release/switchboard"

. scripts/lib.sh
. bench/single-read.sh
ensure_installed nginx nginx wrk wrk
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
cargo build --release --quiet --bin switchboard

work="$(mktemp -d /tmp/switchboard-bench-proxy.XXXXXX)"
stop() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    stop_spawned
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

start_single_read

# nginx: as many workers as cores, keep-alive to the simulator, the vendor's token set by nginx.
nginx_port="$(free_port)"
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream sim { server 127.0.0.1:$sim_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://sim/pingback/api/v1/conversations/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $pingback_jwt";
        }
    }
}
CONF
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -g 'daemon on;'

gateway_port="$(free_port)"
spawn "$work/gateway.log" env SWITCHBOARD_LOG=warn "$bin" serve --config "$work/gateway.toml" --bind "127.0.0.1:$gateway_port"
gateway_pid="${spawned[-1]}"
wait_ready "$bin" "http://127.0.0.1:$gateway_port/healthz"

nginx_url="http://127.0.0.1:$nginx_port/$conversation"
gateway_url="http://127.0.0.1:$gateway_port$(single_read_path)"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$nginx_url")" = 200 ] || { echo "nginx does not serve $nginx_url" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$single_read_auth" "$gateway_url")" = 200 ] ||
    { echo "the gateway does not serve $gateway_url" >&2; exit 1; }

nginx_pids() { echo "$(cat "$work/nginx.pid")" $(ps --ppid "$(cat "$work/nginx.pid")" -o pid=); }

# One run: wrk against URL while the proxy processes PIDS serve it; prints
# "rps p50_ms p99_ms errors proxy_us sim_us wrk_us" (CPU microseconds per request).
run_wrk() { # url, "pids", [wrk args...]
    local url="$1" pids="$2"
    shift 2
    wrk_with_cpu "$work/wrk.out" "$pids" "$sim_pid" -- \
        -t"$threads" -c"$connections" -d"${duration}s" --latency "$@" "$url"
}

echo "# Single read: nginx proxy_pass vs Switchboard"
echo
echo "- one PingBack conversation of the simulator, \`wrk -t$threads -c$connections -d${duration}s\`, $rounds rounds, alternating"
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- Switchboard: release build, \`cache_ttl_ms = 0\` (one vendor request per request), memory store"
echo "- CPU µs per request: user + system time of the proxy (nginx: master and workers), the simulator and wrk, over the run"
echo
echo "| round | path | req/s | p50 | p99 | errors | ratio to nginx (req/s) | CPU µs per request: proxy / simulator / wrk | gateway RSS after |"
echo "|---|---|---:|---:|---:|---:|---:|---|---:|"
wrk -t1 -c4 -d2s "$nginx_url" >/dev/null
wrk -t1 -c4 -d2s -H "$single_read_auth" "$gateway_url" >/dev/null
for round in $(seq "$rounds"); do
    read -r n_rps n_p50 n_p99 n_bad n_proxy n_sim n_wrk <<<"$(run_wrk "$nginx_url" "$(nginx_pids)")"
    read -r g_rps g_p50 g_p99 g_bad g_proxy g_sim g_wrk <<<"$(run_wrk "$gateway_url" "$gateway_pid" -H "$single_read_auth")"
    ratio="$(awk -v g="$g_rps" -v n="$n_rps" 'BEGIN { printf "%.2fx", g / n }')"
    echo "| $round | nginx \`proxy_pass\` → simulator | $n_rps | $n_p50 ms | $n_p99 ms | $n_bad | 1.00x | $n_proxy / $n_sim / $n_wrk | – |"
    echo "| $round | Switchboard → simulator | $g_rps | $g_p50 ms | $g_p99 ms | $g_bad | $ratio | $g_proxy / $g_sim / $g_wrk | $(($(awk '/VmRSS/ { print $2 }' "/proc/$gateway_pid/status") / 1024)) MB |"
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
