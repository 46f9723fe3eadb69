#!/usr/bin/env bash
# Measures a voxanne binary's idle RSS and peak RSS (VmHWM) under 150 parallel password sign-ins,
# with the counts of answers. Loopback only; starts and stops its own server and managed cluster.
# usage: scripts/measure-hash-memory.sh BINARY PORT   (build: go build -o /tmp/voxanne ./cmd/voxanne)
set -u
BIN=$1; PORT=$2
DIR=$(mktemp -d); chmod 777 $DIR
export VOXANNE_DATA_DIR=$DIR/data VOXANNE_ADDR=127.0.0.1:$PORT VOXANNE_RATE_LIMIT_SIGN_IN=off VOXANNE_RATE_LIMIT_EMAIL=off VOXANNE_LOG_FORMAT=json DATABASE_URL=
export VOXANNE_RATE_LIMIT_EMAIL_GLOBAL=off
$BIN serve > $DIR/log 2>&1 &
PID=$!
for i in $(seq 1 240); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.5; done
curl -s -o /dev/null -X POST http://127.0.0.1:$PORT/auth/v1/signup -H 'Content-Type: application/json' -d '{"email":"mem@example.com","password":"a-long-password-123"}'
sleep 1
echo "idle VmRSS: $(grep VmRSS /proc/$PID/status)"
seq 1 150 | xargs -P 150 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$PORT/auth/v1/token?grant_type=password" -H 'Content-Type: application/json' -d '{"email":"mem@example.com","password":"a-long-password-123"}' > $DIR/codes
echo "peak: $(grep VmHWM /proc/$PID/status)"
sort $DIR/codes | uniq -c
kill -INT $PID; wait $PID 2>/dev/null
rm -rf $DIR
