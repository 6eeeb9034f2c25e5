#!/usr/bin/env bash
# test.sh - build (normal and ASan+UBSan), start a private MariaDB on loopback,
# run every CTest test in both builds, and always stop the server afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"

# The private MariaDB (tests/test_*mysql* and the backend-parameterised suites use it).
if [ -x scripts/mariadb.sh ]; then
  scripts/mariadb.sh start build/mariadb
  trap 'scripts/mariadb.sh stop build/mariadb' EXIT
  # shellcheck disable=SC1091
  . build/mariadb/env.sh
fi

rc=0
(cd build && ctest --output-on-failure --no-tests=error -j "$JOBS") || rc=$?

if [ "${VWS_SKIP_ASAN:-0}" != "1" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DENABLE_SANITIZERS=ON >/dev/null
  cmake --build build-asan -j "$JOBS"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "$JOBS") || rc=$?
fi
exit $rc
