#!/usr/bin/env bash
# The figures behind docs/operations.md's backup and restore timings: a demo
# server's database (serve --demo), then `voxanne backup` and `voxanne restore
# --force` three times each, each command starting and stopping the managed
# cluster itself. Loopback only; starts and stops its own server.
# usage: scripts/measure-backup-restore.sh BINARY PORT
set -eu
BIN=$1; PORT=$2
DIR=$(mktemp -d); chmod 711 "$DIR"
trap 'rm -rf "$DIR"' EXIT
export VOXANNE_DATA_DIR=$DIR/data DATABASE_URL= VOXANNE_LOG_FORMAT=json
"$BIN" serve --demo --addr 127.0.0.1:$PORT >"$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 1 240); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.5; done
sleep 5 # the demo's events are processed
kill -INT $PID; wait $PID || true
for i in 1 2 3; do /usr/bin/time -f "backup: %e s" "$BIN" backup "$DIR/voxanne.dump" 2>&1 >/dev/null | grep -v '^{'; done
echo "backup file: $(stat -c %s "$DIR/voxanne.dump") bytes"
for i in 1 2 3; do /usr/bin/time -f "restore --force: %e s" "$BIN" restore "$DIR/voxanne.dump" --force 2>&1 >/dev/null | grep -v '^{'; done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
