#!/usr/bin/env bash
# The API contract, checked against the running demo gateway:
#   1. lint openapi/openapi.json (openapi-spec-validator, @redocly/cli);
#   2. generate a TypeScript client (openapi-typescript + openapi-fetch), type-check it with
#      drive.ts, and drive the demo with it; type-check the console's modules (JSDoc, tsc
#      --checkJs) against the same generated types;
#   3. generate a Python client (openapi-python-client), install it, type-check drive.py against
#      it, and drive the demo with it;
#   4. fuzz the demo from the spec with schemathesis, every check (contract/schemathesis.toml).
# Every tool is installed here from the package registries, at the versions pinned in
# contract/python/{requirements,constraints}.txt and contract/ts/package-lock.json.
#
#   bash contract/run.sh
#
# Knobs (environment): SCHEMATHESIS_MAX_EXAMPLES (default 100), SCHEMATHESIS_SEED (default 1).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
C=$ROOT/contract
OUT=$C/.out
SPEC=$ROOT/openapi/openapi.json
TOKEN=demo-token
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-100}
SEED=${SCHEMATHESIS_SEED:-1}

export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export NO_UPDATE_NOTIFIER=1
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
export PIP_DISABLE_PIP_VERSION_CHECK=1
export SCHEMATHESIS_TELEMETRY=false
export HYPOTHESIS_STORAGE_DIRECTORY=$OUT/hypothesis

mkdir -p "$OUT"
RESULTS=()
FAILED=0
FINISHED=0
DEMO_PID=
STARTED=$SECONDS
# The steps below run in child shells (for `timeout`), so they see these.
export ROOT C OUT SPEC TOKEN DEMO_PID

summary() {
    echo
    echo "== contract summary ($((SECONDS - STARTED)) s) =="
    local line
    for line in "${RESULTS[@]}"; do
        echo "  $line"
    done
}

cleanup() {
    local rc=$?
    if [[ -n $DEMO_PID ]] && kill -0 "$DEMO_PID" 2>/dev/null; then
        kill "$DEMO_PID" 2>/dev/null || true
        wait "$DEMO_PID" 2>/dev/null || true
    fi
    if ((FINISHED == 0)); then
        summary
        echo "contract: stopped early (exit $rc); the checks after that did not run"
    fi
}
trap cleanup EXIT

# step NAME SECONDS COMMAND...: runs a command (or a function of this script) in a child shell
# within a time limit and records the result. A failed check does not stop the others; the
# script fails at the end.
step() {
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name =="
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$limit" bash -euo pipefail -c '"$@"' _ "$@" || rc=$?
    local took=$((SECONDS - t0))
    if ((rc == 0)); then
        RESULTS+=("pass  $name (${took} s)")
    else
        FAILED=$((FAILED + 1))
        if ((rc == 124)); then
            RESULTS+=("FAIL  $name (timed out after ${limit} s)")
        else
            RESULTS+=("FAIL  $name (exit $rc, ${took} s)")
        fi
    fi
}

# setup NAME SECONDS COMMAND...: like step, but nothing after it can run if it fails.
setup() {
    local before=$FAILED
    step "$@"
    if ((FAILED != before)); then
        exit 1
    fi
}

# --- tools -------------------------------------------------------------------------------------

require_node() {
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    if ((major < 20)); then
        echo "node $major found; node 20 or newer is needed" >&2
        return 1
    fi
    node --version
}

python_tools() {
    if [[ ! -x $C/.venv/bin/python ]]; then
        python3 -m venv "$C/.venv"
    fi
    "$C/.venv/bin/python" -m pip install -q -r "$C/python/requirements.txt" -c "$C/python/constraints.txt"
    "$C/.venv/bin/python" -m pip list --format=freeze | grep -Ei '^(openapi-spec-validator|openapi-python-client|schemathesis|mypy)=='
}

node_tools() {
    (cd "$C/ts" && npm ci --no-audit --no-fund --loglevel=error)
    (cd "$C/ts" && npm ls --depth=0)
}

export -f require_node python_tools node_tools
setup "cargo build --release" 1800 cargo build --release
setup "node 20+" 30 require_node
setup "install Python tools (pip, contract/.venv)" 600 python_tools
setup "install Node tools (npm ci, contract/ts)" 300 node_tools

VENV=$C/.venv/bin
NODE_BIN=$C/ts/node_modules/.bin
export VENV NODE_BIN
# openapi-python-client formats what it generates with ruff, found on PATH.
export PATH=$VENV:$PATH

# --- 1. the spec -------------------------------------------------------------------------------

step "lint: openapi-spec-validator" 120 "$VENV/openapi-spec-validator" "$SPEC"
step "lint: @redocly/cli (contract/redocly.yaml)" 120 \
    "$NODE_BIN/redocly" lint --config "$C/redocly.yaml" "$SPEC"

# --- the demo ----------------------------------------------------------------------------------

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
BASE=http://127.0.0.1:$PORT
"$ROOT/target/release/switchboard" demo --bind "127.0.0.1:$PORT" --token "$TOKEN" \
    >"$OUT/demo.log" 2>&1 &
DEMO_PID=$!
export PORT BASE DEMO_PID

wait_for_demo() {
    local i
    for i in $(seq 1 120); do
        if ! kill -0 "$DEMO_PID" 2>/dev/null; then
            echo "the demo exited:" >&2
            cat "$OUT/demo.log" >&2
            return 1
        fi
        if curl -fsS --max-time 2 "$BASE/healthz" >/dev/null 2>&1; then
            echo "demo ready on $BASE after ~$((i / 4)) s"
            return 0
        fi
        sleep 0.25
    done
    echo "the demo did not answer /healthz within 30 s:" >&2
    cat "$OUT/demo.log" >&2
    return 1
}
export -f wait_for_demo
setup "start the demo gateway" 60 wait_for_demo

served_spec_is_committed() {
    curl -fsS --max-time 10 "$BASE/openapi.json" -o "$OUT/served-openapi.json"
    python3 - "$SPEC" "$OUT/served-openapi.json" <<'EOF'
import json, sys
committed, served = (json.load(open(p)) for p in sys.argv[1:3])
if committed != served:
    sys.exit("GET /openapi.json differs from openapi/openapi.json: regenerate it with "
             "`cargo run -q -- openapi > openapi/openapi.json`")
print("GET /openapi.json is openapi/openapi.json")
EOF
}
export -f served_spec_is_committed
step "the demo serves the committed spec" 30 served_spec_is_committed

export SWITCHBOARD_URL=$BASE SWITCHBOARD_TOKEN=$TOKEN

# --- 2. TypeScript client ----------------------------------------------------------------------

ts_generate() {
    rm -rf "$C/ts/generated"
    (cd "$C/ts" && "$NODE_BIN/openapi-typescript" "$SPEC" -o generated/schema.d.ts)
    (cd "$C/ts" && "$NODE_BIN/tsc" -p tsconfig.json)
}
export -f ts_generate
step "typescript: generate (openapi-typescript) + tsc" 180 ts_generate
console_types() {
    cd "$C/ts" && "$NODE_BIN/tsc" -p tsconfig.console.json
}
export -f console_types
step "console: tsc --checkJs against the generated types (crates/server/console)" 120 console_types
ts_drive() {
    cd "$C/ts" && "$NODE_BIN/tsx" drive.ts
}
export -f ts_drive
step "typescript: drive the demo (drive.ts via openapi-fetch)" 180 ts_drive

# --- 3. Python client --------------------------------------------------------------------------

py_generate() {
    rm -rf "$C/python/generated"
    "$VENV/openapi-python-client" generate --path "$SPEC" \
        --config "$C/python/client-config.yml" --output-path "$C/python/generated" \
        --fail-on-warning
    "$VENV/python" -m pip uninstall -q -y switchboard-client 2>/dev/null || true
    "$VENV/python" -m pip install -q -c "$C/python/constraints.txt" "$C/python/generated"
    (cd "$C/python" && "$VENV/mypy" --strict --cache-dir "$OUT/mypy" drive.py)
}
export -f py_generate
step "python: generate (openapi-python-client) + install + mypy" 300 py_generate
step "python: drive the demo (drive.py)" 180 "$VENV/python" "$C/python/drive.py"

# --- 4. fuzzing --------------------------------------------------------------------------------

fuzz() {
    # From contract/, so its cache lands in contract/.out (see schemathesis.toml).
    cd "$C"
    "$VENV/schemathesis" --config-file "$C/schemathesis.toml" run "$SPEC" \
        --url "$BASE" -H "Authorization: Bearer $TOKEN" \
        --max-examples "$MAX_EXAMPLES" --seed "$SEED" --request-timeout 10 \
        --no-color --report junit --report-dir "$OUT/schemathesis"
}
export MAX_EXAMPLES SEED
export -f fuzz
step "schemathesis: ${MAX_EXAMPLES} examples per operation, seed ${SEED}" 1200 fuzz

FINISHED=1
summary
if ((FAILED > 0)); then
    echo "contract: $FAILED check(s) failed"
    exit 1
fi
echo "contract: every check passed"
