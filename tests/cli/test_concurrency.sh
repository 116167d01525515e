#!/bin/sh
# evfctl process --concurrency: handlers in flight together, every event
# exactly once (also with two worker processes), --limit across threads,
# a clean stop on SIGTERM, and bad values.  No tight timings: the one
# time bound is loose enough for a loaded 2-core machine.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

evf init >/dev/null || exit 99

# Bad values: usage errors (exit 2) on one line naming the option.
for bad in 0 -1 257 x; do
	run process --once --concurrency "$bad" --exec 't=true'
	expect_exit 2
	expect_one_error_line
	expect_stderr_contains "--concurrency"
done
printf '[evf]\nconcurrency = 0\n' >"$T/bad.conf"
run --config "$T/bad.conf" process --once --exec 't=true'
expect_exit 2
expect_stderr_contains "concurrency"

# Eight handlers that each sleep a second run side by side: well under
# the eight seconds one at a time would take.
for i in 1 2 3 4 5 6 7 8; do evf emit slow >/dev/null; done
start=$(date +%s)
run process --once --concurrency 8 --exec "slow=sleep 1; echo \$EVF_EVENT_ID >>'$T/slow.ids'"
end=$(date +%s)
expect_exit 0
expect_stdout_equals "processed 8, failed 0 (retrying 0, dead 0), skipped 0"
check "8 one-second handlers with --concurrency 8 took $((end - start))s (< 6s)" \
	test $((end - start)) -lt 6
check "each slow event ran once" test "$(sort "$T/slow.ids" | uniq | wc -l)" -eq 8 -a \
	"$(wc -l <"$T/slow.ids")" -eq 8
expect_count 8 --type slow --state done
check "every slow event took one attempt" test \
	"$(evf --json list --type slow --limit 0 | python3 -c 'import json,sys; print(sorted({e["attempts"] for e in json.load(sys.stdin)}))')" = "[1]"

# Exactly once with two processes of four threads each.
i=0
while [ $i -lt 120 ]; do echo '{"type":"many"}'; i=$((i + 1)); done >"$T/many.jsonl"
evf emit --stdin <"$T/many.jsonl" >/dev/null
for p in 1 2; do
	evf process --once --concurrency 4 --batch-size 5 \
		--exec "many=echo \$EVF_EVENT_ID >>'$T/many.ids'" \
		</dev/null >"$T/many$p.out" 2>/dev/null &
	eval "pid$p=\$!"
done
wait "$pid1"
s1=$?
wait "$pid2"
s2=$?
check "two concurrent workers exit 0" test "$s1$s2" = 00
check "120 events ran 120 times" test "$(wc -l <"$T/many.ids")" -eq 120
check "no event ran twice" test -z "$(sort "$T/many.ids" | uniq -d)"
expect_count 120 --type many --state done
check "the two summaries add up to 120" test "$(cat "$T/many1.out" "$T/many2.out" |
	sed -n 's/^processed \([0-9]*\),.*/\1/p' | awk '{ s += $1 } END { print s }')" -eq 120

# --limit counts the outcomes of every thread together.
for i in 1 2 3 4 5 6 7 8 9 10; do evf emit lim >/dev/null; done
run process --limit 7 --concurrency 4 --exec 'lim=true'
expect_exit 0
expect_stdout_equals "processed 7, failed 0 (retrying 0, dead 0), skipped 0"
expect_count 3 --type lim --state pending

# Failures are judged per event as ever: retried with backoff, then dead.
evf mark-processed --all >/dev/null
f1=$(emit_id bad --max-attempts 1)
f2=$(emit_id bad)
run process --once --concurrency 2 --exec 'bad=echo nope >&2; exit 1'
expect_stdout_equals "processed 0, failed 2 (retrying 1, dead 1), skipped 0"
expect_field "$f1" state dead
expect_field "$f2" state failed
expect_field "$f2" error_message nope

# SIGTERM: the two running handlers finish, the events claimed but not
# started go back untouched (no attempt counted), exit 0.
evf mark-processed --all >/dev/null
for i in 1 2 3 4 5 6; do evf emit term >/dev/null; done
# The handlers wait for $T/go, so nothing depends on how fast this
# machine is: SIGTERM goes while both are surely running.
"$EVFCTL" --table "$TABLE" process --concurrency 2 --poll-interval 100ms \
	--exec "term=echo \$EVF_EVENT_ID >>'$T/term.started'; while [ ! -e '$T/go' ]; do sleep 0.05; done" \
	</dev/null >"$T/bg.out" 2>"$T/bg.err" &
pid=$!
i=0
until [ "$(cat "$T/term.started" 2>/dev/null | wc -l)" -ge 2 ] || [ $i -ge 600 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill -TERM "$pid"
sleep 0.5 # the stop is seen while both handlers still run
: >"$T/go"
wait "$pid"
status=$?
last="process --concurrency 2 (SIGTERM)"
cp "$T/bg.out" "$T/out"
cp "$T/bg.err" "$T/err"
expect_exit 0
expect_stdout_equals "processed 2, failed 0 (retrying 0, dead 0), skipped 0"
expect_count 2 --type term --state done
expect_count 4 --type term --state pending
check "released events kept their attempts (0) and lost their lease" test \
	"$(evf --json list --type term --state pending --limit 0 | python3 -c 'import json,sys; print(sorted({(e["attempts"], e["locked_by"]) for e in json.load(sys.stdin)}))')" = "[(0, None)]"

# concurrency in evf.conf, with the flag winning.
printf '[evf]\nconcurrency = 3\n' >"$T/c.conf"
run --config "$T/c.conf" config
expect_stdout_contains "evf.concurrency"
run --config "$T/c.conf" --json config
check "evf.conf sets concurrency" test "$(json "[s['value'] for s in d['settings'] if s['name'] == 'evf.concurrency'][0]")" = 3

finish
