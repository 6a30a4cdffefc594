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
