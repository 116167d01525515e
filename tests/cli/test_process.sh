#!/bin/sh
# evfctl process with the test plugin: outcomes, retries, dead letters,
# the selection options, and a clean stop on SIGTERM.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

if [ ! -f "$PLUGIN" ]; then
	echo "test plugin not built: $PLUGIN" >&2
	exit 99
fi
evf init >/dev/null || exit 99

# process --once with the plugin; extra options follow.
work() {
	run process --once --plugin "$PLUGIN" "$@"
}

# No handler is a usage error; a plugin that will not load is a failure.
run process --once
expect_exit 2
expect_stderr_contains "no handler"
run process --once --plugin "$T/missing.so"
expect_exit 1
expect_one_error_line

# Success.
a=$(emit_id t.ok '{"n":1}' --correlation-id corr-ok)
b=$(emit_id t.ok)
work
expect_exit 0
expect_stdout_equals "processed 2, failed 0 (retrying 0, dead 0), skipped 0"
expect_stderr_contains "t.ok"
expect_stderr_contains "corr-ok"
expect_field "$a" state done
expect_field "$a" attempts 1
expect_field "$b" state done
work
expect_stdout_equals "processed 0, failed 0 (retrying 0, dead 0), skipped 0"
expect_stderr_empty

# Retryable failure: failed, with a backoff before the next try.
r=$(emit_id t.retry)
work
expect_exit 0
expect_stdout_equals "processed 0, failed 1 (retrying 1, dead 0), skipped 0"
expect_field "$r" state failed
expect_field "$r" error_code E_RETRY
expect_field "$r" attempts 1
# The first backoff is at least half of the 1 s base, counted from the
# moment the failure is stamped on last_error_at.
check "a retry waits for its backoff" python3 -c '
import sys, datetime
t = datetime.datetime.fromisoformat
sys.exit(0 if (t(sys.argv[1]) - t(sys.argv[2])).total_seconds() >= 0.5 else 1)
' "$(field "$r" not_before)" "$(field "$r" last_error_at)"

# Not retryable: dead at once.
f=$(emit_id t.fatal)
run --json process --once --plugin "$PLUGIN" --types t.fatal
expect_exit 0
expect_json "d" '{"processed": 0, "failed": 1, "retried": 0, "dead": 1, "skipped": 0, "lost": 0}'
expect_field "$f" state dead
expect_field "$f" error_code E_FATAL
expect_field "$f" error_message "t.fatal cannot succeed"

# Attempts exhausted: dead, by the event's limit or by --max-attempts.
x=$(emit_id t.retry --max-attempts 1)
work --types t.retry
expect_stdout_contains "dead 1"
expect_field "$x" state dead
expect_field "$x" attempts 1
y=$(emit_id t.retry)
work --types t.retry --max-attempts 1
expect_stdout_contains "dead 1"
expect_field "$y" state dead
expect_field "$r" state failed

# The batch handler gets the claimed events of its type together.
b1=$(emit_id t.batch)
b2=$(emit_id t.batch '{"fail":true}')
b3=$(emit_id t.batch)
work --types t.batch
expect_stdout_equals "processed 2, failed 1 (retrying 1, dead 0), skipped 0"
expect_field "$b1" state done
expect_field "$b2" state failed
expect_field "$b2" error_message "failed in a batch of 3"
expect_field "$b3" state done

# A when predicate that says no marks the event done without running it.
w1=$(emit_id t.when '{"skip":true}')
w2=$(emit_id t.when '{"skip":false}')
work --types t.when
expect_stdout_equals "processed 1, failed 0 (retrying 0, dead 0), skipped 1"
expect_field "$w1" state done
expect_field "$w2" state done

# A handler's follow-up event carries the correlation id.
p=$(emit_id t.parent '{"order":7}' --correlation-id trace-7)
work --types t.parent
expect_stdout_contains "processed 1"
expect_field "$p" state done
run --json list --type t.child
expect_json "len(d)" 1
expect_json "d[0]['correlation_id']" trace-7
expect_json "d[0]['parameters']" '{"order": 7}'

# Types without a handler wait for a worker that knows them.
u=$(emit_id t.unknown)
work
expect_field "$u" state pending
expect_field "$u" attempts 0

# --types claims only the listed types.
o1=$(emit_id t.ok)
o2=$(emit_id t.when)
work --types t.when,t.fatal
expect_field "$o1" state pending
expect_field "$o2" state done

# --limit stops after that many outcomes.
evf mark-processed --all >/dev/null
for i in 1 2 3 4 5; do evf emit t.ok >/dev/null; done
work --limit 2
expect_stdout_contains "processed 2,"
expect_count 3 --type t.ok --state pending
work --limit 2 --batch-size 1
expect_count 1 --type t.ok --state pending
work
expect_count 0 --type t.ok --state pending

# --only-errors leaves events that never failed alone.
e=$(emit_id t.retry)
work --types t.retry
expect_field "$e" attempts 1
clean=$(emit_id t.retry)
i=0
while [ "$(field "$e" attempts)" = 1 ] && [ $i -lt 40 ]; do
	sleep 0.25   # until the backoff lets the failed event run again
	work --only-errors
	i=$((i + 1))
done
expect_field "$e" attempts 2
expect_field "$clean" state pending
expect_field "$clean" attempts 0

# --requeue-errors makes failed and dead events ready first.
evf mark-processed --all >/dev/null
d=$(emit_id t.fatal)
work
expect_field "$d" state dead
work
expect_stdout_contains "failed 0"
work --requeue-errors
expect_stdout_contains "failed 1 (retrying 0, dead 1)"
expect_field "$d" state dead

# --older-than: only events at least that old.
old=$(emit_id t.ok)
sleep 2
work --older-than 1h
expect_stdout_contains "processed 0,"
expect_field "$old" state pending
work --older-than 1s
expect_stdout_contains "processed 1,"
expect_field "$old" state done

# --log-format json: one JSON object per outcome on stderr.
j=$(emit_id t.ok --correlation-id corr-json)
run --log-format json process --once --plugin "$PLUGIN"
expect_exit 0
check "log lines are JSON" python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if len(lines) == 1 and "corr-json" in json.dumps(lines[0]) else 1)' "$T/err"

# SIGTERM: the running handler finishes, unstarted claims are released,
# the worker exits 0 with its summary.
s=$(emit_id t.slow '{"ms":4000}')
q1=$(emit_id t.ok)
q2=$(emit_id t.ok)
"$EVFCTL" --table "$TABLE" process --plugin "$PLUGIN" --poll-interval 100ms \
	</dev/null >"$T/bg.out" 2>"$T/bg.err" &
pid=$!
i=0
until evf list --state running --type t.slow | grep -q t.slow || [ $i -ge 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill -TERM "$pid"
wait "$pid"
status=$?
last="process (SIGTERM)"
cp "$T/bg.out" "$T/out"
cp "$T/bg.err" "$T/err"
expect_exit 0
expect_stdout_equals "processed 1, failed 0 (retrying 0, dead 0), skipped 0"
expect_field "$s" state done
expect_field "$q1" state pending
expect_field "$q2" state pending
expect_field "$q1" locked_by null

# SIGTERM to an idle worker stops it promptly.  The worker is known to
# be up (its signal handlers in place) once it has done one event.
evf mark-processed --all >/dev/null
ready=$(emit_id t.ok)
"$EVFCTL" --table "$TABLE" process --plugin "$PLUGIN" --poll-interval 1h \
	</dev/null >"$T/bg.out" 2>"$T/bg.err" &
pid=$!
i=0
until evf list --state done | grep -q "^ *$ready " || [ $i -ge 200 ]; do
	sleep 0.05
	i=$((i + 1))
done
sleep 0.2
start=$(date +%s)
kill -TERM "$pid"
wait "$pid"
status=$?
end=$(date +%s)
last="idle process (SIGTERM)"
cp "$T/bg.out" "$T/out"
cp "$T/bg.err" "$T/err"
expect_exit 0
expect_stdout_equals "processed 1, failed 0 (retrying 0, dead 0), skipped 0"
check "the idle worker stopped promptly" test $((end - start)) -le 2

# An idle worker is woken by another connection's emit, long before its
# poll interval (an hour here): LISTEN/NOTIFY on PostgreSQL, the commit
# watch on SQLite.
"$EVFCTL" --table "$TABLE" process --poll-interval 1h --limit 1 \
	--exec "wake.me=cat >/dev/null" >"$T/wake.out" 2>"$T/wake.err" &
pid=$!
sleep 0.5
emit_id wake.me >/dev/null
n=0
while kill -0 "$pid" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
if kill -0 "$pid" 2>/dev/null; then
	kill -TERM "$pid"
	status=1
else
	wait "$pid"
	status=$?
fi
last="idle worker with a 1h poll interval, woken by an emit"
cp "$T/wake.out" "$T/out"
cp "$T/wake.err" "$T/err"
expect_exit 0
expect_stdout_equals "processed 1, failed 0 (retrying 0, dead 0), skipped 0"

# A poison event that kills its worker every time goes dead once its
# attempts are used up, without running again: the claim past the last
# attempt (its lease expired with no outcome) records why.
id=$(emit_id poison.pill --max-attempts 2)
for round in 1 2; do
	evf process --once --lock-timeout 1s --exec 'poison.pill=kill -9 $PPID' \
		</dev/null >/dev/null 2>&1
	sleep 1.2
done
run process --once --lock-timeout 1s --exec "poison.pill=touch '$T/poison.ran'"
expect_exit 0
expect_stdout_equals "processed 0, failed 1 (retrying 0, dead 1), skipped 0"
run --json show "$id"
expect_json "d['state']" dead
expect_json "d['attempts']" 3
expect_json "d['error_code']" lease_expired
expect_json "'an earlier attempt' in d['error_message'] and 'attempt 3 of 2' in d['error_message']" true
check "the third claim did not run the handler" test ! -e "$T/poison.ran"

# PostgreSQL: a worker prepares its statements once and then only runs
# them; with --no-listen (poolers that keep no session state) it names
# none.  The server logs every statement of these sessions, named or not.
if [ "$BACKEND" = pg ] && [ -z "${EVF_PG_DIR:-}" ] && [ -n "${EVF_TEST_REQUIRE_PG:-}" ]; then
	fail "EVF_TEST_REQUIRE_PG is set but EVF_PG_DIR (the throwaway server's directory) is not"
elif [ "$BACKEND" = pg ] && [ -n "${EVF_PG_DIR:-}" ]; then
	log="$EVF_PG_DIR/postgres.log"
	case $DB in
	postgres://*\?* | postgresql://*\?*) traced="$DB&options=-c%20log_statement%3Dall" ;;
	postgres://* | postgresql://*) traced="$DB?options=-c%20log_statement%3Dall" ;;
	*) traced="$DB options='-c log_statement=all'" ;;
	esac
	named() { grep -c "execute evf_[0-9a-f]*_[0-9]*_[0-9]*: UPDATE \"$TABLE\" AS t" "$log"; }
	unnamed() { grep -c "execute <unnamed>: UPDATE \"$TABLE\" AS t" "$log"; }
	evf mark-processed --all >/dev/null
	for i in 1 2 3 4 5 6; do emit_id t.ok >/dev/null; done
	n0=$(named)
	u0=$(unnamed)
	run --db "$traced" process --once --batch-size 2 --plugin "$PLUGIN" --types t.ok
	expect_stdout_equals "processed 6, failed 0 (retrying 0, dead 0), skipped 0"
	# three claims and three completions, each by its prepared name
	check "a worker runs its claims and completions as prepared statements" \
		test $(( $(named) - n0 )) -ge 6
	check "... and none of them unnamed" test "$(unnamed)" -eq "$u0"
	for i in 1 2 3 4; do emit_id t.ok >/dev/null; done
	n1=$(named)
	run --db "$traced" process --once --batch-size 2 --no-listen --plugin "$PLUGIN" --types t.ok
	expect_stdout_equals "processed 4, failed 0 (retrying 0, dead 0), skipped 0"
	check "with --no-listen nothing is prepared" test "$(named)" -eq "$n1"
	check "... every statement is sent unnamed" test $(( $(unnamed) - u0 )) -ge 4
fi

finish
