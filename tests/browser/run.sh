#!/bin/sh
# The dashboard driven in Debian's Chromium by playwright-core (never a
# downloaded browser), as TAP. Screenshots go to artifacts/.
cd "$(dirname "$0")" || exit 1
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "1..0 # SKIP $chromium not installed"
    exit 0
fi
if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund >&2 || { echo "Bail out! npm ci failed"; exit 1; }
fi
exec node --test --test-reporter=tap dashboard.test.mjs
