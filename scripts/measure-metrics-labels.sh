#!/usr/bin/env bash
# Sends 2,000 requests with made-up methods and paths and prints the size of /metrics before and
# after: it must stay about constant. Loopback only; starts and stops its own server.
# usage: scripts/measure-metrics-labels.sh BINARY PORT
set -u
BIN=$1; PORT=$2
DIR=$(mktemp -d); chmod 777 $DIR
export VOXANNE_DATA_DIR=$DIR/data VOXANNE_ADDR=127.0.0.1:$PORT VOXANNE_LOG_FORMAT=json DATABASE_URL=
$BIN serve > $DIR/log 2>&1 &
PID=$!
for i in $(seq 1 240); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.5; done
curl -s http://127.0.0.1:$PORT/metrics >/dev/null
echo "metrics bytes before: $(curl -s http://127.0.0.1:$PORT/metrics | wc -c)"
for i in $(seq 1 2000); do echo "M${i}X /made/up/$i"; done | xargs -P 16 -n 2 sh -c 'curl -s -o /dev/null -X "$0" "http://127.0.0.1:'$PORT'$1"'
echo "metrics bytes after 2000 made-up methods/paths: $(curl -s http://127.0.0.1:$PORT/metrics | wc -c)"
kill -INT $PID; wait $PID 2>/dev/null
rm -rf $DIR
