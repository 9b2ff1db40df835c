#!/usr/bin/env bash
# Focused limits fuzz: .ci/fuzz_limits.py sends very long and very many query values, bodies at
# and past the limits and oversized headers, as an admin, to a live server on a fresh database
# (SQLite; PostgreSQL with CI_POSTGRES_URL, MariaDB with CI_MYSQL_URL; see .ci/server.sh). It fails
# on any 5xx, a request left without an answer, an error body that is not JSON, or a server that
# dies or stops answering /healthz. Standard library only, so no virtualenv.
# Usage: .ci/fuzz-limits.sh [path to the station-api binary]; FUZZ_LIMITS_SEED picks the cases.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/station-api}

# shellcheck source=.ci/server.sh
. .ci/server.sh
start_server "$binary" limits

# --binary: a server that dies is started again, so one run names every case that kills it.
# FUZZ_LIMITS_ARGS adds options (e.g. --verbose: every case's answer).
status=0
# shellcheck disable=SC2086
python3 .ci/fuzz_limits.py --url "http://127.0.0.1:$port" --auth "limits:$password" \
    --pid "$server_pid" --binary "$binary" --log "$work/server.log" ${FUZZ_LIMITS_ARGS:-} || status=$?

server_log_is_clean || status=1
exit "$status"
