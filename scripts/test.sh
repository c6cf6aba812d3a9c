#!/bin/sh
# Installs what the tests need, builds with ASan+UBSan and runs the whole
# suite: Check unit tests and integration tests against a real mosquitto;
# then the same on copies of the tree under valgrind (_valgrind/) and
# ThreadSanitizer (_tsan/), and the Debian package test.
# The last line is "tests: N passed, M failed"; the exit status is non-zero
# when anything failed.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
mqg_install $MQG_BUILD_DEPS $MQG_RUN_DEPS $MQG_TEST_DEPS $MQG_PACKAGE_DEPS
mqg_build --enable-sanitizers --enable-werror
# Prints the logs of the test programs that failed a case, under dir $1.
show_failures() {
    for log in $(find "$1" -name '*.log' ! -name test-suite.log | sort); do
        if grep -q '^not ok\|^ERROR\|Bail out' "$log"; then
            echo "==== $log"
            cat "$log"
        fi
    done
}

# The tests spend most of their time waiting (for sockets, brokers,
# deadlines): with one at a time per CPU the CPUs were 60 to 75% idle.
# Twice as many took the passes from 7, 10 and 4.5 minutes to 4.5, 6 and
# 2.5 on 2 CPUs, with the same results.
test_jobs=$(($(nproc) * 2))
status=0
stages_failed=
# Notes that the stage $1 ended with a non-zero status.
stage_failed() {
    status=1
    stages_failed="$stages_failed $1"
}
make -j"$test_jobs" check || stage_failed asan
show_failures tests
# --- libFuzzer targets, 10 s each (make fuzz runs them longer) -------------
# (built first, then as many at once as there are CPUs: each is one thread)
echo "==== fuzz smoke ($(date +%T))"
fuzz() {
    make -s -f tests/fuzz/fuzz.mk top_srcdir="$PWD" FUZZ_BUILD="$PWD/_fuzz" "$@"
}
: > tests/fuzz/smoke.trs
fuzz -j"$(nproc)" build || true
running=0
for target in request topic acl users config payload session trie history evquery; do
    (
        if fuzz FUZZ_SECONDS=10 "run-$target"; then
            echo ":test-result: PASS fuzz_$target" >> tests/fuzz/smoke.trs
        else
            echo ":test-result: FAIL fuzz_$target" >> tests/fuzz/smoke.trs
        fi
    ) &
    running=$((running + 1))
    if [ "$running" -ge "$(nproc)" ]; then
        wait
        running=0
    fi
done
wait

# Copies the tree (what git tracks or would track) to the directory $1 and
# builds it there with the configure arguments that follow.
build_copy() {
    dir=$1
    shift
    rm -rf "$dir" && mkdir "$dir" &&
    git ls-files -co --exclude-standard | grep -v '^_valgrind/\|^_tsan/' |
        tar -cf - -T - | tar -xf - -C "$dir" &&
    (cd "$dir" && autoreconf -fi >/dev/null 2>&1 && ./configure -q "$@" &&
     make -j"$(nproc)" >/dev/null)
}

# --- the same suite under valgrind, on a plain build of a copy of the tree --
echo "==== valgrind ($(date +%T))"
(
    build_copy _valgrind CFLAGS='-O1 -g' && cd _valgrind &&
    # valgrind runs the daemon several times slower: the tests' deadlines
    # stretch with MQG_TIME_SCALE
    # (test_scale's 15,000 sessions are the ASan pass's: here 2,000 take
    # the same code paths under valgrind in CI's time)
    MQG_TIME_SCALE=4 MQGATED_REAL="$PWD/mqgated" MQG_SCALE_SESSIONS=2000 \
    make -j"$test_jobs" check CK_FORK=no \
        LOG_COMPILER="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$PWD/tests/valgrind.supp" \
        MQGATED_CMD="$PWD/scripts/valgrind-mqgated" CLIENT_TESTS=
) || stage_failed valgrind
show_failures _valgrind/tests
# --- unit and integration tests on a ThreadSanitizer build of a copy ---------
# A data race reported in the daemon's log fails the test that stopped it
# (tests/tsan.supp: reports inside libraries that are not our races).
echo "==== tsan ($(date +%T))"
(
    build_copy _tsan --enable-tsan CFLAGS='-O1 -g' && cd _tsan &&
    MQG_TIME_SCALE=2 MQG_SCALE_SESSIONS=5000 make -j"$test_jobs" check CLIENT_TESTS=
) || stage_failed tsan
show_failures _tsan/tests
# --- Debian package: build, lint, install, run, purge (package-test.sh) -----
# The suite has just run: the package build skips it.
echo "==== scripts/package-test.sh ($(date +%T))"
DEB_BUILD_OPTIONS=nocheck ./scripts/package-test.sh || stage_failed package
# ----------------------------------------------------------------------------
pass=$(find tests _valgrind/tests _tsan/tests -name '*.trs' -exec grep -h '^:test-result: \(PASS\|XFAIL\)' {} + | wc -l)
fail=$(find tests _valgrind/tests _tsan/tests -name '*.trs' -exec grep -h '^:test-result: \(FAIL\|XPASS\|ERROR\)' {} + | wc -l)
skip=$(find tests _valgrind/tests _tsan/tests -name '*.trs' -exec grep -h '^:test-result: SKIP' {} + | wc -l)
# What failed, again at the end where a log's tail shows it: each failed
# test's name and its failed cases.
for trs in $(find tests _valgrind/tests _tsan/tests -name '*.trs' -exec grep -l '^:test-result: \(FAIL\|XPASS\|ERROR\)' {} + | sort); do
    echo "FAILED: ${trs%.trs}"
    log=${trs%.trs}.log
    [ -f "$log" ] && grep '^not ok\|^Bail out' "$log" | head -5 | sed 's/^/    /'
done
[ -z "$stages_failed" ] || echo "stages with a non-zero status:$stages_failed"
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then
    fail=1 # the harness failed without a counted result
fi
echo "skipped: $skip"
echo "tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
