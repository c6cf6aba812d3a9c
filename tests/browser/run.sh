#!/bin/sh
# The dashboard driven in Debian's Chromium (playwright-core) and Debian's
# Firefox ESR (puppeteer-core over WebDriver BiDi), never a downloaded
# browser, as TAP. A browser whose binary is missing is skipped with the
# reason (drivers.mjs). Screenshots go to artifacts/.
cd "$(dirname "$0")" || exit 1
chromium=${CHROMIUM:-/usr/bin/chromium}
firefox=${FIREFOX:-/usr/bin/firefox-esr}
if [ ! -x "$chromium" ] && [ ! -x "$firefox" ]; then
    echo "1..0 # SKIP neither $chromium nor $firefox is installed"
    exit 0
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/puppeteer-core ]; then
    npm ci --no-audit --no-fund >&2 || { echo "Bail out! npm ci failed"; exit 1; }
fi
exec node --test --test-reporter=tap dashboard.test.mjs
