# Shell helpers of the repo's scripts; sourced (`. scripts/lib.sh`), not run.

# ensure_installed COMMAND PACKAGE [COMMAND PACKAGE ...]: installs from Debian's packages each
# PACKAGE whose COMMAND is missing (with sudo unless root).
ensure_installed() {
    local missing=()
    while [ $# -ge 2 ]; do
        command -v "$1" >/dev/null 2>&1 || missing+=("$2")
        shift 2
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "$(basename "$0"): installing ${missing[*]} (Debian packages)" >&2
    local sudo="sudo"
    [ "$(id -u)" -eq 0 ] && sudo=""
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# free_port: a loopback port nobody listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready BINARY URL: waits until URL answers 2xx (`switchboard healthcheck`), at most 20 s;
# fails otherwise.
wait_ready() {
    for _ in $(seq 200); do
        if "$1" healthcheck --url "$2" --timeout-secs 1 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$(basename "$0"): $2 did not become ready" >&2
    return 1
}

# Background processes started with `spawn`; `stop_spawned` stops them, by their ids.
spawned=()

# spawn LOG COMMAND [ARG...]: runs COMMAND in the background, its output in LOG.
spawn() {
    local log="$1"
    shift
    "$@" >"$log" 2>&1 &
    spawned+=($!)
}

stop_spawned() {
    local pid
    for pid in "${spawned[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${spawned[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# start_redis DIR: a redis-server on a free loopback port, as docker-compose.yml runs it (AOF
# with an fsync every second, noeviction), its files and log in DIR; sets redis_port.
start_redis() {
    redis_port="$(free_port)"
    spawn "$1/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$1" \
        --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save ''
}

# start_sim BINARY DIR [ARG...]: the vendor simulators on a free loopback port (log in DIR),
# ready; sets sim_port.
start_sim() {
    local bin="$1" dir="$2"
    shift 2
    sim_port="$(free_port)"
    spawn "$dir/sim.log" "$bin" sim --bind "127.0.0.1:$sim_port" "$@"
    wait_ready "$bin" "http://127.0.0.1:$sim_port/_control"
}

# cpu_ticks PID...: the CPU time (user + system) the processes used so far, in clock ticks.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$total"
}

# wrk_with_cpu OUT "PID..." ["PID..." ...] -- WRK_ARGS...: runs `wrk WRK_ARGS` (pass --latency;
# its output in OUT) and prints "rps p50_ms p99_ms errors", then the microseconds of CPU per
# request each group of processes spent during the run, then wrk's own. Errors: non-2xx answers,
# plus one when wrk saw socket errors.
wrk_with_cpu() {
    local out="$1" groups=() before=() spent="" i
    shift
    while [ "$1" != "--" ]; do
        groups+=("$1")
        shift
    done
    shift
    # shellcheck disable=SC2086 # a group is a list of process ids
    for i in "${!groups[@]}"; do before[i]="$(cpu_ticks ${groups[i]})"; done
    TIMEFORMAT='%U %S'
    { time wrk "$@" >"$out"; } 2>"$out.time"
    # shellcheck disable=SC2086
    for i in "${!groups[@]}"; do spent+="$(($(cpu_ticks ${groups[i]}) - before[i])) "; done
    awk -v spent="$spent" -v tick_us="$((1000000 / $(getconf CLK_TCK)))" \
        -v wrk="$(awk '{ print ($1 + $2) * 1000000 }' "$out.time")" '
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
        / requests in / { n = $1 }
        END {
            printf "%.0f %.3f %.3f %d", rps, p50, p99, errors
            groups = split(spent, ticks, " ")
            for (g = 1; g <= groups; g++) printf " %.0f", ticks[g] * tick_us / n
            printf " %.0f\n", wrk / n
        }' "$out"
}
