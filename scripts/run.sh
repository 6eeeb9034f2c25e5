#!/usr/bin/env bash
# run.sh BUILD - `make run`: initialise the embedded demo database
# (data/voice-ws.db, idempotent) and start the voice server with mock SMS.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
BIN="$BUILD/voice-ws"
[ -x "$BIN" ] || { echo "run.sh: $BIN not built (run make build)" >&2; exit 1; }

export DB_PATH=${DB_PATH:-data/voice-ws.db}
"$BIN" db init --demo >/dev/null
SHOWN_PORT=${PORT:-8080}   # serve itself reads PORT (environment or .env)
cat >&2 <<MSG
voice-ws: demo database ready at $DB_PATH (Sarah +447700900001, James +447700900002).
Try, in another terminal:
  $BIN actions
  $BIN action check_claim_details '{"claim_reference":"RMC-1001"}' --caller +447700900001
  $BIN health          (or: curl -s localhost:$SHOWN_PORT/health)
For real calls set OPENAI_API_KEY or GEMINI_API_KEY, PUBLIC_URL and point your Twilio
number's voice webhook at \$PUBLIC_URL/incoming-call. SMS stay mock until ENABLE_REAL_SMS=true.
Starting the server (Ctrl-C to stop)...
MSG
exec "$BIN" serve
