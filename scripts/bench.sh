#!/usr/bin/env bash
# bench.sh BUILD - run the benches (`make bench`): in-process voice actions per
# second and p50/p99 latency per action (audit row included) on a demo
# database, one line per metric (metric, backend, threads, pool size, value, unit).
# SQLite always. MySQL: the server of DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME
# when DB_HOST is set; otherwise a private MariaDB (scripts/mariadb.sh) in
# BUILD/mariadb-bench with a fresh database, stopped again afterwards
# (BENCH_MYSQL=0 skips MySQL). Then the relay bench (bench_relay, see below).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
B="$BUILD/bench_actions"
[ -x "$B" ] || { echo "bench.sh: $B not built (run make build)" >&2; exit 1; }
ITER=${BENCH_ITERATIONS:-500}

echo "== machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "== voice actions, SQLite (data in a temporary file)"
"$B" --backend sqlite --threads 1 --iterations "$ITER"
"$B" --backend sqlite --threads 2 --iterations "$ITER" | tail -n +2

# Relay bench (bench_relay): N concurrent calls through `voice-ws serve` against local
# stand-ins for Twilio and the provider; added latency, dropped frames, server CPU and
# memory per call (docs/loadgen.md). BENCH_RELAY=0 skips it.
if [ "${BENCH_RELAY:-1}" != "0" ]; then
  # The kernel's share alone: the same socket pattern with no WebSocket library or JSON.
  echo "== relay floor (kernel only): ${BENCH_RELAY_CALLS:-100,500,1000} calls"
  "$BUILD/bench_floor" --calls "${BENCH_RELAY_CALLS:-100,500,1000}" --seconds 5 | grep '^|' ||
    echo "bench.sh: bench_floor failed" >&2
  R="$BUILD/bench_relay"
  [ -x "$R" ] || { echo "bench.sh: $R not built (run make build)" >&2; exit 1; }
  echo "== relay: ${BENCH_RELAY_CALLS:-100,500,1000} concurrent calls, ${BENCH_RELAY_SECONDS:-10} s of audio each, providers ${BENCH_RELAY_PROVIDERS:-both}"
  "$R" --bin "$BUILD/voice-ws" --provider "${BENCH_RELAY_PROVIDERS:-both}" \
    --calls "${BENCH_RELAY_CALLS:-100,500,1000}" --seconds "${BENCH_RELAY_SECONDS:-10}" ||
    echo "bench.sh: bench_relay could not complete every run (see above)" >&2
fi

[ "${BENCH_MYSQL:-1}" = "0" ] && exit 0

own=""
if [ -z "${DB_HOST:-}" ]; then
  own="$BUILD/mariadb-bench"
  started=0
  scripts/mariadb.sh status "$own" 2>/dev/null || started=1
  scripts/mariadb.sh start "$own"
  # shellcheck disable=SC1091
  . "$own/env.sh"
  [ $started -eq 1 ] && trap 'scripts/mariadb.sh stop "$own"' EXIT
  mariadb --no-defaults -h127.0.0.1 -P"$VWS_MYSQL_PORT" -u"$VWS_MYSQL_USER" \
    -p"$VWS_MYSQL_PASSWORD" -e "DROP DATABASE IF EXISTS vws_bench;
      CREATE DATABASE vws_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  export DB_HOST=127.0.0.1 DB_PORT="$VWS_MYSQL_PORT" DB_USER="$VWS_MYSQL_USER" \
    DB_PASSWORD="$VWS_MYSQL_PASSWORD" DB_NAME=vws_bench
  echo "== voice actions, MySQL (private MariaDB $(mariadbd --version | awk '{print $3}') on 127.0.0.1:$DB_PORT)"
else
  echo "== voice actions, MySQL ($DB_HOST)"
fi
"$B" --backend mysql --threads 1 --iterations "$ITER"
"$B" --backend mysql --threads 2 --iterations "$ITER" | tail -n +2
"$B" --backend mysql --threads 4 --iterations "$ITER" | tail -n +2
# fewer connections than threads: workers queue for the pool
"$B" --backend mysql --threads 4 --pool 2 --iterations "$ITER" | tail -n +2
