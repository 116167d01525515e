#!/bin/sh
# evfctl list, show and stats, for people and for scripts (--json).
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

evf init >/dev/null || exit 99
e1=$(emit_id a.x '{"colour":"red","n":[1,2]}' --correlation-id c1)
e2=$(emit_id a.y '{"colour":"blue"}')
e3=$(emit_id b.z)
e4=$(emit_id b.z --in 1h)
e5=$(emit_id c.fail '{"colour":"green"}')
evf dead-letter "$e2" >/dev/null
evf mark-processed "$e3" >/dev/null
evf process --once --exec 'c.fail=echo "first line" >&2; echo "boom happened" >&2; exit 3' \
	</dev/null >/dev/null 2>&1

# People: a header, then a row per event.
run list
expect_exit 0
check "list has a header line" grep -q '^ *ID  *TYPE  *STATE  *ATTEMPTS  *PRIO  *DATE  *ERROR' "$T/out"
check "list prints 6 lines" test "$(wc -l <"$T/out")" -eq 6
check "row of $e1" grep -q "^ *$e1  *a\.x  *pending  *0/5  *0 " "$T/out"
check "row of $e2" grep -q "^ *$e2  *a\.y  *dead " "$T/out"
check "row of $e3" grep -q "^ *$e3  *b\.z  *done " "$T/out"
check "row of $e4" grep -q "^ *$e4  *b\.z  *scheduled " "$T/out"
check "row of $e5 shows the first line of its error" grep -q "^ *$e5  *c\.fail  *failed  *1/5 .* first line$" "$T/out"
run list --state stuck
expect_exit 0
check "an empty list still has its header" test "$(wc -l <"$T/out")" -eq 1

# Scripts: a JSON array of whole events.
run --json list
expect_exit 0
expect_json "[e['id'] for e in d]" "[$e1, $e2, $e3, $e4, $e5]"
expect_json "d[0]['parameters']['n']" "[1, 2]"
expect_json "sorted(d[0].keys()) == sorted(['id','type','parameters','date','processed','error','dead','error_message','error_code','idempotency_key','correlation_id','priority','not_before','attempts','max_attempts','last_error_at','processed_at','locked_by','locked_until','state'])" true
expect_json "[e['state'] for e in d]" '["pending", "dead", "done", "scheduled", "failed"]'
expect_json "d[4]['error_message'].splitlines()[-1]" "boom happened"
run --json list --state stuck
expect_stdout_equals "[]"

# Filters.
ids_of() {
	_want=$1
	shift
	run --json list "$@"
	expect_json "[e['id'] for e in d]" "$_want"
}
ids_of "[$e2]" --state dead
ids_of "[$e2, $e3]" --state dead,done
ids_of "[$e1, $e2]" --type 'a.*'
ids_of "[$e3, $e4]" --type b.z
ids_of "[]" --type 'b'
ids_of "[$e5, $e4, $e3, $e2, $e1]" --desc
ids_of "[$e3, $e4, $e5]" --after "$e2"
ids_of "[$e3, $e2, $e1]" --desc --after "$e4"
ids_of "[$e1, $e2]" --limit 2
# Other orders, ties by id, and pages that go on after an event's place.
ids_of "[$e5, $e4, $e3, $e2, $e1]" --sort date --desc
run --json list --sort attempts --desc
expect_json "[(e['attempts'], e['id']) for e in d] == sorted(((e['attempts'], e['id']) for e in d), reverse=True)" true
ids_of "[$e1, $e2, $e3, $e4, $e5]" --sort priority
ids_of "[$e4, $e5]" --sort priority --after "$e3"
ids_of "[$e2, $e1]" --sort date --desc --after "$e3"
run list --sort size
expect_exit 2
expect_one_error_line
expect_stderr_contains "bad value for --sort: 'size'"
run list --sort date --after 999999
expect_exit 1
expect_stderr_contains "no event with id 999999"
ids_of "[$e5]" --errors --type 'c.*'
ids_of "[]" --errors --type 'b.*'
ids_of "[$e1]" --correlation-id c1
ids_of "[$e2]" --text blue
ids_of "[$e5]" --text boom
ids_of "[$e1, $e2, $e3, $e4, $e5]" --since 1h
ids_of "[]" --until 1h
ids_of "[$e1, $e2, $e3, $e4, $e5]" --since @0 --until 2999-01-01T00:00:00Z
ids_of "[]" --since 2999-01-01
ids_of "[$e4]" --type 'b.*' --state scheduled,pending

# The default limit is 100; --limit 0 means all.
i=0
while [ $i -lt 120 ]; do
	echo '{"type":"many"}'
	i=$((i + 1))
done >"$T/many"
evf emit --stdin <"$T/many" >/dev/null
run --json list
expect_json "len(d)" 100
run --json list --limit 0
expect_json "len(d)" 125
run list --limit 0
check "list --limit 0 prints every row" test "$(wc -l <"$T/out")" -eq 126

# show: every column, parameters pretty-printed, the full error.
run show "$e1"
expect_exit 0
for f in "id:" "type:" "state:" "date:" "attempts:" "priority:" "not_before:" \
	"idempotency_key:" "correlation_id:" "processed:" "processed_at:" "error:" \
	"dead:" "error_code:" "last_error_at:" "locked_by:" "locked_until:" "parameters:"; do
	check "show prints $f" grep -q "^$f" "$T/out"
done
expect_stdout_contains "a.x"
expect_stdout_contains "c1"
# (jsonb on PostgreSQL keeps its own key order, so the comma may not follow.)
check "parameters are pretty-printed" grep -q '^    "colour": "red",\{0,1\}$' "$T/out"
run show "$e5"
expect_stdout_contains "error_message:"
expect_stdout_contains "first line"
expect_stdout_contains "boom happened"
run --json show "$e5"
expect_exit 0
expect_json "d['id']" "$e5"
expect_json "d['state']" failed
expect_json "d['attempts']" 1
expect_json "d['error']" true
expect_json "d['parameters']" '{"colour": "green"}'
run show 99999
expect_exit 1
expect_one_error_line
expect_stderr_contains "evfctl: show: no event with id 99999"
run show
expect_exit 2
expect_stderr_contains "missing the event id"

# stats: total first, every state, a table by type.
run stats
expect_exit 0
check "stats starts with the total" grep -q '^total  *125$' "$T/out"
check "stats counts the dead" grep -q '^dead  *1$' "$T/out"
check "stats counts the pending" grep -q '^pending  *121$' "$T/out"
for s in scheduled running failed stuck done; do
	check "stats shows $s" grep -q "^$s " "$T/out"
done
check "stats has a table by type" grep -q '^TYPE  *pending  *scheduled' "$T/out"
check "stats row of b.z" grep -q '^b\.z  *0  *1  *0  *0  *0  *0  *1  *2$' "$T/out"
run --json stats
expect_exit 0
expect_json "d['total']" 125
expect_json "d['states']" '{"pending": 121, "scheduled": 1, "running": 0, "failed": 1, "stuck": 0, "dead": 1, "done": 1}'
expect_json "sorted(d['types'])" '["a.x", "a.y", "b.z", "c.fail", "many"]'
expect_json "d['types']['b.z']['done']" 1
expect_json "d['types']['many']['pending']" 120

finish
