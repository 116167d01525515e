#!/usr/bin/env bash
# Demo traffic for ./quickstart: a worker running tests/demo/handler.sh for
# every type, and an emitter that records a few made-up events a second,
# some delayed, some urgent, now and then a duplicate.
#
#   tests/demo/traffic.sh EVFCTL DATABASE_URL [PARENT_PID]
#
# It stops (worker included) on SIGTERM/SIGINT, and by itself once
# PARENT_PID (default: the process that started it) is gone, so a demo
# never outlives its console.
set -uo pipefail

prog=${0##*/}
if (($# < 2 || $# > 3)); then
	echo "usage: $prog EVFCTL DATABASE_URL [PARENT_PID]" >&2
	exit 2
fi
evfctl=$1
db=$2
parent=${3:-$PPID}
handler=$(cd "$(dirname "$0")" && pwd)/handler.sh
[[ -x $evfctl ]] || { echo "$prog: $evfctl is not an executable" >&2; exit 1; }

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

# A short lease so that a worker killed mid-handler is seen as stuck and its
# events picked up again within seconds rather than minutes.
"$evfctl" --db "$db" process --name demo --lock-timeout 30s \
	--poll-interval 500ms --exec "*=bash $(printf '%q' "$handler")" &
worker_pid=$!

customers=(ada grace linus margaret ken dennis barbara edsger)
currencies=(EUR USD GBP CHF)

# Print the arguments of one `evfctl emit` call, one per line.
next_event() {
	local n=$1 who=${customers[RANDOM % ${#customers[@]}]} roll=$((RANDOM % 100))
	case $((RANDOM % 6)) in
	0 | 1 | 2)
		printf '%s\n' order.created \
			"{\"order_id\":$n,\"customer\":\"$who\",\"amount\":$((RANDOM % 500)).$((RANDOM % 90 + 10)),\"currency\":\"${currencies[RANDOM % ${#currencies[@]}]}\",\"items\":$((RANDOM % 5 + 1))}"
		;;
	3 | 4)
		printf '%s\n' invoice.send \
			"{\"invoice\":\"INV-$((100000 + n))\",\"order_id\":$n,\"email\":\"$who@example.com\"}" \
			--correlation-id "order-$n"
		;;
	5)
		printf '%s\n' email.welcome "{\"user\":\"$who\",\"email\":\"$who@example.com\"}" \
			--key "welcome-$who-$((RANDOM % 20))"
		;;
	esac
	if ((roll < 15)); then
		printf '%s\n' --in "$((RANDOM % 25 + 5))s"
	elif ((roll < 25)); then
		printf '%s\n' --priority -5
	elif ((roll < 35)); then
		printf '%s\n' --priority 10
	fi
}

n=0
while kill -0 "$parent" 2>/dev/null; do
	if ! kill -0 "$worker_pid" 2>/dev/null; then
		wait "$worker_pid"
		echo "$prog: the worker exited (status $?); stopping" >&2
		worker_pid=
		exit 1
	fi
	for ((burst = RANDOM % 3 + 1; burst > 0; burst--)); do
		n=$((n + 1))
		mapfile -t args < <(next_event "$n")
		"$evfctl" --db "$db" emit "${args[@]}" >/dev/null ||
			echo "$prog: emit ${args[0]} failed" >&2
	done
	sleep "0.$((RANDOM % 6 + 3))"
done
echo "$prog: $parent is gone; stopping" >&2
