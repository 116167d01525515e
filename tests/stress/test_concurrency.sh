#!/bin/sh
# Four workers drain one queue at the same time (SQLite, or PostgreSQL with
# EVF_STRESS_BACKEND=pg): every event must be
# handled exactly once (no two workers claim the same event, none is lost)
# and end up done.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/stress/lib.sh"

events=${EVF_STRESS_EVENTS:-10000}
workers=4

stress_setup
emit_many "$events" t
ids_to "$WORK/emitted"
[ "$(line_count "$WORK/emitted")" -eq "$events" ] ||
	fail "emitted $events events but list shows $(line_count "$WORK/emitted")"

note "$workers workers draining $events events"
started=$(date +%s)
i=1
while [ "$i" -le "$workers" ]; do
	# Each worker appends the ids it ran to its own file.
	# Not through the evf function: $! must be evfctl itself, not a subshell.
	"$EVFCTL" --db "$DB" --table "$TABLE" process --once --batch-size 50 --name "w$i" \
		--exec "t=echo \$EVF_EVENT_ID >> '$WORK/ran.$i'" \
		>"$WORK/summary.$i" 2>"$WORK/log.$i" &
	eval "pid_$i=\$!"
	STRESS_PIDS="$STRESS_PIDS $!"
	i=$((i + 1))
done

i=1
while [ "$i" -le "$workers" ]; do
	eval "pid=\$pid_$i"
	status=0
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ]; then
		tail -n 5 "$WORK/log.$i" >&2
		fail "worker $i exited with status $status"
	fi
	i=$((i + 1))
done
STRESS_PIDS=
note "drained in $(($(date +%s) - started))s"

# A worker run with --once stops when it finds nothing ready, which another
# worker's claims can cause early; but claimed events are run by their
# claimant, so once every worker is gone nothing may be left over.
read_stats
note "states after the run: $STATS"
for s in pending scheduled running failed stuck dead; do
	[ "$(count_of "$s")" -eq 0 ] || fail "$s events left after all workers finished: $STATS"
done
[ "$(count_of "done")" -eq "$events" ] || fail "expected $events done: $STATS"

i=1
total_processed=0
busy_workers=0
while [ "$i" -le "$workers" ]; do
	touch "$WORK/ran.$i"
	cat "$WORK/ran.$i" >>"$WORK/ran.all"
	p=$(sed -n 's/^processed \([0-9][0-9]*\),.*/\1/p' "$WORK/summary.$i")
	[ -n "$p" ] || fail "worker $i printed no summary: $(cat "$WORK/summary.$i")"
	note "worker $i: ran $(line_count "$WORK/ran.$i") events, summary: $(cat "$WORK/summary.$i")"
	total_processed=$((total_processed + p))
	[ "$(line_count "$WORK/ran.$i")" -eq 0 ] || busy_workers=$((busy_workers + 1))
	i=$((i + 1))
done
# With thousands of events to share, one worker taking them all would mean
# the others were locked out rather than working alongside.
if [ "$events" -ge 1000 ] && [ "$busy_workers" -lt 2 ]; then
	fail "only $busy_workers of $workers workers ran any event"
fi

ran=$(line_count "$WORK/ran.all")
[ "$ran" -eq "$events" ] || fail "handlers ran $ran times for $events events"
dups=$(sort -n "$WORK/ran.all" | uniq -d | head -n 5)
[ -z "$dups" ] || fail "events handled more than once, e.g.: $(echo "$dups" | tr '\n' ' ')"
sort "$WORK/ran.all" >"$WORK/ran.sorted"
cmp -s "$WORK/ran.sorted" "$WORK/emitted" ||
	fail "the ids handled differ from the ids emitted: $(diff "$WORK/emitted" "$WORK/ran.sorted" | head -n 5 | tr '\n' ' ')"
[ "$total_processed" -eq "$events" ] ||
	fail "worker summaries add up to $total_processed processed, not $events"
note "ok: $events events, each handled exactly once"
