#!/bin/sh
# evfctl init and emit: ids, idempotency, scheduling, priority, --stdin.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

run init
expect_exit 0
expect_stdout_contains "initialised $TABLE in"
if [ "$BACKEND" = sqlite ]; then
	check "init creates the database file" test -f "$DB"
else
	check "init creates the table" test "$(count_events)" = 0
fi
run init
expect_exit 0
run --json init
expect_json "d['table']" "$TABLE"
expect_json "'database' in d" "true"

run emit t.a
expect_exit 0
expect_stdout_equals "emitted 1"
expect_field 1 type t.a
expect_field 1 parameters "{}"
expect_field 1 state pending

run emit t.a '{"n": 2, "s": "x"}'
expect_stdout_equals "emitted 2"
expect_field 2 parameters '{"n": 2, "s": "x"}'

run --json emit t.b '[1,2]'
expect_exit 0
expect_json "d" '{"id": 3, "duplicate": false}'

# Idempotency: (type, key) is unique; a repeat reports the first id.
run emit --key k1 t.key '{"v":1}'
expect_stdout_contains "emitted "
k1=$(sed 's/^emitted //' "$T/out")
run emit --key k1 t.key '{"v":2}'
expect_exit 0
expect_stdout_equals "duplicate $k1"
run --json emit --key k1 t.key
expect_json "d" "{\"id\": $k1, \"duplicate\": true}"
expect_field "$k1" parameters '{"v": 1}'
expect_field "$k1" idempotency_key k1
run --json emit --key k1 t.other
expect_json "d['duplicate']" false
check "the same key for another type is a new event" test "$(json "d['id']")" != "$k1"
expect_count 5

# Scheduling shows in the state.
id=$(emit_id t.sched --in 1h)
expect_field "$id" state scheduled
id=$(emit_id t.sched --in 90m)
expect_field "$id" state scheduled
id=$(emit_id t.sched --at 2999-01-01T00:00:00Z)
expect_field "$id" state scheduled
id=$(emit_id t.sched --at "2000-01-01 00:00:00")
expect_field "$id" state pending
id=$(emit_id t.sched --at @946684800)
expect_field "$id" state pending
id=$(emit_id t.sched --in 0s)
expect_field "$id" state pending
expect_count 3 --state scheduled
run list --state scheduled
expect_stdout_contains "scheduled"

# Priority, correlation id, max attempts land in their columns.
id=$(emit_id t.prio --priority -3 --correlation-id corr-1 --max-attempts 9)
expect_field "$id" priority -3
expect_field "$id" correlation_id corr-1
expect_field "$id" max_attempts 9
id=$(emit_id t.prio --priority 7)
expect_field "$id" priority 7
expect_field "$id" max_attempts 5

# --stdin: JSON lines, blank lines ignored, defaults from the options.
before=$(count_events)
cat >"$T/lines" <<'LINES'
{"type":"t.bulk","parameters":{"i":1}}

{"type":"t.bulk","parameters":{"i":2},"key":"b2","priority":4}
   
{"type":"t.bulk","in":"1h","correlation_id":"bulk","max_attempts":2}
{"type":"t.bulk","at":"2000-01-01T00:00:00Z","parameters":null}
LINES
run_in "$T/lines" emit --stdin --priority 1
expect_exit 0
expect_stdout_equals "emitted 4 events (0 duplicates)"
expect_count $((before + 4))
expect_count 4 --type t.bulk
expect_count 1 --type t.bulk --state scheduled
expect_count 1 --type t.bulk --correlation-id bulk
run --json list --type t.bulk
expect_json "[e['priority'] for e in d]" "[1, 4, 1, 1]"
expect_json "[e['parameters'] for e in d]" '[{"i": 1}, {"i": 2}, {}, {}]'
expect_json "d[2]['max_attempts']" 2
expect_json "d[1]['idempotency_key']" b2

# A repeated key in the input counts as a duplicate.
printf '%s\n' '{"type":"t.bulk","key":"b2"}' '{"type":"t.bulk","key":"b3"}' >"$T/dups"
run_in "$T/dups" --json emit --stdin
expect_exit 0
expect_json "d" '{"emitted": 2, "duplicates": 1}'
expect_count 5 --type t.bulk

# Empty input emits nothing and succeeds.
: >"$T/empty"
run_in "$T/empty" emit --stdin
expect_exit 0
expect_stdout_equals "emitted 0 events (0 duplicates)"

# One bad line: usage error naming it, nothing written.
snapshot "$T/before.json"
printf '%s\n' '{"type":"t.bad","parameters":{}}' '' '{"type":"t.bad","parameters":{' >"$T/bad"
run_in "$T/bad" emit --stdin
expect_exit 2
expect_one_error_line
expect_stderr_contains "line 3"
expect_unchanged "$T/before.json"
for line in '{"parameters":{}}' '["t.x"]' '{"type":"t.x","in":"soon"}' \
	'{"type":"t.x","at":"tomorrow"}' '{"type":"t.x","priority":1.5}' \
	'{"type":"t.x","max_attempts":0}' '{"type":"t.x","colour":"red"}' \
	'{"type":"t.x","in":"1h","at":"@0"}' '{"type":7}'; do
	printf '%s\n%s\n' '{"type":"t.good"}' "$line" >"$T/bad"
	run_in "$T/bad" emit --stdin
	expect_exit 2
	expect_stderr_contains "line 2"
	expect_unchanged "$T/before.json"
done
run_in "$T/lines" emit --stdin t.x
expect_exit 2
run_in "$T/lines" emit --stdin --key k
expect_exit 2
expect_unchanged "$T/before.json"

# ---- --no-wake: idle workers find the event at their next poll ------------
run emit --no-wake t.quiet
expect_exit 0
expect_stdout_contains "emitted"
if [ "$BACKEND" = pg ]; then
	evf process --poll-interval 1m --exec 't.quiet=true' --exec 't.loud=true' \
		</dev/null >/dev/null 2>&1 &
	wpid=$!
	i=0 # the worker takes what is ready, then waits for a wake-up
	until [ "$(count_events --type t.quiet --state pending)" = 0 ] || [ $i -ge 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.3
	run emit --no-wake t.quiet
	sleep 1
	check "--no-wake: the idle worker sleeps on" test "$(count_events --type t.quiet --state pending)" = 1
	run emit t.loud
	i=0
	until [ "$(count_events --type t.quiet --state done)$(count_events --type t.loud \
		--state done)" = 21 ] || [ $i -ge 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	check "a wake-up: the worker takes both at once" \
		test "$(count_events --type t.quiet --state done)" = 2 -a \
		"$(count_events --type t.loud --state done)" = 1
	kill -TERM "$wpid"
	wait "$wpid"
fi

finish
