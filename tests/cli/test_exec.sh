#!/bin/sh
# evfctl process --exec: exit codes, stderr as the error message, the
# environment and stdin of the command, and --exec-timeout.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

evf init >/dev/null || exit 99

# process --once with one --exec handler for type x.
exec_x() {
	_cmd=$1
	shift
	run process --once --exec "x=$_cmd" "$@"
}

# Exit 0: done.
id=$(emit_id x)
exec_x 'cat >/dev/null; exit 0'
expect_exit 0
expect_stdout_equals "processed 1, failed 0 (retrying 0, dead 0), skipped 0"
expect_field "$id" state done

# Exit 75: retry later.
id=$(emit_id x)
exec_x 'exit 75'
expect_stdout_equals "processed 0, failed 1 (retrying 1, dead 0), skipped 0"
expect_field "$id" state failed
expect_field "$id" dead false
evf mark-processed "$id" >/dev/null

# Exit 65: never retry.
id=$(emit_id x)
exec_x 'exit 65'
expect_stdout_equals "processed 0, failed 1 (retrying 0, dead 1), skipped 0"
expect_field "$id" state dead

# Any other status: a retryable failure; the tail of stderr is the message.
id=$(emit_id x)
exec_x 'echo "noise" >&2; echo "the real reason" >&2; exit 3'
expect_stdout_contains "retrying 1"
expect_field "$id" state failed
check "the last line of stderr ends the error message" \
	test "$(field "$id" error_message | tail -n 1)" = "the real reason"
evf mark-processed "$id" >/dev/null

# Only the tail of a long stderr is kept.
id=$(emit_id x)
exec_x 'i=0; while [ $i -lt 500 ]; do echo "line $i of chatter" >&2; i=$((i+1)); done; echo "final words" >&2; exit 1'
expect_field "$id" state failed
msg=$(field "$id" error_message)
check "a long stderr is cut to its tail" test "${#msg}" -le 1100
check "the tail keeps the last line" test "$(printf '%s\n' "$msg" | tail -n 1)" = "final words"
evf mark-processed "$id" >/dev/null

# Killed by a signal: a retryable failure.
id=$(emit_id x)
exec_x 'kill -9 $$'
expect_field "$id" state failed
evf mark-processed "$id" >/dev/null

# The event on stdin, the EVF_* variables in the environment.
id=$(emit_id x '{"colour":"red"}' --correlation-id corr-9)
exec_x "cat >'$T/stdin.json'; echo \"\$EVF_EVENT_ID \$EVF_EVENT_TYPE \$EVF_ATTEMPT \$EVF_CORRELATION_ID\" >'$T/env'"
expect_exit 0
check "environment of the command" test "$(cat "$T/env")" = "$id x 1 corr-9"
check "event id on stdin" test "$(json "d['id']" "$T/stdin.json")" = "$id"
check "event type on stdin" test "$(json "d['type']" "$T/stdin.json")" = "x"
check "parameters on stdin" test "$(json "d['parameters']" "$T/stdin.json")" = '{"colour": "red"}'
check "correlation id on stdin" test "$(json "d['correlation_id']" "$T/stdin.json")" = "corr-9"

# EVF_ATTEMPT counts the tries.
id=$(emit_id x)
i=0
while [ "$(cat "$T/attempts" 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 40 ]; do
	exec_x "echo \$EVF_ATTEMPT >>'$T/attempts'; exit 75"
	sleep 0.25   # the retry waits for its backoff
	i=$((i + 1))
done
check "EVF_ATTEMPT is 1, then 2" test "$(tr '\n' ' ' <"$T/attempts")" = "1 2 "
expect_field "$id" attempts 2
evf mark-processed "$id" >/dev/null

# '*' handles every type without a handler of its own.
a=$(emit_id y.one)
b=$(emit_id y.two)
c=$(emit_id x)
run process --once --exec "*=echo \$EVF_EVENT_TYPE >>'$T/star'" --exec 'x=exit 65'
expect_stdout_equals "processed 2, failed 1 (retrying 0, dead 1), skipped 0"
check "'*' ran for y.one and y.two" test "$(sort "$T/star" | tr '\n' ' ')" = "y.one y.two "
expect_field "$c" state dead

# --exec-timeout kills the command (and its children) and retries.
id=$(emit_id x)
start=$(date +%s)
exec_x "sleep 29 & echo \$! >'$T/child.pid'; wait" --exec-timeout 500ms
end=$(date +%s)
expect_exit 0
expect_stdout_contains "retrying 1"
check "the timeout ended the command early" test $((end - start)) -lt 10
expect_field "$id" state failed
check "the message names the timeout" sh -c "'$EVFCTL' --table '$TABLE' --json show $id | grep -q 'timed out'"
# Gone, a zombie waiting for init to reap it, or its pid already reused
# by another process (pids wrap quickly here): in any case not running.
not_running() {
	[ ! -e "/proc/$1" ] ||
		grep -q '^[0-9]* (.*) [ZX] ' "/proc/$1/stat" 2>/dev/null ||
		[ "$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" != "sleep 29 " ]
}
check "the command started its child" test -s "$T/child.pid"
check "the command's child was killed too" not_running "$(cat "$T/child.pid")"

# A handler that emits with evfctl continues its event's correlation chain.
parent=$(emit_id chain.parent --correlation-id order-77)
run process --once --types chain.parent --exec "chain.parent='$EVFCTL' --table '$TABLE' emit chain.child >/dev/null"
expect_exit 0
expect_field "$parent" state done
ids_of_chain() {
	evf --json list --correlation-id order-77 >"$T/chain.json" 2>/dev/null
	json "[e['type'] for e in d]" "$T/chain.json"
}
check "the follow-up carries the parent's correlation id" \
	test "$(ids_of_chain)" = '["chain.parent", "chain.child"]'

# Malformed --exec and --exec-timeout are usage errors.
snapshot "$T/before.json"
for bad in "x" "=cmd" "x="; do
	run process --once --exec "$bad"
	expect_exit 2
	expect_one_error_line
	expect_stderr_contains "bad --exec"
done
run process --once --exec 'x=true' --exec-timeout soon
expect_exit 2
expect_stderr_contains "bad duration for --exec-timeout"
expect_unchanged "$T/before.json"

finish
