#!/bin/sh
# Installs what the tests need, builds with ASan+UBSan and runs the whole
# suite: Check unit tests and integration tests against a real mosquitto.
# The last line is "tests: N passed, M failed"; the exit status is non-zero
# when anything failed.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
mqg_install $MQG_BUILD_DEPS $MQG_RUN_DEPS $MQG_TEST_DEPS
mqg_build --enable-sanitizers --enable-werror
status=0
make -j"$(nproc)" check || status=$?
for log in $(find tests -name '*.log' ! -name test-suite.log | sort); do
    case "$(grep -c '^not ok\|^ERROR\|Bail out' "$log" || true)" in
    0) ;;
    *) echo "==== $log"; cat "$log" ;;
    esac
done
pass=$(find tests -name '*.trs' -exec grep -h '^:test-result: \(PASS\|XFAIL\)' {} + | wc -l)
fail=$(find tests -name '*.trs' -exec grep -h '^:test-result: \(FAIL\|XPASS\|ERROR\)' {} + | wc -l)
skip=$(find tests -name '*.trs' -exec grep -h '^:test-result: SKIP' {} + | wc -l)
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then
    fail=1 # the harness failed without a counted result
fi
echo "skipped: $skip"
echo "tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
