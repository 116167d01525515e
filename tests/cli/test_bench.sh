#!/bin/sh
# evfctl bench runs every phase with a tiny N, reports positive figures,
# and drops its scratch table (or keeps it with --keep).
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

SCRATCH="evf_bench_t$$"
EXTRA_TABLES="$SCRATCH"
run init
expect_exit 0
run --json bench --scratch-table "$SCRATCH" --events 200 --workers 2 --batch-size 20 \
	--concurrency 2 --duration 300ms --poll-interval 20ms --phase all --max-rows 1000
expect_exit 0
expect_json "all(d[k] > 0 for k in ('emit_per_s', 'emit_single_per_s', 'drain_per_s', 'drain_exec_per_s', 'worker_max_rss_kb'))" true
expect_json "0 < d['latency_ms']['p50'] <= d['latency_ms']['p95'] <= d['latency_ms']['p99']" true
expect_json "d['latency_ms']['samples']" 100
expect_json "d['mixed']['emit_per_s'] > 0 and d['mixed']['drain_per_s'] > 0" true
expect_json "[p['rows'] for p in d['scale']]" "[2000]"
expect_json "d['scale'][0]['claim_ms'] > 0" true
expect_json "d['durability'].split(' ')[0] in ('SQLite', 'PostgreSQL')" true
# what the wake-up costs an emit: only PostgreSQL sends one
if [ "$BACKEND" = pg ]; then
	expect_json "d['emit_single_no_wake_per_s'] > 0" true
else
	expect_json "'emit_single_no_wake_per_s' in d" false
fi
expect_json "[d['events'], d['workers'], d['batch_size'], d['concurrency']]" "[200, 2, 20, 2]"
check "the scratch table is dropped" test "$(sql "SELECT count(*) FROM evf_schema WHERE table_name = '$SCRATCH'")" = 0
run bench --scratch-table "$SCRATCH" --events 100 --phase emit --keep
expect_exit 0
expect_stdout_contains "emit, batched"
expect_stdout_contains "events/s"
if [ "$BACKEND" = pg ]; then
	expect_stdout_contains "the same without wake-ups"
fi
check "--keep keeps it" test "$(sql "SELECT count(*) FROM \"$SCRATCH\"")" -gt 0
run bench --scratch-table "$SCRATCH" --events 100 --phase emit
expect_exit 2
expect_stderr_contains "exists; bench drops its scratch table"
check "an existing table is never dropped" test "$(sql "SELECT count(*) FROM \"$SCRATCH\"")" -gt 0
run bench --scratch-table "$TABLE" --events 100 --phase emit
expect_exit 2
# a table that is not an event table is no scratch table either
sql "CREATE TABLE not_events_$$ (id integer PRIMARY KEY, name text)" >/dev/null
sql "INSERT INTO not_events_$$ VALUES (1, 'keep me')" >/dev/null
EXTRA_TABLES="$EXTRA_TABLES not_events_$$"
run bench --scratch-table "not_events_$$" --events 100 --phase emit
expect_exit 2
expect_stderr_contains "exists"
check "somebody else's table is never dropped" test "$(sql "SELECT name FROM not_events_$$")" = "keep me"
run bench --phase sprint
expect_exit 2
expect_one_error_line
expect_stderr_contains "unknown phase 'sprint'"
run bench --events 5
expect_exit 2
run bench --max-rows 20000000
expect_exit 2
check "the event table was never touched" test "$(count_events)" = 0

# ---- the minimal loop of evfctl(1) BENCHMARKS builds and drains --------------
if pkg-config --exists libpq sqlite3 2>/dev/null; then
	loop_src="${EVF_TEST_SRCDIR:-.}/docs/peers/minimal-loop.c"
	# shellcheck disable=SC2086 # the build's flags are word lists
	if ${EVF_TEST_CC:-cc} ${EVF_TEST_CFLAGS:-} $(pkg-config --cflags libpq sqlite3) \
		-o "$T/minimal-loop" "$loop_src" ${EVF_TEST_LDFLAGS:-} \
		$(pkg-config --libs libpq sqlite3) 2>"$T/cc.err"; then
		pass "minimal-loop.c compiles"
		if [ "$BACKEND" = pg ]; then
			set -- pg "$DB" 2000 100 2
		else
			set -- sqlite "$T/loop.db" 2000 100
		fi
		"$T/minimal-loop" "$@" >"$T/out" 2>"$T/err"
		status=$?
		last="minimal-loop $BACKEND"
		expect_exit 0
		expect_stdout_contains "2000 rows, batch 100"
		expect_stdout_contains "rows/s"
	else
		fail "minimal-loop.c compiles: $(head -3 "$T/cc.err")"
	fi
fi

finish
