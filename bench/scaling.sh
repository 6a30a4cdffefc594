#!/usr/bin/env bash
# The merged inbox as connections grow: page 1 through a `switchboard serve` process with COPIES
# copies of the simulator's four connections (4, 16 and 64 connections by default), every vendor
# call held LATENCY_MS by the simulator. For each size: page 1's latency against one vendor call
# (ChatbotX's first list request, the largest of page 1, sent straight to the simulator under
# the same latency), the upstream requests a page costs (the simulator's `GET /_control`
# counters), and the gateway's memory from /proc (VmRSS when started, VmHWM at the end).
#
#   bash bench/scaling.sh                      # 4, 16, 64 connections; 20 pages each
#   COPIES="1 16" PAGES=50 LATENCY_MS=200 bash bench/scaling.sh
#
# Environment: COPIES (1 4 16), PAGES (20), LATENCY_MS (50), CONVERSATIONS per vendor (3000),
# CACHE_TTL_MS (0: every page pays its upstream requests), STORE (embedded | memory; default
# embedded, as `serve` runs by default), SORT_WINDOW_PAGES (Octopush's `sort_window_pages`;
# unset: its default, 10).
set -euo pipefail
cd "$(dirname "$0")/.."

copies="${COPIES:-1 4 16}"
pages="${PAGES:-20}"
latency_ms="${LATENCY_MS:-50}"
conversations="${CONVERSATIONS:-3000}"
bin="${BIN:-$PWD/target/release/switchboard}"

. scripts/lib.sh
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin switchboard

work="$(mktemp -d /tmp/switchboard-bench-scaling.XXXXXX)"
stop() {
    stop_spawned
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

start_sim "$bin" "$work" --conversations "$conversations" --no-rate-limits
sim_pid="${spawned[-1]}"
sim="http://127.0.0.1:$sim_port"

# gateway.toml with COPIES copies of each connection (ids suffixed -1, -2, … past one copy),
# every quota far above the load (still checked on every call), no change-feed polling.
config() { # copies, gateway port
    "$bin" sim --bind "127.0.0.1:$sim_port" --print-config | python3 -c '
import os, sys
copies, port, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
store = os.environ.get("STORE", "embedded")
text = sys.stdin.read()
head, _, connections = text.partition("# Connections")
connections = connections.split("[[connections]]\n")[1:]
quota = "rate_limit = { requests = 100000000, per_seconds = 1 }\n"
ttl = os.environ.get("CACHE_TTL_MS", "0")
server = f"[server]\nbind = \"127.0.0.1:{port}\"\ncursor_secret = \"bench\"\ncache_ttl_ms = {ttl}\n"
store = f"[store]\nkind = \"memory\"\n" if store == "memory" else f"[store]\npath = \"{work}/state.db\"\n"
head = head.replace("[server]\nbind = \"127.0.0.1:8080\"\n", server + "\n" + store, 1)
head = head.replace("scopes = [", quota + "scopes = [", 1)
out = [head]
for body in connections:
    for k in range(1, copies + 1):
        first, rest = body.split("\n", 1)
        ident = first if copies == 1 else first[:-1] + f"-{k}\""
        window = os.environ.get("SORT_WINDOW_PAGES", "")
        if window and "provider = \"octopush\"" in rest:
            rest = rest.rstrip("\n") + f"\nsort_window_pages = {window}\n"
        out.append("[[connections]]\n" + ident + "\n" + quota + rest.rstrip("\n") + "\n\n")
print("".join(out))' "$1" "$2" "$work"
}

set_latency() { # ms
    local vendor
    for vendor in zipchat chatbotx pingback octopush; do
        curl -sf -X PUT "$sim/_control/faults/$vendor" -H 'content-type: application/json' \
            -d "{\"latency_ms\": $1}" >/dev/null
    done
}

# Times `pages` sequential page-1 requests (`limit=50`) and one vendor call as many times;
# prints "page_median page_p90 page_max calls_per_page one_call_median by_vendor".
measure() { # gateway port
    python3 - "$1" "$sim" "$pages" <<'PY'
import http.client, json, statistics, sys, time, urllib.request
port, sim, pages = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def counters():
    with urllib.request.urlopen(f"{sim}/_control") as r:
        return json.load(r)["requests"]

def timed(conn, path, headers):
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    elapsed = time.perf_counter() - start
    if r.status != 200:
        sys.exit(f"{path} answered {r.status}: {body[:300]!r}")
    return elapsed, body

gateway = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
auth = {"Authorization": "Bearer demo-token"}
_, body = timed(gateway, "/v1/conversations?limit=50", auth)  # warm-up: logins, connections
page = json.loads(body)
if page.get("partial"):
    sys.exit(f"page 1 is partial: {page['partial']}")
before = counters()
times = [timed(gateway, "/v1/conversations?limit=50", auth)[0] for _ in range(pages)]
after = counters()
calls = {v: (after[v] - before[v]) / pages for v in after}

host = sim.removeprefix("http://")
vendor = http.client.HTTPConnection(*host.split(":"), timeout=60)
cbx = {"Authorization": "Bearer cbx-switchboard-sim-token"}
timed(vendor, "/chatbotx/api/v1/conversations?perPage=50", cbx)
one = [timed(vendor, "/chatbotx/api/v1/conversations?perPage=50", cbx)[0] for _ in range(pages)]

times.sort()
ms = lambda s: f"{s * 1000:.1f}"
by_vendor = " · ".join(f"{v} {c:g}" for v, c in sorted(calls.items()))
print(ms(statistics.median(times)), ms(times[int(len(times) * 0.9) - 1]), ms(times[-1]),
      f"{sum(calls.values()):g}", ms(statistics.median(one)), by_vendor, sep="\t")
PY
}

echo "# The inbox as connections grow"
echo
echo "- \`switchboard serve\` (release build, ${STORE:-embedded} store, \`cache_ttl_ms = ${CACHE_TTL_MS:-0}\`)${SORT_WINDOW_PAGES:+, Octopush \`sort_window_pages = $SORT_WINDOW_PAGES\`}, $conversations conversations per simulated vendor, $latency_ms ms injected on every vendor call"
echo "- $pages sequential requests of page 1 (\`limit=50\`) per size, after one warm-up page; one vendor call = ChatbotX's first list request as page 1 sends it (\`perPage=50\`), straight to the simulator"
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| connections | page 1 median | p90 | max | one vendor call | median ÷ one call | upstream calls per page (by vendor) | CPU per page: gateway / simulator | gateway RSS at start | gateway peak RSS (VmHWM) |"
echo "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"
for k in $copies; do
    port="$(free_port)"
    config "$k" "$port" >"$work/gateway-$k.toml"
    set_latency 0
    spawn "$work/gateway-$k.log" env SWITCHBOARD_LOG=warn "$bin" serve --config "$work/gateway-$k.toml"
    pid="${spawned[-1]}"
    wait_ready "$bin" "http://127.0.0.1:$port/healthz"
    rss_start="$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")"
    set_latency "$latency_ms"
    ticks_before="$(cpu_ticks "$pid") $(cpu_ticks "$sim_pid")"
    IFS=$'\t' read -r median p90 max calls one by_vendor <<<"$(measure "$port")"
    read -r g0 s0 <<<"$ticks_before"
    cpu="$(awk -v g="$(($(cpu_ticks "$pid") - g0))" -v s="$(($(cpu_ticks "$sim_pid") - s0))" -v n="$((pages + 1))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f ms / %.0f ms", g * 1000 / hz / n, s * 1000 / hz / n }')"
    hwm="$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")"
    ratio="$(awk -v m="$median" -v o="$one" 'BEGIN { printf "%.2fx", m / o }')"
    echo "| $((k * 4)) | $median ms | $p90 ms | $max ms | $one ms | $ratio | $calls ($by_vendor) | $cpu | $((rss_start / 1024)) MB | $((hwm / 1024)) MB |"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
set_latency 0
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
