#!/bin/bash
# tests/run-all.sh - the whole test suite, from a fresh Debian 12 machine:
# install what the tests need (apt, npm), build, run `make check` (C unit
# tests, then integration tests that mount for real against Ceph RGW,
# s3rver and a file:// store), then build again with AddressSanitizer and
# UndefinedBehaviorSanitizer and run the suite once more.
#
#   DMFS_TEST_BACKENDS       servers for the normal run (rgw s3rver file)
#   DMFS_ASAN_BACKENDS       servers for the sanitizer run (rgw file)
#   DMFS_SKIP_SANITIZERS=1   skip the sanitizer run
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=${DMFS_TEST_JOBS:-2}

bash tests/setup-deps.sh
# Out-of-tree builds need an unconfigured source tree.
if [ -f config.status ]; then make distclean >/dev/null; fi
autoreconf -fi

echo "=== build and test ==="
rm -rf build && mkdir build && cd build
../configure --quiet
make -j"$jobs"
make -j"$jobs" check || { cat test-suite.log; exit 1; }
cd "$top"

if [ "${DMFS_SKIP_SANITIZERS:-0}" != 1 ]; then
	echo "=== build and test with AddressSanitizer + UBSan ==="
	rm -rf build-asan && mkdir build-asan && cd build-asan
	../configure --quiet --enable-sanitizers
	make -j"$jobs"
	DMFS_TEST_BACKENDS=${DMFS_ASAN_BACKENDS:-rgw file} DMFS_TEST_BIG_MB=${DMFS_ASAN_BIG_MB:-64} \
		make -j"$jobs" check || { cat test-suite.log; exit 1; }
	cd "$top"
fi
# The closing tally over both runs, from automake's per-test results.
pass=$(cat build/tests/*.trs build/tests/*/*.trs build-asan/tests/*.trs build-asan/tests/*/*.trs 2>/dev/null | grep -c '^:test-result: PASS' || true)
fail=$(cat build/tests/*.trs build/tests/*/*.trs build-asan/tests/*.trs build-asan/tests/*/*.trs 2>/dev/null | grep -c '^:test-result: \(FAIL\|ERROR\)' || true)
skip=$(cat build/tests/*.trs build/tests/*/*.trs build-asan/tests/*.trs build-asan/tests/*/*.trs 2>/dev/null | grep -c '^:test-result: SKIP' || true)
echo "tests: $pass passed, $fail failed, $skip skipped"
