#!/usr/bin/env bash
# Checks docker-compose.yml without a Docker engine: Debian's docker-compose (v1, installed when
# missing) validates and normalizes it (`docker-compose config`), with deploy/example.env standing
# in for the operator's deploy/switchboard.env; then the topology docs/operations.md promises is asserted
# on the normalized file: Redis with AOF and noeviction, two gateways sharing the env file and the
# config, every service with a health check, every dependency waiting for health, and nginx
# balancing over every gateway.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
ensure_installed docker-compose docker-compose

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp docker-compose.yml Dockerfile "$work/"
cp -r deploy "$work/deploy"
cp deploy/example.env "$work/deploy/switchboard.env"

(cd "$work" && docker-compose -f docker-compose.yml config) >"$work/normalized.yml"

# Debian's python3 has PyYAML (docker-compose depends on it).
/usr/bin/python3 - "$work/normalized.yml" deploy/nginx.conf <<'PY'
import re, sys, yaml

compose = yaml.safe_load(open(sys.argv[1]))
nginx = open(sys.argv[2]).read()
services = compose["services"]
problems = []

def check(ok, message):
    if not ok:
        problems.append(message)

check(set(services) == {"redis", "sim", "gateway-1", "gateway-2", "lb"}, f"services: {sorted(services)}")
redis = " ".join(services["redis"]["command"])
check("--appendonly yes" in redis, "redis: AOF is not on")
check("--maxmemory-policy noeviction" in redis, "redis: maxmemory-policy is not noeviction")
for name, service in services.items():
    check("healthcheck" in service, f"{name}: no healthcheck")
    for dep, how in service.get("depends_on", {}).items():
        check(how.get("condition") == "service_healthy", f"{name}: depends on {dep} without condition service_healthy")
gateways = [n for n in services if n.startswith("gateway-")]
for name in gateways:
    service = services[name]
    check(set(service.get("depends_on", {})) == {"redis", "sim"}, f"{name}: must wait for redis and sim")
    check(service["command"][:1] == ["serve"], f"{name}: does not run `serve`")
    check(any(v.endswith(":/etc/switchboard/switchboard.toml:ro") for v in service.get("volumes", [])), f"{name}: no config mounted")
    env = service.get("environment", {})
    for key in ("SWITCHBOARD_CURSOR_SECRET", "SWITCHBOARD_REDIS_URL"):
        check(key in env, f"{name}: {key} is not set from the env file")
    check(f"server {name}:8080" in nginx, f"nginx.conf does not balance over {name}")
first = services[gateways[0]]
for name in gateways[1:]:
    for key in ("environment", "volumes", "image"):
        check(services[name].get(key) == first.get(key), f"{name}: {key} differs from {gateways[0]}")
check(set(services["lb"].get("depends_on", {})) == set(gateways), "lb: must wait for every gateway")
check(not re.search(r"\bip_hash\b|\bhash\b|\bleast_conn\b", nginx), "nginx.conf: not round robin")
check(services["sim"]["command"][:1] == ["sim"], "sim: does not run `sim`")

if problems:
    print("docker-compose.yml:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"docker-compose.yml: valid ({len(services)} services: {', '.join(sorted(services))})")
PY
