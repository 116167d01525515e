#!/bin/sh
# evfctl health, stuck and the throughput of stats, each state of health
# built for real on the database: events processed and dead-lettered by a
# worker, a worker killed with its lease held, events ready for too long,
# a missing database; every exit status 0, 1, 2 and 3.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

if [ "$BACKEND" = pg ] && ! command -v psql >/dev/null 2>&1; then
	[ -z "${EVF_TEST_REQUIRE_PG:-}" ] || { echo "psql is needed" >&2; exit 1; }
	exit 77
fi

# lines: how many lines the last stdout has.
expect_lines() {
	_n=$(wc -l <"$T/out")
	if [ "$_n" -eq "$1" ]; then pass "$last: $1 lines"; else fail "$last: $1 lines expected, got $_n"; fi
}

evf init >/dev/null || exit 99

# ---- an empty queue is healthy --------------------------------------------
run health
expect_exit 0
expect_lines 5
expect_stdout_contains "OK stuck: 0 stuck events (lease expired)"
expect_stdout_contains "OK oldest_ready: no event is ready"
expect_stdout_contains "OK failure_ratio: no activity in the last 15m"
expect_stdout_contains "OK dead: 0 events dead-lettered in the last 15m"
expect_stdout_contains "OK idle_queue: no event is ready"
expect_stderr_empty
run --json health
expect_exit 0
expect_json "d['status']" OK
expect_json "d['exit']" 0
expect_json "[c['name'] for c in d['checks']]" '["stuck", "oldest_ready", "failure_ratio", "dead", "idle_queue"]'
expect_json "d['checks'][0]" '{"name": "stuck", "status": "OK", "available": true, "value": 0, "warning": 1, "critical": 10, "detail": "0 stuck events (lease expired)"}'
expect_json "d['checks'][4]['warning']" null
run stats
expect_exit 0
expect_stdout_contains "no event is ready"
expect_stdout_contains "THROUGHPUT"
run --json stats
expect_json "d['oldest_ready_age_s']" null
expect_json "d['throughput']['1m']" '{"processed": 0, "failed": 0, "processed_per_s": 0, "failed_per_s": 0}'

# ---- failures and dead letters in the window --------------------------------
for i in 1 2 3; do evf emit a.ok >/dev/null; done
evf emit --max-attempts 1 b.bad >/dev/null
evf process --once --exec a.ok=true --exec 'b.bad=echo broken >&2; exit 1' >/dev/null 2>&1
run health
expect_exit 1
expect_stdout_contains "WARNING failure_ratio: 0.250: 1 failed, 3 completed in the last 15m"
expect_stdout_contains "WARNING dead: 1 events dead-lettered in the last 15m"
check "the worst checks come first" sh -c "head -2 '$T/out' | grep -c WARNING | grep -qx 2"
run --json health
expect_json "d['status']" WARNING
expect_json "d['exit']" 1
expect_json "d['checks'][2]['value']" 0.25
expect_json "d['checks'][3]['value']" 1
run health --dead-critical 1
expect_exit 2
expect_stdout_contains "CRITICAL dead: 1 events dead-lettered"
run health --failure-ratio-critical 0.2
expect_exit 2
run health --failure-ratio-warning 0.3 --failure-ratio-critical 0.4 --dead-warning 2 --dead-critical 3
expect_exit 0

# stats: 3 processed and 1 failed in the last minute and hour.
run --json stats
expect_exit 0
expect_json "d['throughput']['1m']['processed']" 3
expect_json "d['throughput']['1m']['failed']" 1
expect_json "d['throughput']['1m']['processed_per_s']" 0.05
expect_json "d['throughput']['1h']['processed']" 3
expect_json "d['throughput']['types']['a.ok']['1m']['processed']" 3
expect_json "d['throughput']['types']['b.bad']['1m']['failed']" 1
expect_json "d['throughput']['types']['b.bad']['1h']['processed']" 0
run stats
expect_stdout_contains "THROUGHPUT  processed/s 1m"
check "stats: the rates of all types" grep -Eq '^all +0\.05 +0\.02 +0\.0008 +0\.0003$' "$T/out"
check "stats: the rates of a.ok" grep -Eq '^a\.ok +0\.05 +0\.00 ' "$T/out"

# Half an hour ago: out of the 15m window and the last minute, not the hour.
sql "UPDATE \"$TABLE\" SET processed_at = $(sql_ago 1800) WHERE processed_at IS NOT NULL" >/dev/null
sql "UPDATE \"$TABLE\" SET last_error_at = $(sql_ago 1800) WHERE last_error_at IS NOT NULL" >/dev/null
# SQLite counts completions in the table's tally (seconds since 1970)
[ "$BACKEND" = pg ] || sql "UPDATE \"${TABLE}_tally\" SET at = at - 1800" >/dev/null
run health
expect_exit 0
expect_stdout_contains "OK failure_ratio: no activity in the last 15m"
run health --window 1h
expect_exit 1
expect_stdout_contains "WARNING failure_ratio: 0.250: 1 failed, 3 completed in the last 1h"
run --json stats
expect_json "d['throughput']['1m']['processed']" 0
expect_json "d['throughput']['1h']['processed']" 3

# ---- a worker killed while it held a lease: stuck ---------------------------
id=$(emit_id c.slow)
evf process --lock-timeout 1s --name ghost --exec 'c.slow=sleep 300' >/dev/null 2>&1 &
worker=$!
# running, or already stuck: the lease of 1s is not renewed while the
# handler runs
n=0
st=
while [ $n -lt 100 ]; do
	st=$(field "$id" state)
	case $st in running|stuck) break ;; esac
	sleep 0.1
	n=$((n + 1))
done
check "the worker claimed the event" sh -c "case '$st' in running|stuck) exit 0 ;; esac; exit 1"
kill_tree "$worker"
wait "$worker" 2>/dev/null
sleep 1.2
expect_field "$id" state stuck
run health
expect_exit 1
expect_stdout_contains "WARNING stuck: 1 stuck events (lease expired): 'evfctl stuck' lists them"
run health --stuck-critical 1
expect_exit 2
expect_stdout_contains "CRITICAL stuck: 1 stuck events"
run stuck
expect_exit 0
expect_stdout_contains "LOCKED_BY"
expect_stdout_contains " ghost:"
check "stuck lists the event" grep -Eq "^ +$id c\.slow +1 +ghost:" "$T/out"
run --json stuck
expect_json "len(d)" 1
expect_json "d[0]['id']" "$id"
expect_json "d[0]['type']" c.slow
expect_json "d[0]['attempts']" 1
expect_json "d[0]['locked_by'].split(':')[0]" ghost
expect_json "d[0]['age_s'] > 0" true
run stuck --type 'x.*'
expect_stdout_equals "no stuck events"
run --json stuck --type 'x.*'
expect_stdout_equals "[]"
run stuck --release --type 'x.*'
expect_stdout_equals "released 0 events"
expect_field "$id" state stuck
run --json stuck --release --limit 1
expect_exit 0
expect_json "d" '{"action": "release", "affected": 1, "dry_run": false}'
expect_field "$id" state pending
expect_field "$id" attempts 1
expect_field "$id" locked_by null
run stuck
expect_stdout_equals "no stuck events"
run health
expect_exit 0
evf process --once --exec c.slow=true >/dev/null 2>&1
expect_field "$id" state done

# ---- ready for too long, and nobody working -------------------------------
old=$(emit_id d.old)
sql "UPDATE \"$TABLE\" SET date = $(sql_ago 600), not_before = $(sql_ago 600) WHERE id = $old" >/dev/null
run health
expect_exit 2
check "the critical check comes first" sh -c "head -1 '$T/out' | grep -q '^CRITICAL idle_queue: events ready for 10m'"
expect_stdout_contains "WARNING oldest_ready: the oldest of 1 ready events has waited 10m"
run health --idle-queue 1h
expect_exit 1
expect_stdout_contains "OK idle_queue: events ready for 10m"
run health --idle-queue 1h --oldest-ready-warning 1m --oldest-ready-critical 9m
expect_exit 2
expect_stdout_contains "CRITICAL oldest_ready:"
run --json health --idle-queue 1h
expect_json "d['checks'][1]['value'] >= 600" true
expect_json "d['checks'][1]['warning']" 300
expect_json "d['checks'][4]['value']" 0
run --json stats
expect_json "d['oldest_ready_age_s'] >= 600" true
run stats
expect_stdout_contains "oldest ready event waiting 10m"

# ---- usage errors: exit 2, one line, nothing opened -----------------------
for args in "--stuck-warning 5 --stuck-critical 2" "--failure-ratio-warning 1.5" \
	"--failure-ratio-critical x" "--window 0" "--oldest-ready-warning 1h" \
	"--dead-warning -1" "--idle-queue soon" "--bogus" "extra"; do
	# shellcheck disable=SC2086
	run health $args
	expect_exit 2
	expect_one_error_line
	expect_stdout_empty
done
run health --stuck-warning 5 --stuck-critical 2
expect_stderr_contains "stuck_warning (5) is above stuck_critical (2)"
run --db "" health
expect_exit 2
for args in "--limit -1" "--bogus" "extra"; do
	# shellcheck disable=SC2086
	run stuck $args
	expect_exit 2
	expect_one_error_line
done

# ---- the database cannot be read: UNKNOWN, 3 -------------------------------
run --table no_such_table health
expect_exit 3
expect_stdout_contains "UNKNOWN database: table no_such_table does not exist"
run --json --table no_such_table health
expect_exit 3
expect_json "d['status']" UNKNOWN
expect_json "d['exit']" 3
expect_json "d['checks']" "[]"
if [ "$BACKEND" = pg ]; then
	run --db "postgresql:///evf_test?host=$T&port=1" health
else
	run --db "$T/missing.db" health
fi
expect_exit 3
expect_stdout_contains "UNKNOWN database: "
check "the missing database was not created" test ! -e "$T/missing.db"

# ---- a table of the original package ----------------------------------------
LEGACY=app_eventmodel_$$
EXTRA_TABLES=$LEGACY
if [ "$BACKEND" = pg ]; then
	sql "CREATE TABLE \"$LEGACY\" (id bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, type varchar(255) NOT NULL, date timestamp with time zone NOT NULL, parameters jsonb NOT NULL, processed boolean NOT NULL, error boolean NOT NULL, error_message text NOT NULL)" >/dev/null
	sql "INSERT INTO \"$LEGACY\" (type, date, parameters, processed, error, error_message) VALUES ('old', now(), '{}', false, false, '')" >/dev/null
else
	sql "CREATE TABLE \"$LEGACY\" (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, type varchar(255) NOT NULL, date datetime NOT NULL, parameters text NOT NULL, processed bool NOT NULL, error bool NOT NULL, error_message text NOT NULL)" >/dev/null
	sql "INSERT INTO \"$LEGACY\" (type, date, parameters, processed, error, error_message) VALUES ('old', strftime('%Y-%m-%d %H:%M:%f', 'now'), '{}', 0, 0, '')" >/dev/null
fi
run --table "$LEGACY" health
expect_exit 0
for c in stuck failure_ratio dead idle_queue; do
	expect_stdout_contains "OK $c: not available on a basic table (evfctl migrate)"
done
expect_stdout_contains "OK oldest_ready: the oldest of 1 ready events has waited"
run --json --table "$LEGACY" health
expect_json "d['checks'][0]['available']" false
expect_json "d['checks'][0]['value']" null
expect_json "d['checks'][1]['available']" true
run --table "$LEGACY" stats
expect_exit 0
expect_stdout_contains "throughput unknown: a basic table records no completion times"
run --json --table "$LEGACY" stats
expect_json "d['throughput']" null
expect_json "d['total']" 1
run --table "$LEGACY" stuck
expect_exit 1
expect_one_error_line
expect_stderr_contains "'evfctl migrate' adds them"
run --table "$LEGACY" stuck --release
expect_exit 1
run --table "$LEGACY" metrics
expect_exit 0
expect_stdout_contains 'evf_events{state="pending",type="old"} 1'
expect_stdout_lacks "evf_recent_events"

finish
