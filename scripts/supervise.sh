#!/usr/bin/env bash
# Keeps a command running the way a Deployment keeps its pod: restarts it whenever it exits, with a backoff that
# doubles from 1 s to 30 s and starts over once a run lasted a minute. SIGTERM/SIGINT stop the command (TERM, then
# KILL after 15 s) and the supervisor with it.
#
#   scripts/supervise.sh COMMAND [ARG...]
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }

readonly MAX_BACKOFF=${SUPERVISE_MAX_BACKOFF:-30}
readonly HEALTHY_AFTER=${SUPERVISE_HEALTHY_AFTER:-60}
child=
stopping=false

stop() {
  stopping=true
  [ -n "$child" ] || exit 0
  kill -TERM "$child" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$child" 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL "$child" 2>/dev/null
  exit 0
}
trap stop TERM INT

backoff=1
while true; do
  started=$SECONDS
  "$@" &
  child=$!
  wait "$child"
  status=$?
  # A trapped signal interrupts wait; the trap has already stopped the child.
  $stopping && exit 0
  child=
  if [ $((SECONDS - started)) -ge "$HEALTHY_AFTER" ]; then backoff=1; fi
  echo "supervise: '$1' exited with status $status; restarting in ${backoff}s" >&2
  sleep "$backoff" & wait $!
  $stopping && exit 0
  backoff=$((backoff * 2 > MAX_BACKOFF ? MAX_BACKOFF : backoff * 2))
done
