#!/bin/sh
# A worker killed with SIGKILL in the middle of a batch: its leased events
# show up as running, then stuck once the lease expires, and the next worker
# runs them.  Delivery is at least once: events whose completion the dead
# worker had committed are never run again; the rest are run (again).
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/stress/lib.sh"

events=200
lease=3
batch=10

stress_setup
emit_many "$events" t
ids_to "$WORK/emitted"

# Handlers note each start and each finish.  Batches are small enough to
# finish well within the lease even under a sanitizer, so that completions
# never depend on how a late one is treated.  After 25 finishes two batches
# are committed and the third is in flight.
# Not through the evf function: $! must be evfctl itself, not a subshell.
"$EVFCTL" --db "$DB" --table "$TABLE" process --lock-timeout "${lease}s" --batch-size "$batch" --poll-interval 100ms --name first \
	--exec "t=echo \$EVF_EVENT_ID >> '$WORK/started'; sleep 0.05; echo \$EVF_EVENT_ID >> '$WORK/done'" \
	>"$WORK/first.out" 2>"$WORK/first.log" &
first=$!
STRESS_PIDS=$first

tries=0
while [ "$(line_count "$WORK/done")" -lt 25 ]; do
	kill -0 "$first" 2>/dev/null || fail "the first worker exited early: $(tail -n 3 "$WORK/first.log")"
	tries=$((tries + 1))
	[ "$tries" -le 600 ] || fail "the first worker finished only $(line_count "$WORK/done") events in 60s"
	sleep 0.1
done
kill -KILL "$first"
wait "$first" 2>/dev/null
STRESS_PIDS=
killed_at=$(date +%s)
finished=$(line_count "$WORK/done")
note "killed the first worker after $finished handlers finished"
[ "$finished" -lt "$events" ] || fail "the first worker finished everything before the kill"
# A handler the kill orphaned may still be writing; let it finish.
sleep 0.3

read_stats
note "right after the kill: $STATS"
# Running while the lease lasts, stuck after: either way still held.
held=$(($(count_of running) + $(count_of stuck)))
[ "$held" -gt 0 ] || fail "no event is held by the dead worker: $STATS"
committed=$(count_of "done")
if [ "$committed" -eq 0 ] || [ "$committed" -ge "$events" ]; then
	fail "expected some but not all events done after the kill: $STATS"
fi
ids_to "$WORK/committed" --state "done"

# Past the lease the dead worker's events are stuck, and claimable again.
while [ $(($(date +%s) - killed_at)) -le "$lease" ]; do sleep 0.2; done
sleep 0.5
read_stats
note "after the lease expired: $STATS"
[ "$(count_of running)" -eq 0 ] || fail "events still running after the lease expired: $STATS"
[ "$(count_of stuck)" -gt 0 ] || fail "no stuck events after the lease expired: $STATS"

evf process --once --batch-size "$batch" --name second \
	--exec "t=echo \$EVF_EVENT_ID >> '$WORK/rerun'; echo \$EVF_EVENT_ID >> '$WORK/done'" \
	>"$WORK/second.out" 2>"$WORK/second.log" ||
	fail "the second worker failed: $(tail -n 3 "$WORK/second.log")"
note "second worker: $(cat "$WORK/second.out")"

read_stats
note "at the end: $STATS"
[ "$(count_of "done")" -eq "$events" ] || fail "not every event is done: $STATS"

sort -u "$WORK/done" >"$WORK/done.sorted"
cmp -s "$WORK/done.sorted" "$WORK/emitted" ||
	fail "some events never finished: $(comm -23 "$WORK/emitted" "$WORK/done.sorted" | head -n 5 | tr '\n' ' ')"

touch "$WORK/rerun"
sort "$WORK/rerun" >"$WORK/rerun.sorted"
again=$(comm -12 "$WORK/committed" "$WORK/rerun.sorted" | head -n 5)
[ -z "$again" ] || fail "events committed done by the first worker ran again: $(echo "$again" | tr '\n' ' ')"
comm -23 "$WORK/emitted" "$WORK/committed" >"$WORK/uncommitted"
cmp -s "$WORK/rerun.sorted" "$WORK/uncommitted" ||
	fail "the second worker ran $(line_count "$WORK/rerun") events, expected exactly the $(line_count "$WORK/uncommitted") not committed done"
note "ok: $committed committed before the kill, $(line_count "$WORK/rerun") run by the second worker"
