# The single-read topology of bench/proxy.sh and bench/profile.sh; sourced after scripts/lib.sh,
# with `bin` (the release binary) and `work` (a scratch directory) set.
#
# start_single_read: the vendor simulators (their own quotas lifted) and a PingBack conversation
# to read; writes "$work/gateway.toml", the simulator's connections with the page cache off
# (`cache_ttl_ms = 0`: every request is one vendor request), the memory store (`STORE=embedded`:
# the embedded file, as `serve` runs by default) and every quota far above the load (still
# checked on every request). `CACHE_TTL_MS=2000` turns the page cache on (as `serve` runs by
# default). Sets sim_port, conversation (PingBack's id),
# pingback_jwt (a vendor token for a proxy that speaks to PingBack directly).
start_single_read() {
    start_sim "$bin" "$work" --no-rate-limits
    sim_pid="${spawned[-1]}"
    local sim="http://127.0.0.1:$sim_port"
    pingback_jwt="$(curl -sf -X POST "$sim/pingback/api/v1/auth/login" -H 'content-type: application/json' \
        -d '{"email":"owner@helpdesk.example.com","password":"pingback-sim-owner-password"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
    conversation="$(curl -sf -H "Authorization: Bearer $pingback_jwt" "$sim/pingback/api/v1/conversations/?page=1&limit=1" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); d = d.get("data", d) if isinstance(d, dict) else d; print(d[0]["id"])')"
    local unlimited='rate_limit = { requests = 100000000, per_seconds = 1 }'
    {
        local store='kind = "memory"'
        [ "${STORE:-memory}" = embedded ] && store="path = \"$work/state.db\""
        printf '[server]\ncursor_secret = "bench"\ncache_ttl_ms = %s\n\n[store]\n%s\n\n' "${CACHE_TTL_MS:-0}" "$store"
        "$bin" sim --bind "127.0.0.1:$sim_port" --print-config \
            | sed '/^\[server\]$/,/^$/d' \
            | sed "/^provider = /a $unlimited" \
            | sed "/^scopes = /a $unlimited"
    } >"$work/gateway.toml"
}

# The gateway's URL for the conversation, and the caller's token header.
single_read_path() { echo "/v1/conversations/helpdesk-pingback:$conversation"; }
single_read_auth='Authorization: Bearer demo-token'
