#!/usr/bin/env bash
# Contract fuzzing: schemathesis (from PyPI, in a virtualenv made here) drives every operation of
# the served OpenAPI document as an admin and fails on any 5xx or any response that breaks the
# document. Usage: .ci/schemathesis.sh [path to the station-api binary]
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/station-api}
venv=${SCHEMATHESIS_VENV:-.venv/schemathesis}
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
fi

# shellcheck source=.ci/server.sh
. .ci/server.sh
# Every operation is also tried with invalid credentials (check ST401, expecting 401 or 403); with
# the default allowance of ten failures the later ones are answered 429, as they should be for a
# client guessing passwords. The black-box tests cover the throttle; here it gets out of the way.
export STATION_AUTH_FAILURE_BURST=100000
start_server "$binary" fuzzer

# One worker: with parallel workers, this machine's CPython 3.11.7 sometimes fails inside
# hypothesis with "SystemError: AST constructor recursion depth mismatch" (an ast.parse race).
# negative_data_rejection is off on purpose: the API is as lenient as DRF where the contract says
# so (numbers as strings, a number as a name, unknown query parameters ignored, no body = {}), and
# that check counts each leniency as a failure. positive_data_acceptance is off because two rules
# of the list cannot be written in OpenAPI: a `cursor` is valid only if this server signed it (any
# other string is a 400 by design), and `page` and `cursor` exclude each other. Every other check
# runs; the black-box tests cover both rules. The event stream is left out: it never ends, so every
# call would wait for the request timeout; tests/api/stream.rs drives it.
status=0
PYTHONPATH=.ci SCHEMATHESIS_HOOKS=schemathesis_hooks "$venv/bin/st" run "http://127.0.0.1:$port/api-docs/openapi.json" \
    --auth "fuzzer:$password" \
    --checks all \
    --exclude-checks negative_data_rejection,positive_data_acceptance \
    --exclude-operation-id stream_stations \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
    --seed "${SCHEMATHESIS_SEED:-20261122}" \
    --workers 1 \
    --no-color || status=$?

server_log_is_clean || status=1
exit "$status"
