#!/usr/bin/env bash
# The cost of the shared store: the same requests through three gateways that differ only in
# `[store]` (memory, embedded redb file, Redis), side by side in one run, under a fixed
# concurrent load (wrk), interleaved in rounds; then the Redis round trips per gateway request,
# counted with MONITOR. Prints a markdown table (method: bench/README.md, "store").
#
#   bench/store.sh                                   # 5 rounds of 6 s per cell, 32 connections
#   ROUNDS=1 DURATION=5 CONNECTIONS=16 bench/store.sh
#
# Needs the release binary (built when missing: `cargo build --release`, a few minutes); installs
# wrk and redis-server from Debian's packages when missing. Everything runs on 127.0.0.1 and stops
# when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
duration="${DURATION:-6}"
connections="${CONNECTIONS:-32}"
samples="${SAMPLES:-200}"
bin="${SWITCHBOARD_BIN:-target/release/switchboard}"

say() { echo "store.sh: $*" >&2; }
. scripts/lib.sh

if [ ! -x "$bin" ]; then
    say "building the release binary (a few minutes)"
    cargo build --release --bin switchboard
fi
ensure_installed wrk wrk redis-server redis-server

work="$(mktemp -d /tmp/switchboard-bench-store.XXXXXX)"
stop() {
    stop_spawned
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Redis as docker-compose.yml runs it; the simulators without their own quotas, so only the
# gateway is measured.
start_redis "$work"
start_sim "$bin" "$work" --no-rate-limits

# The connections and client of `sim --print-config`, with quotas far above the load (the GCRA
# still runs on every upstream call: that is the store's cost being measured).
unlimited='rate_limit = { requests = 1000000, per_seconds = 1 }'
"$bin" sim --bind "127.0.0.1:$sim_port" --print-config \
    | sed '/^\[server\]$/,/^$/d' \
    | sed "/^provider = /a $unlimited" \
    | sed "/^scopes = /a $unlimited" >"$work/connections.toml"

declare -A url
start_gateway() { # name, [server] extra, [store] section
    local name="$1" port
    port="$(free_port)"
    {
        printf '[server]\ncursor_secret = "bench"\n%s\n\n%s\n\n' "$2" "$3"
        cat "$work/connections.toml"
    } >"$work/$name.toml"
    spawn "$work/$name.log" env SWITCHBOARD_LOG=error \
        "$bin" serve --config "$work/$name.toml" --bind "127.0.0.1:$port"
    url[$name]="http://127.0.0.1:$port"
    wait_ready "$bin" "${url[$name]}/readyz"
}
stores=(memory embedded redis)
store_section() {
    case "$1" in
        memory) echo '[store]'; echo 'kind = "memory"' ;;
        embedded) echo '[store]'; echo "path = \"$work/state-$2.db\"" ;;
        redis) echo '[store]'; echo "redis_url = \"redis://127.0.0.1:$redis_port\""; echo "key_prefix = \"bench-$2:\"" ;;
    esac
}
for store in "${stores[@]}"; do
    start_gateway "$store-nocache" "cache_ttl_ms = 0" "$(store_section "$store" nocache)"
    start_gateway "$store-cache" "" "$(store_section "$store" cache)"
done

auth='Authorization: Bearer demo-token'
conversation="$(curl -sf -H "$auth" "${url[memory-nocache]}/v1/conversations?connection=shop-zipchat&limit=1" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["id"])')"

# workload name | gateway suffix | path
workloads=(
    "single read, cache off|nocache|/v1/conversations/$conversation"
    "inbox page (limit=50), cache off|nocache|/v1/conversations?limit=50"
    "inbox page (limit=50), default cache (2 s)|cache|/v1/conversations?limit=50"
)

# wrk's summary as "rps p50_ms p99_ms errors".
run_wrk() {
    wrk -t2 -c"$connections" -d"${duration}s" --latency -H "$auth" "$1" | awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/) { sub(/s$/, "", v); return v * 1000 }
            return v
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { errors = $NF }
        /Socket errors:/ { errors += 1 }
        END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, errors }'
}

say "load: wrk -t2 -c$connections, ${duration} s per cell, $rounds rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for w in "${workloads[@]}"; do
    IFS='|' read -r _ suffix path <<<"$w"
    for store in "${stores[@]}"; do
        wrk -t2 -c"$connections" -d2s -H "$auth" "${url[$store-$suffix]}$path" >/dev/null
    done
done
for round in $(seq "$rounds"); do
    for i in "${!workloads[@]}"; do
        IFS='|' read -r _ suffix path <<<"${workloads[$i]}"
        for store in "${stores[@]}"; do
            result="$(run_wrk "${url[$store-$suffix]}$path")"
            echo "$i $store $result" >>"$work/results"
            say "round $round, ${workloads[$i]%%|*}, $store: $result (req/s p50 p99 non-2xx)"
        done
    done
done

# Redis round trips per gateway request: the commands the gateway sent, as MONITOR shows them
# (commands a Lua script runs show as "[0 lua]" and are not round trips; only keys under the
# measured gateway's prefix count, after the previous load has drained), over $samples
# sequential requests.
round_trips() { # url, key prefix
    local log="$work/monitor.log"
    sleep 2
    redis-cli -p "$redis_port" monitor >"$log" &
    local monitor=$!
    sleep 0.5
    for _ in $(seq "$samples"); do curl -sf -o /dev/null -H "$auth" "$1"; done
    sleep 0.5
    kill "$monitor"
    wait "$monitor" 2>/dev/null || true
    grep -F "\"$2" "$log" | awk -v n="$samples" '/^[0-9.]+ \[/ && !/ \[[0-9]+ lua\] / { calls++; cmd[tolower($4)]++ }
        END {
            line = "";
            for (c in cmd) line = line sprintf("%s%s %.2f", (line == "" ? "" : ", "), c, cmd[c] / n);
            printf "%.2f|%s\n", calls / n, line
        }' | tr -d '"'
}
declare -A trips
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for i in "${!workloads[@]}"; do
    IFS='|' read -r _ suffix path <<<"${workloads[$i]}"
    trips[$i]="$(round_trips "${url[redis-$suffix]}$path" "bench-$suffix:")"
done

echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Medians of $rounds rounds; wrk -t2 -c$connections -d${duration}s."
echo
echo "| request | store | requests/s | p50 ms | p99 ms | vs memory | Redis round trips per request |"
echo "|---|---|---:|---:|---:|---:|---|"
for i in "${!workloads[@]}"; do
    base=""
    for store in "${stores[@]}"; do
        column() { awk -v i="$i" -v s="$store" -v c="$1" '$1 == i && $2 == s { print $c }' "$work/results"; }
        rps="$(column 3 | median)"
        p50="$(column 4 | median)"
        p99="$(column 5 | median)"
        errors="$(column 6 | awk '{ e += $1 } END { print e + 0 }')"
        [ -z "$base" ] && base="$rps"
        delta="$(awk -v r="$rps" -v b="$base" 'BEGIN { printf "%+.1f %%", (r - b) * 100 / b }')"
        trip="–"
        if [ "$store" = redis ]; then
            IFS='|' read -r per detail <<<"${trips[$i]}"
            trip="$per ($detail)"
        fi
        [ "$errors" -gt 0 ] && trip="$trip; $errors non-2xx"
        echo "| ${workloads[$i]%%|*} | $store | $rps | $p50 | $p99 | $delta | $trip |"
    done
done
