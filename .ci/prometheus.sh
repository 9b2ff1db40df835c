#!/usr/bin/env bash
# The metrics listener (`--metrics-bind`) as Prometheus itself sees it: starts the service on
# SQLite in a temporary directory with metrics on, makes a known set of requests, lints the
# scraped text with `promtool check metrics` (exit 0 and not one lint remark), then runs a real
# `prometheus` scraping it and waits until its HTTP API reports the target up and a query of the
# request counter returns what was sent. Installs Debian's `prometheus` package (which ships
# promtool) when either tool is missing. Stops everything it started on exit.
# Usage: .ci/prometheus.sh [path to the station-api binary]
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/station-api}

step() { printf '\n-- %s\n' "$*"; }
fail() { echo "prometheus.sh: $*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

step "promtool and prometheus (Debian's prometheus package)"
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
    # The package starts a system Prometheus (on :9090) where it can; ours runs on ports of its
    # own, and the system one is not wanted on a CI machine at all.
    service prometheus stop >/dev/null 2>&1 || true
    service prometheus-node-exporter stop >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -n 1
prometheus --version 2>&1 | head -n 1

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

step "starting $binary with --metrics-bind (SQLite in $work)"
export DATABASE_URL="sqlite://$work/station.db"
export STATION_ARGON2_MEMORY_KIB=64 STATION_ARGON2_ITERATIONS=1
username=metrics
password="$username-$(date +%s)-$RANDOM"
echo "$password" | "$binary" createsuperuser --username "$username" >/dev/null
api_port=$(free_port)
metrics_port=$(free_port)
RUST_LOG=warn "$binary" serve --bind "127.0.0.1:$api_port" \
    --metrics-bind "127.0.0.1:$metrics_port" >"$work/server.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$api_port"
metrics="http://127.0.0.1:$metrics_port/metrics"
for _ in $(seq 1 100); do
    if curl -fsS "$api/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS "$api/readyz" >/dev/null || { cat "$work/server.log" >&2; fail "the service did not start"; }
echo "API on $api, metrics on $metrics"

step "requests: 1 create, a bulk create of 3, 5 retrieves, a 404, a wrong password"
retrieves=5
as_admin=(-u "$username:$password" -H 'Content-Type: application/json')
reading='{"name": "Oslo", "timestamp": 1700000000, "temperature": 21.5, "lat": 59.91, "lon": 10.75}'
status_of() { curl -sS -o /dev/null -w '%{http_code}' "$@"; }
[ "$(status_of "${as_admin[@]}" -d "$reading" "$api/station/")" = 201 ] || fail "create"
[ "$(status_of "${as_admin[@]}" -d "[$reading, $reading, $reading]" "$api/station/")" = 201 ] \
    || fail "bulk create"
for _ in $(seq 1 "$retrieves"); do
    [ "$(status_of "${as_admin[@]}" "$api/station/1/")" = 200 ] || fail "retrieve"
done
[ "$(status_of "${as_admin[@]}" "$api/station/999999/")" = 404 ] || fail "404"
[ "$(status_of -u "$username:wrong-password" "$api/station/")" = 401 ] || fail "wrong password"
# The API's port has no /metrics.
[ "$(status_of "${as_admin[@]}" "$api/metrics")" = 404 ] || fail "/metrics on the API port"

step "promtool check metrics on the scraped text"
curl -fsS "$metrics" >"$work/metrics.txt"
echo "$(grep -c '^[a-z]' "$work/metrics.txt") sample lines, $(grep -c '^# TYPE' "$work/metrics.txt") metrics"
if ! lint=$(promtool check metrics <"$work/metrics.txt" 2>&1) || [ -n "$lint" ]; then
    printf '%s\n' "$lint" >&2
    fail "promtool check metrics did not pass cleanly"
fi
echo "promtool check metrics: exit 0, no remarks"

step "a real prometheus scraping it"
prometheus_port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: station-api
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn \
    >"$work/prometheus.log" 2>&1 &
pids+=($!)
prometheus_api="http://127.0.0.1:$prometheus_port/api/v1"
echo "prometheus on 127.0.0.1:$prometheus_port, scraping 127.0.0.1:$metrics_port every second"

# The single value a PromQL query returns, or nothing while it returns none.
query() {
    curl -fsS -G "$prometheus_api/query" --data-urlencode "query=$1" 2>/dev/null |
        python3 -c '
import json, sys
result = json.load(sys.stdin)["data"]["result"]
print(result[0]["value"][1] if len(result) == 1 else "")
' 2>/dev/null || true
}
retrieve_series='station_http_requests_total{job="station-api",route="/station/{id}/",method="GET",status="200"}'
checks=(
    "up{job=\"station-api\"}=1"
    "$retrieve_series=$retrieves"
    "station_ingested_rows_total{job=\"station-api\"}=4"
    "station_auth_outcomes_total{job=\"station-api\",outcome=\"refused\"}=1"
    "histogram_quantile(1, sum by (le) (station_http_request_duration_seconds_bucket{route=\"/station/{id}/\",status=\"200\"})) > 0=*"
)
for check in "${checks[@]}"; do
    expression=${check%=*} expected=${check##*=}
    got=""
    for _ in $(seq 1 60); do
        got=$(query "$expression")
        if [ -n "$got" ] && { [ "$expected" = "*" ] || [ "$got" = "$expected" ]; }; then break; fi
        sleep 0.5
    done
    if [ -z "$got" ] || { [ "$expected" != "*" ] && [ "$got" != "$expected" ]; }; then
        cat "$work/prometheus.log" >&2
        fail "prometheus: $expression is '${got}', expected '$expected'"
    fi
    echo "prometheus: $expression = $got"
done

if grep -E 'ERROR station_api|panicked' "$work/server.log"; then
    fail "the service logged errors"
fi
echo "metrics: promtool-clean and scraped by prometheus"
