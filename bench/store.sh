#!/usr/bin/env bash
# The cost of the shared store: the same requests through three gateways that differ only in
# `[store]` (memory, embedded redb file, Redis), side by side in one run, under a fixed
# concurrent load (wrk), interleaved in rounds; then the Redis round trips per gateway request,
# counted with MONITOR. Prints a markdown table (method: bench/README.md, "store").
#
#   bench/store.sh                      # 9 rounds of 4 s per cell
#   ROUNDS=3 DURATION=2 bench/store.sh  # a quick look
#
# Needs the release binary (built when missing: `cargo build --release`, a few minutes); installs
# wrk and redis-server from Debian's packages when missing. Everything runs on 127.0.0.1 and stops
# when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-9}"
duration="${DURATION:-4}"
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
redis_pid="${spawned[-1]}"
start_sim "$bin" "$work" --no-rate-limits
sim_pid="${spawned[-1]}"

# The connections and client of `sim --print-config`, with quotas far above the load (the GCRA
# still runs on every upstream call: that is the store's cost being measured).
unlimited='rate_limit = { requests = 1000000, per_seconds = 1 }'
"$bin" sim --bind "127.0.0.1:$sim_port" --print-config \
    | sed '/^\[server\]$/,/^$/d' \
    | sed "/^provider = /a $unlimited" \
    | sed "/^scopes = /a $unlimited" >"$work/connections.toml"

declare -A url pid
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
    pid[$name]="${spawned[-1]}"
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

# workload name | gateway suffix | path | concurrent connections (a page of the inbox costs
# about a hundred times a single read: fewer callers keep it under the page deadline)
workloads=(
    "single read, cache off|nocache|/v1/conversations/$conversation|32"
    "inbox page (limit=50), cache off|nocache|/v1/conversations?limit=50|8"
    "inbox page (limit=50), default cache (2 s)|cache|/v1/conversations?limit=50|8"
)

# One cell: `url` under `connections` for the duration, with the CPU time the gateway `pid`,
# Redis, the simulators and wrk itself spent on it, as "rps p50_ms p99_ms errors" then the
# microseconds of CPU per request of the gateway, Redis, the simulators and wrk.
run_wrk() { # url, connections, gateway pid
    wrk_with_cpu "$work/wrk.out" "$3" "$redis_pid" "$sim_pid" -- \
        -t2 -c"$2" -d"${duration}s" --latency -H "$auth" "$1"
}

say "load: wrk -t2, ${duration} s per cell, $rounds rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for w in "${workloads[@]}"; do
    IFS='|' read -r _ suffix path clients <<<"$w"
    for store in "${stores[@]}"; do
        wrk -t2 -c"$clients" -d2s -H "$auth" "${url[$store-$suffix]}$path" >/dev/null
    done
done
# Each round measures every store once per workload, in an order that rotates from round to
# round, so the machine's drift falls on all three alike.
for round in $(seq "$rounds"); do
    for i in "${!workloads[@]}"; do
        IFS='|' read -r _ suffix path clients <<<"${workloads[$i]}"
        for k in 0 1 2; do
            store="${stores[$(((k + round) % 3))]}"
            result="$(run_wrk "${url[$store-$suffix]}$path" "$clients" "${pid[$store-$suffix]}")"
            echo "$round $i $store $result" >>"$work/results"
            say "round $round, ${workloads[$i]%%|*}, $store: $result (req/s p50 p99 non-2xx; CPU µs/request: gateway Redis simulators wrk)"
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
median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for i in "${!workloads[@]}"; do
    IFS='|' read -r _ suffix path _ <<<"${workloads[$i]}"
    trips[$i]="$(round_trips "${url[redis-$suffix]}$path" "bench-$suffix:")"
done

echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Medians of $rounds rounds of wrk -t2 -d${duration}s."
echo "\"vs memory\", measured: the median of each round's requests/s against memory's in the same round (lowest … highest)."
echo "CPU per request: microseconds of CPU (user + system) the gateway and redis-server spent per request; \"all\" adds"
echo "the simulators and wrk: on a machine whose cores are all busy, requests/s goes as 1 / all, which gives \"vs memory, by CPU\"."
echo
echo "| request | connections | store | requests/s | p50 ms | p99 ms | vs memory, measured | CPU µs per request: gateway + Redis (all) | vs memory, by CPU | Redis round trips per request |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"
for i in "${!workloads[@]}"; do
    IFS='|' read -r name _ _ clients <<<"${workloads[$i]}"
    memory_all=""
    for store in "${stores[@]}"; do
        column() { awk -v i="$i" -v s="$store" -v c="$1" '$2 == i && $3 == s { print $c }' "$work/results"; }
        rps="$(column 4 | median)"
        p50="$(column 5 | median)"
        p99="$(column 6 | median)"
        errors="$(column 7 | awk '{ e += $1 } END { print e + 0 }')"
        gateway_cpu="$(column 8 | median)"
        redis_cpu="$(column 9 | median)"
        sim_cpu="$(column 10 | median)"
        wrk_cpu="$(column 11 | median)"
        all_cpu="$(awk -v a="$gateway_cpu" -v b="$redis_cpu" -v c="$sim_cpu" -v d="$wrk_cpu" 'BEGIN { print a + b + c + d }')"
        [ -z "$memory_all" ] && memory_all="$all_cpu"
        by_cpu="$(awk -v m="$memory_all" -v a="$all_cpu" 'BEGIN { printf "%+.1f %%", (m / a - 1) * 100 }')"
        delta="$(awk -v i="$i" -v s="$store" '
            $2 == i && $3 == "memory" { base[$1] = $4 }
            $2 == i && $3 == s { mine[$1] = $4 }
            END { for (r in mine) if (base[r] > 0) print (mine[r] - base[r]) * 100 / base[r] }' "$work/results" \
            | sort -n | awk '{ v[NR] = $1 } END {
                m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%+.1f %% (%+.0f … %+.0f)", m, v[1], v[NR] }')"
        if [ "$store" = memory ]; then delta="–"; by_cpu="–"; fi
        trip="–"
        if [ "$store" = redis ]; then
            IFS='|' read -r per detail <<<"${trips[$i]}"
            trip="$per ($detail)"
        fi
        [ "$errors" -gt 0 ] && trip="$trip; $errors non-2xx"
        cpu="$(awk -v a="$gateway_cpu" -v b="$redis_cpu" -v t="$all_cpu" 'BEGIN { printf "%.0f + %.0f (%.0f)", a, b, t }')"
        echo "| $name | $clients | $store | $rps | $p50 | $p99 | $delta | $cpu | $by_cpu | $trip |"
    done
done
