#!/usr/bin/env bash
# Generates the SDK clients from the committed OpenAPI document:
#   sdk/python/generated/station_api_client   Python, by openapi-python-client
#   sdk/typescript/generated                  TypeScript (fetch), by @hey-api/openapi-ts
# Generated code is not committed. The pinned generators are installed on first use (and again
# when their pins change): a virtualenv in .venv/sdk and sdk/typescript/node_modules.
# Fails if either generator reports a warning or an error about the document.
# Usage: sdk/generate.sh [OpenAPI document, default openapi/openapi.json]
#        sdk/generate.sh --tools-only     (only install the pinned tools)
set -euo pipefail

tools_only=false
if [ "${1:-}" = "--tools-only" ]; then
    tools_only=true
    shift
fi
root=$(realpath "$(dirname "$0")/..")
spec=$(realpath "${1:-$root/openapi/openapi.json}")
cd "$root"
venv=$(realpath -m "${SDK_VENV:-.venv/sdk}")

step() { printf -- '-- %s\n' "$*"; }
# Generator logs, without colours, so they can be read in CI and searched.
plain() { sed -e 's/\x1b\[[0-9;]*m//g' "$@"; }

# Tools, installed from the pins when missing or stale (a copy of the pins marks the install).
if ! cmp -s sdk/python/requirements.txt "$venv/.sdk-requirements.txt"; then
    step "installing the Python tool chain into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r sdk/python/requirements.txt
    cp sdk/python/requirements.txt "$venv/.sdk-requirements.txt"
fi
if ! cmp -s sdk/typescript/package-lock.json sdk/typescript/node_modules/.sdk-package-lock.json; then
    step "installing the TypeScript tool chain into sdk/typescript/node_modules"
    (cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error)
    cp sdk/typescript/package-lock.json sdk/typescript/node_modules/.sdk-package-lock.json
fi

if "$tools_only"; then
    exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "openapi-python-client $("$venv/bin/openapi-python-client" --version | awk '{print $NF}')"
rm -rf sdk/python/generated
mkdir -p sdk/python/generated
# openapi-python-client 0.29.1 cannot serve a JSON body that is a union with a list (one reading
# or a bulk upload) beside other media types: its generated dispatch calls
# isinstance(body, list[StationInput] | StationInput), a TypeError at run time. The Python client
# is therefore generated from the document without the CSV and NDJSON bodies of POST /station/
# (raw text a caller sends with any HTTP client); JSON bulk uploads are in it.
python_spec=$(mktemp --suffix=.json)
trap 'rm -f "$log" "$python_spec"' EXIT
python3 - "$spec" "$python_spec" <<'PY'
import json, sys
document = json.load(open(sys.argv[1]))
content = document["paths"]["/station/"]["post"]["requestBody"]["content"]
for media_type in ("text/csv", "application/x-ndjson"):
    content.pop(media_type, None)
json.dump(document, open(sys.argv[2], "w"), indent=2)
PY
# The generator formats its output with ruff, which the pins install next to it.
status=0
PATH="$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
    --path "$python_spec" \
    --meta none \
    --output-path sdk/python/generated/station_api_client \
    --fail-on-warning >"$log" 2>&1 || status=$?
plain "$log"
if [ "$status" -ne 0 ] || grep -qiE 'warning|error' "$log"; then
    echo "openapi-python-client reported problems with the document" >&2
    exit 1
fi

step "@hey-api/openapi-ts $(sdk/typescript/node_modules/.bin/openapi-ts --version)"
rm -rf sdk/typescript/generated
status=0
# sdk/typescript/openapi-ts.config.mjs turns the generator's checks of the document into errors.
(cd sdk/typescript && STATION_OPENAPI="$spec" node_modules/.bin/openapi-ts) >"$log" 2>&1 || status=$?
plain "$log"
if [ "$status" -ne 0 ] || plain "$log" | grep -qE '\[(WARN|ERROR)\]|[Ww]arning'; then
    echo "@hey-api/openapi-ts reported problems with the document" >&2
    exit 1
fi

step "generated sdk/python/generated/station_api_client and sdk/typescript/generated"
