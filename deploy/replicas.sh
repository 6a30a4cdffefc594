#!/usr/bin/env bash
# docker-compose.yml's topology as plain processes on this machine, no Docker needed: a Redis of
# its own on a free port (AOF on, noeviction), the vendor simulators, three gateway replicas
# sharing that Redis and one cursor secret, and nginx in front of them (round robin) when nginx
# is installed. It runs until Ctrl-C, then stops everything it started.
#
#   deploy/replicas.sh                      # start, print the URLs, wait for Ctrl-C
#   deploy/replicas.sh --load 2000          # also 2000 inbox reads round robin (50 at a time), report
#   deploy/replicas.sh --load 300 --parallel 8 --exit   # ... then stop (a smoke run; CI's)
#
# Environment: SWITCHBOARD_BIN (default target/release/switchboard, else target/debug/switchboard,
# built with `cargo build --release` when neither exists), REPLICAS (default 3), LB_PORT (default
# a free port). redis-server is installed from Debian's package when missing. Callers use the token
# `demo-token`.
set -euo pipefail
cd "$(dirname "$0")/.."

load=0
parallel=50
exit_after=false
while [ $# -gt 0 ]; do
    case "$1" in
        --load) load="$2"; shift 2 ;;
        --parallel) parallel="$2"; shift 2 ;;
        --exit) exit_after=true; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "deploy/replicas.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
replicas="${REPLICAS:-3}"

say() { echo "replicas.sh: $*" >&2; }
. scripts/lib.sh

bin="${SWITCHBOARD_BIN:-}"
if [ -z "$bin" ]; then
    if [ -x target/release/switchboard ]; then bin=target/release/switchboard
    elif [ -x target/debug/switchboard ]; then bin=target/debug/switchboard
    else
        say "no binary yet: cargo build --release (a few minutes)"
        cargo build --release --bin switchboard
        bin=target/release/switchboard
    fi
fi
ensure_installed redis-server redis-server

work="$(mktemp -d /tmp/switchboard-replicas.XXXXXX)"
# nginx's workers (an unprivileged user when started as root) read and write below it.
chmod 755 "$work"
keep_logs=false
stop() {
    stop_spawned
    if $keep_logs; then say "logs kept in $work"; else rm -rf "$work"; fi
}
trap stop EXIT
trap 'exit 130' INT TERM

ready() {
    wait_ready "$bin" "$1" || { keep_logs=true; exit 1; }
}

start_redis "$work"
start_sim "$bin" "$work" || { keep_logs=true; exit 1; }

# One config for every replica: the simulators' connections and the `demo-token` client (what
# `sim --print-config` prints, less its [server] section), the shared Redis and cursor secret.
SWITCHBOARD_CURSOR_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export SWITCHBOARD_CURSOR_SECRET
{
    printf '[server]\ncursor_secret = { env = "SWITCHBOARD_CURSOR_SECRET" }\n\n'
    printf '[store]\nredis_url = "redis://127.0.0.1:%s"\nkey_prefix = "replicas:"\n\n' "$redis_port"
    "$bin" sim --bind "127.0.0.1:$sim_port" --print-config | sed '/^\[server\]$/,/^$/d'
} >"$work/gateway.toml"

urls=()
for n in $(seq "$replicas"); do
    port="$(free_port)"
    spawn "$work/gateway-$n.log" env SWITCHBOARD_LOG=warn \
        "$bin" serve --config "$work/gateway.toml" --bind "127.0.0.1:$port"
    urls+=("http://127.0.0.1:$port")
done
for url in "${urls[@]}"; do ready "$url/readyz"; done

entry=""
if command -v nginx >/dev/null 2>&1; then
    lb_port="${LB_PORT:-$(free_port)}"
    {
        echo "daemon off; pid $work/nginx.pid; worker_processes 1; error_log $work/nginx-error.log;"
        echo "events { worker_connections 1024; }"
        echo "http {"
        echo "  access_log off; client_body_buffer_size 1m; proxy_max_temp_file_size 0;"
        for dir in client_body proxy fastcgi uwsgi scgi; do echo "  ${dir}_temp_path $work/nginx-$dir;"; done
        echo "  upstream switchboard {"
        for url in "${urls[@]}"; do echo "    server ${url#http://};"; done
        echo "    keepalive 32;"
        echo "  }"
        echo "  server {"
        echo "    listen 127.0.0.1:$lb_port;"
        echo "    location / {"
        echo "      proxy_pass http://switchboard; proxy_http_version 1.1;"
        echo "      proxy_set_header Connection \"\"; proxy_next_upstream error timeout;"
        echo "    }"
        echo "  }"
        echo "}"
    } >"$work/nginx.conf"
    spawn "$work/nginx.log" nginx -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf"
    entry="http://127.0.0.1:$lb_port"
    ready "$entry/healthz"
fi

say "Redis      redis://127.0.0.1:$redis_port (AOF in $work)"
say "simulators http://127.0.0.1:$sim_port   (GET /_control: requests per vendor)"
for n in "${!urls[@]}"; do say "replica $((n + 1))  ${urls[$n]}"; done
if [ -n "$entry" ]; then
    say "nginx      $entry   (round robin over the replicas)"
else
    say "no nginx installed (apt-get install nginx-light): send to the replicas yourself"
fi
say "try: curl -H 'Authorization: Bearer demo-token' '${entry:-${urls[0]}}/v1/conversations?limit=5'"

if [ "$load" -gt 0 ]; then
    # Inbox reads, through nginx or round robin over the replicas, $parallel at a time.
    for i in $(seq 0 $((load - 1))); do
        target="${entry:-${urls[$((i % replicas))]}}"
        printf 'url = "%s/v1/conversations?limit=10"\noutput = "/dev/null"\n' "$target"
    done >"$work/load.curl"
    if [ -n "$entry" ]; then via="through nginx"; else via="round robin over the replicas"; fi
    say "sending $load inbox reads $via, $parallel at a time"
    started="$(date +%s%N)"
    curl --silent --no-progress-meter --parallel --parallel-max "$parallel" --config "$work/load.curl" \
        -H 'Authorization: Bearer demo-token' \
        --write-out '%{http_code} %header{retry-after}\n' >"$work/load.out"
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    say "answers in ${elapsed_ms} ms:"
    sort "$work/load.out" | awk '{ print ($2 == "" ? $1 : $1 " with Retry-After") }' | sort | uniq -c >&2
    say "requests each simulated vendor received: $(curl -s "http://127.0.0.1:$sim_port/_control" | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])')"
    say "quotas: zipchat 120 per 60 s, chatbotx 120 per 10 s (the shared budget: a quarter at once, the rest spread)"
    bad="$(awk '!($1 == 200 || ($1 == 503 && $2 != ""))' "$work/load.out" | wc -l)"
    if [ "$bad" -gt 0 ]; then
        say "$bad answers were neither 200 nor 503 with Retry-After"
        keep_logs=true
        exit 1
    fi
fi

if $exit_after; then
    exit 0
fi
say "running; Ctrl-C stops everything (logs in $work until then)"
wait
