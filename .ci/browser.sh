#!/usr/bin/env bash
# The /home/ page in a real browser: Debian's Chromium (installed when missing) driven by
# playwright-core from web/'s lock file, against the given station-api binary (web/tests/). First
# checks that web/dist, which the binary embeds, is what `npm run build` makes of web/src.
#
#   .ci/browser.sh target/debug/station-api
set -euo pipefail
binary=$(realpath "$1")
cd "$(dirname "$0")/../web"

if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
/usr/bin/chromium --version

npm ci --no-audit --no-fund --loglevel=error
npm run build
# The build is deterministic: a web/dist that differs from a fresh build was not rebuilt (or was
# edited by hand) after a change under web/.
if [ -n "$(git status --porcelain -- dist)" ]; then
    git status --short -- dist
    echo "web/dist is not what 'npm run build' makes of web/: rebuild it and commit the result" >&2
    exit 1
fi

STATION_API_BIN=$binary npm test
