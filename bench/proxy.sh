#!/usr/bin/env bash
# Single read, side by side in one run: nginx `proxy_pass` and Switchboard in front of the same
# PingBack simulator, under the same wrk load, alternating in rounds. Prints a markdown table with,
# for each, requests/s, latency and the CPU each process spent per request (method:
# bench/README.md, "proxy").
#
#   bash bench/proxy.sh                # 32 connections, 10 s per run, 3 rounds
#   CONNECTIONS=64 DURATION=20 ROUNDS=5 bash bench/proxy.sh
#   STORE=memory bash bench/proxy.sh   # the memory store (default: the embedded file, as `serve`)
#   BIN=/path/to/switchboard bash bench/proxy.sh   # another build (nothing is built)
#
# Installs nginx and wrk from Debian's packages when missing; builds the release binary. Two
# gateways run: one with its page cache off (`cache_ttl_ms = 0`), where every request it serves is
# one vendor request, as every request nginx serves is; and one with the default 2 s cache. Both
# still authenticate the caller, apply the client's and the connection's quotas, normalize the
# vendor's JSON and record metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

connections="${CONNECTIONS:-32}"
duration="${DURATION:-10}"
rounds="${ROUNDS:-3}"
threads="${THREADS:-2}"
export STORE="${STORE:-embedded}"
bin="${BIN:-$PWD/target/release/switchboard}"

. scripts/lib.sh
. bench/single-read.sh
ensure_installed nginx nginx wrk wrk
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin switchboard

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

# The same gateway with the default page cache (2 s): most reads are served without a vendor call.
sed 's/^cache_ttl_ms = 0$/cache_ttl_ms = 2000/' "$work/gateway.toml" >"$work/cached.toml"
sed -i 's|state.db|cached.db|' "$work/cached.toml"
cached_port="$(free_port)"
spawn "$work/cached.log" env SWITCHBOARD_LOG=warn "$bin" serve --config "$work/cached.toml" --bind "127.0.0.1:$cached_port"
cached_pid="${spawned[-1]}"
wait_ready "$bin" "http://127.0.0.1:$cached_port/healthz"

nginx_url="http://127.0.0.1:$nginx_port/$conversation"
gateway_url="http://127.0.0.1:$gateway_port$(single_read_path)"
cached_url="http://127.0.0.1:$cached_port$(single_read_path)"
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
echo "- Switchboard: release build, $STORE store; \`cache_ttl_ms = 0\` (one vendor request per request), and the default 2 s cache"
echo "- CPU µs per request: user + system time of the proxy (nginx: master and workers), the simulator and wrk, over the run"
echo
echo "| round | path | req/s | p50 | p99 | errors | ratio to nginx (req/s) | CPU µs per request: proxy / simulator / wrk | proxy CPU per request ÷ nginx's | gateway RSS after |"
echo "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"
wrk -t1 -c4 -d2s "$nginx_url" >/dev/null
wrk -t1 -c4 -d2s -H "$single_read_auth" "$gateway_url" >/dev/null
wrk -t1 -c4 -d2s -H "$single_read_auth" "$cached_url" >/dev/null
for round in $(seq "$rounds"); do
    read -r n_rps n_p50 n_p99 n_bad n_proxy n_sim n_wrk <<<"$(run_wrk "$nginx_url" "$(nginx_pids)")"
    read -r g_rps g_p50 g_p99 g_bad g_proxy g_sim g_wrk <<<"$(run_wrk "$gateway_url" "$gateway_pid" -H "$single_read_auth")"
    read -r c_rps c_p50 c_p99 c_bad c_proxy c_sim c_wrk <<<"$(run_wrk "$cached_url" "$cached_pid" -H "$single_read_auth")"
    ratio() { awk -v g="$1" -v n="$2" 'BEGIN { printf "%.2fx", g / n }'; }
    rss() { echo "$(($(awk '/VmRSS/ { print $2 }' "/proc/$1/status") / 1024)) MB"; }
    echo "| $round | nginx \`proxy_pass\` → simulator | $n_rps | $n_p50 ms | $n_p99 ms | $n_bad | 1.00x | $n_proxy / $n_sim / $n_wrk | 1.00x | – |"
    echo "| $round | Switchboard, cache off → simulator | $g_rps | $g_p50 ms | $g_p99 ms | $g_bad | $(ratio "$g_rps" "$n_rps") | $g_proxy / $g_sim / $g_wrk | $(ratio "$g_proxy" "$n_proxy") | $(rss "$gateway_pid") |"
    echo "| $round | Switchboard, 2 s cache → simulator | $c_rps | $c_p50 ms | $c_p99 ms | $c_bad | $(ratio "$c_rps" "$n_rps") | $c_proxy / $c_sim / $c_wrk | $(ratio "$c_proxy" "$n_proxy") | $(rss "$cached_pid") |"
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
