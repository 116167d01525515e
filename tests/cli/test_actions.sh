#!/bin/sh
# evfctl requeue, mark-processed, dead-letter, set-max-attempts: by id, by
# filter, --dry-run, and the refusal to touch everything without --all.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

evf init >/dev/null || exit 99
for i in 1 2 3 4 5 6; do
	evf emit x.a "{\"i\":$i}" >/dev/null
done
evf emit y.b >/dev/null   # 7
evf emit y.b >/dev/null   # 8

# dead-letter by id.
run dead-letter 1 2
expect_exit 0
expect_stdout_equals "dead-lettered 2 events"
expect_field 1 state dead
expect_field 2 state dead
expect_field 3 state pending

# --dry-run counts and changes nothing.
snapshot "$T/before.json"
run requeue --state dead --dry-run
expect_exit 0
expect_stdout_equals "would requeue 2 events"
expect_unchanged "$T/before.json"
run --json requeue --state dead --dry-run
expect_json "d" '{"action": "requeue", "affected": 2, "dry_run": true}'
run mark-processed --type 'x.*' --dry-run
expect_stdout_equals "would mark 6 events processed"
run dead-letter --type y.b --dry-run
expect_stdout_equals "would dead-letter 2 events"
run set-max-attempts 9 --type y.b --dry-run
expect_stdout_equals "would set max attempts to 9 on 2 events"
run requeue --all --dry-run
expect_exit 0
expect_unchanged "$T/before.json"

# requeue by filter.
run requeue --state dead
expect_exit 0
expect_stdout_equals "requeued 2 events"
expect_field 1 state pending
expect_field 2 state pending
expect_field 1 dead false

# mark-processed by id and by type glob.
run mark-processed 3
expect_stdout_equals "marked 1 events processed"
expect_field 3 state done
run --json mark-processed --type 'y.*'
expect_json "d" '{"action": "mark-processed", "affected": 2, "dry_run": false}'
expect_field 7 state done
expect_field 8 state done
# Events already done are not counted again.
run mark-processed 3 7
expect_stdout_equals "marked 0 events processed"

# set-max-attempts on ids, then on a filter.
run set-max-attempts 9 4 5
expect_exit 0
expect_stdout_equals "set max attempts to 9 on 2 events"
expect_field 4 max_attempts 9
expect_field 5 max_attempts 9
expect_field 6 max_attempts 5
run --json set-max-attempts 2 --state pending --type x.a
expect_json "d['action']" set-max-attempts
expect_json "d['max_attempts']" 2
expect_json "d['affected']" 5
expect_field 6 max_attempts 2

# Ids and a filter together: the filter narrows the ids.
run dead-letter --type y.b 4 5
expect_stdout_equals "dead-lettered 0 events"
run dead-letter --type x.a 4 5 7
expect_stdout_equals "dead-lettered 2 events"
expect_field 7 state done

# Other filters: --text, --correlation-id, --since/--until, --errors.
evf emit z.c '{"needle":"haystack"}' --correlation-id cz >/dev/null  # 9
evf emit z.c '{"other":1}' >/dev/null                                # 10
run dead-letter --text haystack
expect_stdout_equals "dead-lettered 1 events"
expect_field 9 state dead
run requeue --correlation-id cz
expect_stdout_equals "requeued 1 events"
run dead-letter --type z.c --until 1h
expect_stdout_equals "dead-lettered 0 events"
run dead-letter --type z.c --since 1h
expect_stdout_equals "dead-lettered 2 events"
run requeue --errors --type y.b --dry-run
expect_stdout_equals "would requeue 0 events"

# Refusals and bad arguments never change anything.
snapshot "$T/before.json"
for cmd in requeue mark-processed dead-letter; do
	run $cmd
	expect_exit 2
	expect_one_error_line
	expect_stderr_contains "evfctl: $cmd: refusing to touch every event without --all"
	run $cmd --dry-run
	expect_exit 2
	expect_stderr_contains "refusing to touch every event without --all"
	run $cmd abc
	expect_exit 2
	expect_stderr_contains "bad event id 'abc'"
	run $cmd 1 0
	expect_exit 2
	run $cmd --state nope
	expect_exit 2
	expect_stderr_contains "unknown state"
	expect_unchanged "$T/before.json"
done
run set-max-attempts 3
expect_exit 2
expect_stderr_contains "refusing to touch every event without --all"
run set-max-attempts
expect_exit 2
expect_stderr_contains "missing the new maximum number of attempts"
run set-max-attempts 0 1
expect_exit 2
run set-max-attempts many 1
expect_exit 2
expect_unchanged "$T/before.json"

# --all is the explicit way to act on everything.
run dead-letter --all
expect_exit 0
expect_count 0 --state pending,failed,scheduled
run --json requeue --all
expect_json "d['affected']" 10
expect_count 10 --state pending

finish
