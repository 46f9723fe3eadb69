#!/usr/bin/env bash
# Runs every step of docs/rollback.md once, in order, on a scratch data
# directory (managed cluster, loopback only; it starts and stops its own servers):
#   1. the current build serves a demo; a backup is taken
#   2. release rollback: migrate down K --dry-run, migrate down K, the previous
#      build serves the same database and the demo login signs in
#   3. roll forward: the current build migrates up again on start
#   4. key rollback: rotate, rotate, revoke the key in between
#   5. restore from the backup (--force over the changed database), serve, sign in
# K is the number of migrations the current build has that PREVIOUS lacks.
#
# usage: scripts/rollback-drill.sh [PREVIOUS]   (a git revision; default: the
#        parent of the commit that added the newest migration)
# needs: go, git, curl, jq, PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
PREV=${1:-$(git log -1 --format=%H --diff-filter=A -- 'postgres/migrations/*.up.sql')^}

WORK=$(mktemp -d); chmod 711 "$WORK"
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill -INT "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  git worktree remove --force "$WORK/prev-src" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { echo; echo "=== $*"; }

export VOXANNE_DATA_DIR=$WORK/data DATABASE_URL= VOXANNE_LOG_FORMAT=json
PORT=$((20000 + RANDOM % 20000)); URL=http://127.0.0.1:$PORT

step "build the current tree and $PREV"
go build -o "$WORK/voxanne" ./cmd/voxanne
git worktree add --quiet --detach "$WORK/prev-src" "$PREV"
(cd "$WORK/prev-src" && go build -o "$WORK/voxanne-prev" ./cmd/voxanne)
migrations() { ls "$1"/postgres/migrations/*.up.sql | wc -l; }
K=$(( $(migrations .) - $(migrations "$WORK/prev-src") ))
echo "the current build adds $K migration(s) to $(git rev-parse --short "$PREV")"
[ "$K" -ge 1 ] || { echo "nothing to roll back: choose an older PREVIOUS"; exit 1; }

serve() { # serve BINARY [ARGS...]: start in the background, wait until healthy
  local bin=$1; shift
  "$bin" serve --addr 127.0.0.1:$PORT "$@" >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 240); do curl -sf "$URL/health" >/dev/null && return 0; sleep 0.5; done
  cat "$WORK/serve.log"; exit 1
}
stop() { kill -INT "$SERVER"; wait "$SERVER" || true; SERVER=; }
sign_in() { # signs the demo login in and prints the access token's key id
  local header
  header=$(curl -sf "$URL/auth/v1/token?grant_type=password" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | jq -r .access_token | cut -d. -f1 | tr '_-' '/+')
  while [ $(( ${#header} % 4 )) -ne 0 ]; do header="$header="; done
  echo "$header" | base64 -d | jq -er .kid
}

step "1. the current build serves a demo; back up"
serve "$WORK/voxanne" --demo
for _ in $(seq 1 60); do grep -q 'sign in with' "$WORK/serve.log" && break; sleep 0.5; done
read -r EMAIL PASSWORD < <(grep -o 'sign in with [^ ]* / [^ ]*' "$WORK/serve.log" | head -1 | awk '{print $4, $6}')
KID=$(sign_in); echo "demo login $EMAIL signs in (token signed by key $KID)"
stop
"$WORK/voxanne" backup "$WORK/before-rollback.backup"

step "2. release rollback: migrate down $K --dry-run, migrate down $K, serve the previous build"
"$WORK/voxanne" migrate down "$K" --dry-run
"$WORK/voxanne" migrate status | tail -n "$((K + 1))"
"$WORK/voxanne" migrate down "$K"
serve "$WORK/voxanne-prev"
KID=$(sign_in); echo "the previous build serves; the demo login signs in (key $KID)"
stop

step "3. roll forward: the current build migrates up on start"
serve "$WORK/voxanne"
stop
if "$WORK/voxanne" migrate status | grep -q pending; then echo "migrations still pending"; exit 1; fi
echo "no migration pending"

step "4. key rollback: rotate, rotate again, revoke the key in between"
"$WORK/voxanne" keys rotate
BAD=$("$WORK/voxanne" keys list | awk '$3 == "current" {print $1}')
"$WORK/voxanne" keys rotate
"$WORK/voxanne" keys revoke "$BAD"
"$WORK/voxanne" keys list
serve "$WORK/voxanne"
if curl -sf "$URL/auth/v1/.well-known/jwks.json" | grep -q "$BAD"; then echo "revoked key $BAD still in JWKS"; exit 1; fi
KID=$(sign_in); echo "JWKS no longer has $BAD; sign-in signs with $KID"
stop

step "5. restore the backup over the changed database"
if "$WORK/voxanne" restore "$WORK/before-rollback.backup"; then echo "restore over data was not refused"; exit 1; fi
"$WORK/voxanne" restore "$WORK/before-rollback.backup" --force
serve "$WORK/voxanne"
KID=$(sign_in); echo "the restored database serves; the demo login signs in (key $KID)"
stop
"$WORK/voxanne" keys list

step "every step ran"
