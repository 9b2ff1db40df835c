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

step "starting $binary"
username=sdk
# shellcheck source=.ci/server.sh
. .ci/server.sh
start_server "$binary" "$username"

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

server_log_is_clean || status=1
if [ "$status" -ne 0 ]; then
    echo "SDK checks failed" >&2
fi
exit "$status"
