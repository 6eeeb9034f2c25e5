#!/usr/bin/env bash
# bench.sh BUILD - run the benches (`make bench`): in-process voice actions per
# second and p50/p99 latency per action (audit row included) on a demo
# database, one line per metric. SQLite always; MySQL when DB_HOST is set or
# the private test server is running (scripts/mariadb.sh, build/mariadb/env.sh).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
B="$BUILD/bench_actions"
[ -x "$B" ] || { echo "bench.sh: $B not built (run make build)" >&2; exit 1; }
ITER=${BENCH_ITERATIONS:-500}

echo "== voice actions, SQLite (data in a temporary file)"
"$B" --backend sqlite --threads 1 --iterations "$ITER"
"$B" --backend sqlite --threads 2 --iterations "$ITER" | tail -n +2

if [ -n "${DB_HOST:-}" ]; then
  echo "== voice actions, MySQL ($DB_HOST)"
  "$B" --backend mysql --threads 1 --iterations "$ITER"
  "$B" --backend mysql --threads 2 --iterations "$ITER" | tail -n +2
fi
