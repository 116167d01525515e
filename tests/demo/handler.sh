#!/usr/bin/env bash
# Demo handler for ./quickstart (email.send of examples/orders.c, run as a
# command handler like `evfctl process --exec`): takes a
# moment, and fails now and then the way real handlers do, so that the demo
# shows retries and dead letters.  About 15% of calls fail and are retried
# (exit 1), about 3% fail for good (exit 65: dead-lettered at once), the
# rest succeed.
set -u

# The event arrives on stdin; a real handler would parse it.
cat >/dev/null

sleep "$(printf '0.%02d' $((RANDOM % 25 + 5)))"

type=${EVF_EVENT_TYPE:-event}
id=${EVF_EVENT_ID:-?}
roll=$((RANDOM % 100))
if ((roll < 3)); then
	echo "$type $id: rejected by the remote side: 422 unprocessable entity" >&2
	exit 65
elif ((roll < 18)); then
	case $((RANDOM % 3)) in
	0) echo "$type $id: upstream timed out after 2s" >&2 ;;
	1) echo "$type $id: connection refused by smtp.example.com:25" >&2 ;;
	2) echo "$type $id: 503 service unavailable, try again later" >&2 ;;
	esac
	exit 1
fi
exit 0
