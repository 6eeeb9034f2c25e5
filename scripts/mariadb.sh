#!/usr/bin/env bash
# mariadb.sh - a private MariaDB server for tests and local development.
#
#   scripts/mariadb.sh start DIR   initialise (first time) and start; no-op when running
#   scripts/mariadb.sh stop DIR    clean shutdown, waits until the process has exited
#   scripts/mariadb.sh restart DIR stop + start (same port, same data)
#   scripts/mariadb.sh status DIR  exit 0 when running and answering
#
# Everything lives under DIR: data/, the socket, pid and error log, a test CA and
# server certificate (TLS is on), the generated password of the 'vws' user, and
# env.sh exporting VWS_MYSQL_HOST/PORT/USER/PASSWORD/SOCKET/CA and VWS_MARIADB_DIR.
# The server listens on 127.0.0.1 only, on a free port picked at the first start
# and kept in DIR/port, so `stop` then `start` gives the same server back (tests
# stop it mid-suite). Several DIRs may run side by side (worktrees, CI jobs).
#
# Options (environment):
#   MARIADB_WATCH_PID=PID  also start a watcher that shuts the server down when
#                          PID exits (tests starting their own instance use it so a
#                          crashed test never leaves a server behind).
set -euo pipefail

die() { echo "mariadb.sh: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|restart|status DIR"
mkdir -p "$dir"
D=$(cd "$dir" && pwd)
SOCK=$D/mysqld.sock
PIDF=$D/mysqld.pid
[ ${#SOCK} -lt 100 ] || die "DIR path too long for a unix socket: $D"

if [ "$(id -u)" -eq 0 ]; then
  RUNAS=(--user=root)
  ADMIN=root
else
  RUNAS=()
  ADMIN=$(id -un)
fi

# Small and fast: this is a throwaway test server, durability is not needed.
SERVER_OPTS=(--no-defaults --datadir="$D/data" "${RUNAS[@]}"
  --innodb-buffer-pool-size=32M --innodb-log-file-size=16M
  --innodb-flush-log-at-trx-commit=2 --skip-log-bin
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci)

admin() { mariadb-admin --no-defaults --socket="$SOCK" -u"$ADMIN" "$@"; }
sql() { mariadb --no-defaults --socket="$SOCK" -u"$ADMIN" -e "$1"; }

server_pid() {
  [ -s "$PIDF" ] || return 1
  local p
  p=$(cat "$PIDF")
  kill -0 "$p" 2>/dev/null || return 1
  echo "$p"
}

running() { server_pid >/dev/null && admin ping >/dev/null 2>&1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p i
  for i in $(seq 1 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

make_certs() {
  [ -s "$D/server-key.pem" ] && [ -s "$D/ca.pem" ] && return 0
  local t=$D/tls.tmp
  rm -rf "$t"; mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=voice-ws test CA" \
    -keyout "$t/ca-key.pem" -out "$t/ca.pem" >/dev/null 2>&1 || die "openssl: CA failed"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$t/server-key.pem" -out "$t/server.csr" >/dev/null 2>&1 || die "openssl: CSR failed"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$t/ext.cnf"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" \
    -CAcreateserial -days 3650 -extfile "$t/ext.cnf" -out "$t/server-cert.pem" \
    >/dev/null 2>&1 || die "openssl: signing the server certificate failed"
  chmod 600 "$t/ca-key.pem" "$t/server-key.pem"
  mv "$t/ca.pem" "$t/ca-key.pem" "$t/server-cert.pem" "$t/server-key.pem" "$D/"
  rm -rf "$t"
}

init_data() {
  [ -d "$D/data/mysql" ] && return 0
  rm -rf "$D/data"
  local sockuser=()
  [ "$ADMIN" = root ] || sockuser=(--auth-root-socket-user="$ADMIN")
  mariadb-install-db "${SERVER_OPTS[@]}" --auth-root-authentication-method=socket \
    "${sockuser[@]}" --skip-test-db >"$D/install.log" 2>&1 \
    || { tail -20 "$D/install.log" >&2; die "mariadb-install-db failed (log: $D/install.log)"; }
}

launch() {   # $1 = port; returns 0 when the server answers, 2 when the port was taken
  local port=$1 i p
  : >"$D/err.log"
  setsid mariadbd "${SERVER_OPTS[@]}" --port="$port" --bind-address=127.0.0.1 \
    --socket="$SOCK" --pid-file="$PIDF" --log-error="$D/err.log" --skip-name-resolve \
    --ssl-ca="$D/ca.pem" --ssl-cert="$D/server-cert.pem" --ssl-key="$D/server-key.pem" \
    </dev/null >/dev/null 2>&1 &
  p=$!
  for i in $(seq 1 300); do            # up to 30 s
    if admin ping >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$p" 2>/dev/null; then
      grep -q "Address already in use" "$D/err.log" && return 2
      tail -20 "$D/err.log" >&2
      die "mariadbd exited during start (log: $D/err.log)"
    fi
    sleep 0.1
  done
  kill "$p" 2>/dev/null || true
  die "mariadbd did not answer within 30 s (log: $D/err.log)"
}

create_user() {
  [ -s "$D/password" ] && return 0
  local pw
  pw=$(openssl rand -hex 16)
  sql "CREATE USER IF NOT EXISTS 'vws'@'127.0.0.1' IDENTIFIED BY '$pw';
       CREATE USER IF NOT EXISTS 'vws'@'localhost' IDENTIFIED BY '$pw';
       ALTER USER 'vws'@'127.0.0.1' IDENTIFIED BY '$pw';
       ALTER USER 'vws'@'localhost' IDENTIFIED BY '$pw';
       GRANT ALL PRIVILEGES ON *.* TO 'vws'@'127.0.0.1';
       GRANT ALL PRIVILEGES ON *.* TO 'vws'@'localhost';" || die "creating user vws failed"
  (umask 077; echo "$pw" >"$D/password.tmp")
  mv "$D/password.tmp" "$D/password"
}

write_env() {
  local port pw
  port=$(cat "$D/port")
  pw=$(cat "$D/password")
  {
    echo "# written by scripts/mariadb.sh start; source it to reach the private server"
    printf 'export VWS_MYSQL_HOST=127.0.0.1\n'
    printf 'export VWS_MYSQL_PORT=%q\n' "$port"
    printf 'export VWS_MYSQL_USER=vws\n'
    printf 'export VWS_MYSQL_PASSWORD=%q\n' "$pw"
    printf 'export VWS_MYSQL_SOCKET=%q\n' "$SOCK"
    printf 'export VWS_MYSQL_CA=%q\n' "$D/ca.pem"
    printf 'export VWS_MARIADB_DIR=%q\n' "$D"
  } >"$D/env.sh.tmp"
  chmod 600 "$D/env.sh.tmp"
  mv "$D/env.sh.tmp" "$D/env.sh"
}

start_watcher() {
  local parent=${MARIADB_WATCH_PID:-} spid
  [ -n "$parent" ] || return 0
  spid=$(server_pid) || return 0
  # Detached: survives the caller's shell; exits with the server or shuts it down.
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.5; done
    if kill -0 "$2" 2>/dev/null; then exec "$3" stop "$4"; fi' \
    watcher "$parent" "$spid" "$0" "$D" </dev/null >/dev/null 2>&1 &
}

do_start() {
  if running; then
    [ -s "$D/env.sh" ] || write_env
    return 0
  fi
  if server_pid >/dev/null; then
    die "a mariadbd (pid $(cat "$PIDF")) owns $D but does not answer; stop it first"
  fi
  command -v mariadbd >/dev/null || die "mariadbd not found (apt-get install mariadb-server)"
  make_certs
  init_data
  local tries=0 rc port
  while :; do
    if [ -s "$D/port" ]; then port=$(cat "$D/port"); else port=$(pick_port); fi
    rc=0; launch "$port" || rc=$?
    [ $rc -eq 0 ] && break
    tries=$((tries + 1))
    # A port kept from an earlier start is part of the contract (same server back).
    [ -s "$D/port" ] && die "port $port (kept in $D/port so restarts keep it) is taken by another process; remove $D/port to pick a new one"
    [ $tries -lt 8 ] || die "could not bind a free port after $tries tries"
  done
  [ -s "$D/port" ] || echo "$port" >"$D/port"
  create_user
  write_env
  start_watcher
}

do_stop() {
  local p i
  p=$(server_pid) || { rm -f "$PIDF"; return 0; }
  admin shutdown >/dev/null 2>&1 || kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 300); do            # up to 30 s, then force
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "mariadb.sh: pid $p did not exit after 30 s, killing" >&2
  kill -KILL "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) running ;;
  *) die "unknown command '$cmd' (start|stop|restart|status)" ;;
esac
