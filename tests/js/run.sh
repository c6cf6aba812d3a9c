#!/bin/sh
# The client library's tests under node's test runner, as TAP: unit tests
# and tests against the real mqgated ($MQGATED) and mosquitto.
cd "$(dirname "$0")" || exit 1
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
    echo "1..0 # SKIP node 20 or later is needed (built-in WebSocket)"
    exit 0
fi
exec node --experimental-websocket --test --test-reporter=tap \
    unit.test.mjs gateway.test.mjs http.test.mjs failover.test.mjs
