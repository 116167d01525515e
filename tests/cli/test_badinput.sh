#!/bin/sh
# Bad input never changes the database: one line on stderr, exit 2 for a
# usage error, exit 1 for a failure, and the table as it was.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

evf init >/dev/null || exit 99
evf emit t.a '{"k":1}' >/dev/null
evf emit t.b --key kb >/dev/null
evf dead-letter 1 >/dev/null
snapshot "$T/before.json"
check "the snapshot holds the events" test "$(json "len(d)" "$T/before.json")" = 2

# bad EXIT ARGS...: evfctl ARGS exits EXIT with one error line and leaves
# the database alone.
bad() {
	_want=$1
	shift
	run "$@"
	expect_exit "$_want"
	expect_one_error_line
	expect_unchanged "$T/before.json"
}

# Unknown state.
bad 2 list --state bogus
expect_stderr_contains "unknown state in --state: 'bogus'"
bad 2 list --state ""
bad 2 list --state pending,
bad 2 requeue --state bogus
bad 2 stats --state dead

# Malformed durations and times.
bad 2 emit t.c --in 5x
expect_stderr_contains "bad duration for --in: '5x'"
bad 2 emit t.c --in -5s
bad 2 emit t.c --in ""
bad 2 emit t.c --at yesterday
expect_stderr_contains "bad time for --at: 'yesterday'"
bad 2 emit t.c --at 2026-13-45T00:00:00Z
bad 2 emit t.c --in 1h --at @0
bad 2 list --since whenever
expect_stderr_contains "bad time or duration for --since"
bad 2 list --until 3x
bad 2 dead-letter --since nope
bad 2 process --once --exec 'x=true' --older-than old
bad 2 process --once --exec 'x=true' --lock-timeout 0
bad 2 process --once --exec 'x=true' --poll-interval 1fortnight

# Invalid JSON.
bad 2 emit t.c '{"k":'
expect_stderr_contains "parameters are not valid JSON"
bad 2 emit t.c "{'k':1}"
bad 2 emit t.c '{"k":1} trailing'
printf '%s\n' '{"type":"t.c"}' 'not json' >"$T/lines"
run_in "$T/lines" emit --stdin
expect_exit 2
expect_one_error_line
expect_stderr_contains "line 2: invalid JSON"
expect_unchanged "$T/before.json"

# Bad numbers.
bad 2 emit t.c --priority abc
expect_stderr_contains "bad number for --priority: 'abc'"
bad 2 emit t.c --priority 1.5
bad 2 emit t.c --priority 99999999999
bad 2 emit t.c --max-attempts 0
bad 2 emit t.c --max-attempts " 3"
bad 2 list --limit -1
bad 2 list --limit ten
bad 2 list --after x
bad 2 show abc
bad 2 show 0
bad 2 show -- -4
bad 2 requeue 1 two
expect_stderr_contains "bad event id 'two'"
bad 2 set-max-attempts 0 1
bad 2 set-max-attempts x 1
bad 2 process --once --exec 'x=true' --batch-size 0
bad 2 process --once --exec 'x=true' --limit lots
bad 2 process --once --exec 'x=true' --max-attempts -1

# Missing and unexpected arguments, unknown options.
bad 2 emit
expect_stderr_contains "missing the event type"
bad 2 emit t.c '{}' extra
bad 2 emit t.c --colour red
bad 2 list extra
bad 2 stats extra
bad 2 init extra
bad 2 process --once
bad 2 process --once --exec 'x=true' extra
bad 2 process --once --exec 'x=true' --types ,
bad 2 --table 'bad name; drop' list
bad 2 requeue
expect_stderr_contains "refusing to touch every event without --all"

# Failures: exit 1.
bad 1 show 99
expect_stderr_contains "evfctl: show: no event with id 99"
bad 1 process --once --plugin "$T/no-such-plugin.so"
bad 1 process --once --plugin "$T/before.json"
bad 1 --table other_table list
bad 1 --table other_table emit t.c

if [ "$BACKEND" = sqlite ]; then
	# A read command on a missing database file fails without creating it.
	for cmd in list stats "show 1" "requeue --all" "emit t.c" "process --once --exec x=true"; do
		run --db "$T/missing.db" $cmd
		expect_exit 1
		expect_one_error_line
		check "$cmd did not create the database file" test ! -e "$T/missing.db"
	done
	run --db "sqlite:$T/nodir/missing.db" list
	expect_exit 1
	expect_one_error_line
fi

# A server that does not answer (or, without the backend, a URL this
# build cannot open): exit 1, one line, and never the password.
for url in "postgresql://user:secret@127.0.0.1:1/none?connect_timeout=2" \
	"host=127.0.0.1 port=1 user=user password=secret dbname=none connect_timeout=2"; do
	for cmd in list stats "emit t.c" "requeue --all" "process --once --exec x=true" migrate; do
		run --db "$url" $cmd
		expect_exit 1
		expect_one_error_line
		check "the password is never printed" sh -c "! grep -q secret '$T/err'"
	done
done

finish
