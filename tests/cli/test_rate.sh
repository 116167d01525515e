#!/bin/sh
# evfctl process --rate and --rate-global: bad values, a local limit that
# holds back one type only and never costs an attempt, and a global limit
# that three workers keep together.  Rates are proved by lower bounds on
# time from the handlers' own start times (load only makes them later) and
# by a generous count per one-second window, never by a tight timing.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

evf init >/dev/null || exit 99

# Bad values: usage errors (exit 2), one line naming the flag.
for bad in t t= =5/s t=5 t=0/s t=-1/s t=5/d t=x/s t=5/s/s t=inf/s; do
	run process --once --rate "$bad" --exec 't=true'
	expect_exit 2
	expect_one_error_line
	expect_stderr_contains "--rate"
done
run process --once --rate-global 't=1/m' --rate-global 't=2/m' --exec 't=true'
expect_exit 2
expect_stderr_contains "a second rate"
printf '[rates]\nt = 5/fortnight\n' >"$T/bad.conf"
run --config "$T/bad.conf" process --once --exec 't=true'
check "a bad rate in evf.conf is an error" test "$status" -ne 0
expect_one_error_line
expect_stderr_contains "bad.conf:2"

# evfctl config shows the rates of the file.
printf '[rates]\nmail.* = 10/s\n[global_rates]\napi.call = 100/m\n' >"$T/rates.conf"
run --config "$T/rates.conf" config
expect_exit 0
expect_stdout_contains "rates.mail.*"
expect_stdout_contains "global_rates.api.call"
expect_stdout_contains "100/m"

# start_times FILE: the handler's start time and event type, one a line.
handler="echo \$(date +%s.%N) \$EVF_EVENT_TYPE >>'$T/starts'"

# A local limit of 10/s on t: 25 events need at least 1.5 s after the
# first ten (a full bucket), while the 5 u events are not held back.  No
# event is failed or charged an attempt for being held back.
i=0
while [ $i -lt 25 ]; do echo '{"type":"t"}'; i=$((i + 1)); done >"$T/t.jsonl"
i=0
while [ $i -lt 5 ]; do echo '{"type":"u"}'; i=$((i + 1)); done >>"$T/t.jsonl"
evf emit --stdin <"$T/t.jsonl" >/dev/null
t0=$(date +%s.%N)
run process --once --rate t=10/s --exec "t=$handler" --exec "u=$handler"
expect_exit 0
expect_stdout_equals "processed 30, failed 0 (retrying 0, dead 0), skipped 0"
expect_count 30 --state done
check "every event took exactly one attempt" test \
	"$(evf --json list --limit 0 | python3 -c 'import json,sys; print(sorted({e["attempts"] for e in json.load(sys.stdin)}))')" = "[1]"
# span T0 TYPE: seconds from T0 to the last start of TYPE.
span() {
	python3 - "$1" "$2" "$T/starts" <<'PY'
import sys
t0, typ, path = float(sys.argv[1]), sys.argv[2], sys.argv[3]
ts = [float(l.split()[0]) for l in open(path) if l.split()[1] == typ]
print("%.2f" % (max(ts) - t0))
PY
}
# most_in_a_second TYPE: the most starts of TYPE in any one-second window.
most_in_a_second() {
	python3 - "$1" "$T/starts" <<'PY'
import sys
typ, path = sys.argv[1], sys.argv[2]
ts = sorted(float(l.split()[0]) for l in open(path) if l.split()[1].startswith(typ))
print(max(sum(1 for u in ts if t <= u < t + 1) for t in ts))
PY
}
s=$(span "$t0" t)
check "25 t events at 10/s took ${s}s after the start (>= 1.3)" \
	python3 -c "import sys; sys.exit(0 if $s >= 1.3 else 1)"
check "the 5 u events were not held back (last after $(span "$t0" u)s, < t's ${s}s)" \
	python3 -c "import sys; sys.exit(0 if $(span "$t0" u) < $s else 1)"
m=$(most_in_a_second t)
check "at most 10 + 10 + slack of t in any second (saw $m)" test "$m" -le 23

# A global limit of 5/s on g.* kept by three workers (two threads each)
# together: 30 events need at least 5 s after the first five, where three
# separate limits would have let them through in about one.
evf mark-processed --all >/dev/null
: >"$T/starts"
i=0
while [ $i -lt 30 ]; do echo '{"type":"g.x"}'; i=$((i + 1)); done >"$T/g.jsonl"
evf emit --stdin <"$T/g.jsonl" >/dev/null
t0=$(date +%s.%N)
pids=
for p in 1 2 3; do
	"$EVFCTL" --table "$TABLE" process --concurrency 2 --batch-size 2 \
		--poll-interval 100ms --rate-global 'g.*=5/s' --exec "g.x=$handler" \
		</dev/null >"$T/g$p.out" 2>"$T/g$p.err" &
	pids="$pids $!"
done
i=0
until [ "$(count_events --type g.x --state done)" = 30 ] || [ $i -ge 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
for p in $pids; do kill -TERM "$p"; done
codes=
for p in $pids; do
	wait "$p"
	codes="$codes$?"
done
check "the three workers exit 0 on SIGTERM" test "$codes" = 000
expect_count 30 --type g.x --state done
check "the three summaries add up to 30" test "$(cat "$T/g1.out" "$T/g2.out" "$T/g3.out" |
	sed -n 's/^processed \([0-9]*\),.*/\1/p' | awk '{ s += $1 } END { print s }')" -eq 30
check "no g event was failed or charged an extra attempt" test \
	"$(evf --json list --type g.x --limit 0 | python3 -c 'import json,sys; print(sorted({(e["attempts"], e["error"]) for e in json.load(sys.stdin)}))')" = "[(1, False)]"
s=$(span "$t0" g.x)
check "30 g events at a global 5/s took ${s}s after the start (>= 4.5)" \
	python3 -c "import sys; sys.exit(0 if $s >= 4.5 else 1)"
m=$(most_in_a_second g.)
check "at most 5 + 5 + slack of g in any second, all workers together (saw $m)" \
	test "$m" -le 14

# The bucket lives in the database, one row per table and rule.
check "evf_rate holds the bucket of g.* for this table" test \
	"$(sql "SELECT count(*) FROM evf_rate WHERE table_name = '$TABLE' AND rule = 'g.*'")" = 1

finish
