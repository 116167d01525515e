#!/bin/sh
# PostgreSQL restarts (pg_ctl restart -m fast) while two workers drain the
# queue: they reconnect and finish; no event is lost and none is recorded
# done twice.  The server restarted is a throwaway one of this test's own
# (tests/pg/throwaway.sh), so that PostgreSQL tests running alongside keep
# theirs; it runs where throwaway servers can be made, which $EVF_PG_DIR
# (exported by ./quickstart check) says.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/stress/lib.sh"

EVF_STRESS_BACKEND=pg
events=${EVF_STRESS_RESTART_EVENTS:-3000}
lease=5
srcdir=${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}

if [ -z "${EVF_PG_DIR:-}" ]; then
	[ -z "${EVF_TEST_REQUIRE_PG:-}" ] || fail "EVF_TEST_REQUIRE_PG is set but EVF_PG_DIR (throwaway servers) is not"
	skip "needs EVF_PG_DIR: a throwaway server from tests/pg/throwaway.sh"
fi
PG_HOME=$(mktemp -d "${TMPDIR:-/tmp}/evf-restart.XXXXXX") || fail "mktemp -d failed"
PG_DIR=
throwaway() {
	env -u EVF_PG_DIR ${PG_DIR:+"EVF_PG_DIR=$PG_DIR"} EVF_PG_POINTER="$PG_HOME/pointer" \
		bash "$srcdir/tests/pg/throwaway.sh" "$@"
}
throwaway start >"$PG_HOME/env" 2>"$PG_HOME/err" ||
	fail "cannot start a throwaway PostgreSQL: $(tail -n 3 "$PG_HOME/err")"
PG_DIR=$(sed -n 's/^EVF_PG_DIR=//p' "$PG_HOME/env")
EVF_TEST_PG_URL=$(sed -n 's/^EVF_TEST_PG_URL=//p' "$PG_HOME/env")
stress_setup
# stress_setup's trap cleans the work directory; the server goes too.
trap 'stress_cleanup; throwaway stop >/dev/null 2>&1; rm -rf "$PG_HOME"' EXIT
emit_many "$events" t
ids_to "$WORK/emitted"

for i in 1 2; do
	"$EVFCTL" --db "$DB" --table "$TABLE" process --once --batch-size 50 --name "w$i" \
		--lock-timeout "${lease}s" --exec "t=echo \$EVF_EVENT_ID >> '$WORK/ran.$i'" \
		>"$WORK/summary.$i" 2>"$WORK/log.$i" &
	eval "pid_$i=\$!"
	STRESS_PIDS="$STRESS_PIDS $!"
done

tries=0
while [ $(($(line_count "$WORK/ran.1") + $(line_count "$WORK/ran.2"))) -lt $((events / 5)) ]; do
	tries=$((tries + 1))
	[ "$tries" -le 600 ] || fail "the workers ran too few events in 60s"
	sleep 0.1
done
note "restarting PostgreSQL after $(($(line_count "$WORK/ran.1") + $(line_count "$WORK/ran.2"))) handlers ran"
throwaway restart || fail "pg_ctl restart failed"

for i in 1 2; do
	eval "pid=\$pid_$i"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || fail "worker $i exited with status $status: $(tail -n 3 "$WORK/log.$i")"
done
STRESS_PIDS=
# Their sessions were cut, so each must have hit its dead session and said
# so: a failed call is retried ("retrying"), and a lease renewal between
# handlers (a batch outlives half the lease when handlers run long on a
# loaded machine) is let pass with a warning, the lease check deciding
# later.
for i in 1 2; do
	grep -qE 'msg=retrying|msg="lease renewal failed"' "$WORK/log.$i" ||
		fail "worker $i did not log the restart: $(tail -n 3 "$WORK/log.$i")"
done

# A claim cut off by the restart may have committed without its worker
# hearing of it: those events come back once the lease expires.
read_stats
if [ "$(count_of "done")" -ne "$events" ]; then
	note "after the workers: $STATS; waiting out the lease"
	sleep $((lease + 1))
	evf process --once --name w3 --exec "t=echo \$EVF_EVENT_ID >> '$WORK/ran.3'" \
		>"$WORK/summary.3" 2>"$WORK/log.3" || fail "the last worker failed: $(tail -n 3 "$WORK/log.3")"
	read_stats
fi
note "at the end: $STATS"
[ "$(count_of "done")" -eq "$events" ] || fail "not every event is done: $STATS"

touch "$WORK/ran.3"
sort -u "$WORK/ran.1" "$WORK/ran.2" "$WORK/ran.3" >"$WORK/ran.sorted"
cmp -s "$WORK/ran.sorted" "$WORK/emitted" ||
	fail "some events never ran: $(comm -23 "$WORK/emitted" "$WORK/ran.sorted" | head -n 5 | tr '\n' ' ')"
# Recorded done twice would show as two "processed" lines for one id.
twice=$(cat "$WORK"/log.* | sed -n 's/.* msg=processed id=\([0-9]*\) .*/\1/p' | sort | uniq -d | head -n 5)
[ -z "$twice" ] || fail "events recorded done twice: $(echo "$twice" | tr '\n' ' ')"
ran=$(cat "$WORK"/ran.1 "$WORK"/ran.2 "$WORK"/ran.3 | wc -l | tr -d ' ')
note "ok: $events events done, handlers ran $ran times (at least once each)"
