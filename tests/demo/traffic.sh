#!/usr/bin/env bash
# Demo traffic for ./quickstart, made by the example application
# (examples/orders.c): a worker running its order pipeline, with
# tests/demo/handler.sh as the command handler of email.send, and a loop
# that places an order or two every second, each with its event in one
# transaction.  Payments time out now and then (retried), large ones are
# declined (dead-lettered), test orders are skipped, and handler.sh fails
# now and then too.
#
#   tests/demo/traffic.sh ORDERS DATABASE_URL [PARENT_PID]
#
# It stops (worker included) on SIGTERM/SIGINT, and by itself once
# PARENT_PID (default: the process that started it) is gone, so a demo
# never outlives its console.
set -uo pipefail

prog=${0##*/}
if (($# < 2 || $# > 3)); then
	echo "usage: $prog ORDERS DATABASE_URL [PARENT_PID]" >&2
	exit 2
fi
orders=$1
db=$2
parent=${3:-$PPID}
handler=$(cd "$(dirname "$0")" && pwd)/handler.sh
[[ -x $orders ]] || { echo "$prog: $orders is not an executable" >&2; exit 1; }

worker_pid=
stop() {
	trap - EXIT INT TERM
	if [[ -n $worker_pid ]]; then
		kill -TERM "$worker_pid" 2>/dev/null
		wait "$worker_pid" 2>/dev/null
	fi
}
trap stop EXIT
trap 'exit 0' INT TERM

# The example reads EVF_* like evfctl.  A short lease so that a worker
# killed mid-handler is seen as stuck and its events picked up again within
# seconds rather than minutes.
export EVF_WORKER_NAME=demo EVF_LOCK_TIMEOUT=30s EVF_POLL_INTERVAL=500ms
"$orders" --db "$db" work --slow --mail-command "bash $(printf '%q' "$handler")" &
worker_pid=$!

while kill -0 "$parent" 2>/dev/null; do
	if ! kill -0 "$worker_pid" 2>/dev/null; then
		wait "$worker_pid"
		echo "$prog: the worker exited (status $?); stopping" >&2
		worker_pid=
		exit 1
	fi
	"$orders" --db "$db" place $((RANDOM % 4 == 0 ? 2 : 1)) >/dev/null ||
		echo "$prog: placing an order failed" >&2
	sleep "0.$((RANDOM % 8 + 2))"
done
echo "$prog: $parent is gone; stopping" >&2
