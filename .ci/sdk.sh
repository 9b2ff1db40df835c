#!/usr/bin/env bash
# The OpenAPI contract, proven with generated SDK clients: validates openapi/openapi.json
# independently (openapi-spec-validator), generates a Python client (openapi-python-client) and a
# TypeScript client (@hey-api/openapi-ts) from it, failing on any generator warning, then starts a
# server and drives it through each client (sdk/python/check_client.py,
# sdk/typescript/src/check_client.ts). Installs the pinned tools itself (sdk/generate.sh).
# Usage: .ci/sdk.sh [path to the station-api binary]
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/station-api}
export SDK_VENV=${SDK_VENV:-.venv/sdk}
python="$SDK_VENV/bin/python"

step() { printf '\n-- %s\n' "$*"; }

step "installing the pinned tools"
sdk/generate.sh --tools-only

step "openapi-spec-validator openapi/openapi.json"
"$SDK_VENV/bin/openapi-spec-validator" openapi/openapi.json

step "generating the clients"
sdk/generate.sh openapi/openapi.json

step "compiling the TypeScript program against its client"
(cd sdk/typescript && rm -rf build && node_modules/.bin/tsc -p tsconfig.json)

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step "starting $binary"
export DATABASE_URL="sqlite://$work/sdk.db"
# Cheap hashes: the clients are under test, not Argon2.
export STATION_ARGON2_MEMORY_KIB=64 STATION_ARGON2_ITERATIONS=1
username=sdk
password="sdk-$(date +%s)-$RANDOM"
echo "$password" | "$binary" createsuperuser --username "$username" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
RUST_LOG=warn "$binary" serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null

# The clients come from the committed file; make sure it is what this server speaks.
curl -fsS "http://127.0.0.1:$port/api-docs/openapi.json" >"$work/served.json"
"$python" - "$work/served.json" <<'EOF'
import json, sys
served = json.load(open(sys.argv[1]))
committed = json.load(open("openapi/openapi.json"))
if served != committed:
    sys.exit("the served OpenAPI document differs from openapi/openapi.json")
EOF

export STATION_URL="http://127.0.0.1:$port" STATION_USERNAME="$username" STATION_PASSWORD="$password"
status=0

step "the Python client against the server"
"$python" sdk/python/check_client.py || status=1

step "the TypeScript client against the server"
node sdk/typescript/build/src/check_client.js || status=1

if grep -E 'ERROR station_api|panicked' "$work/server.log"; then
    echo "the server logged errors while the clients ran" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "SDK checks failed" >&2
fi
exit "$status"
