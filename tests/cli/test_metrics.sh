#!/bin/sh
# evfctl metrics (the database in the Prometheus text format) and the
# worker's own metrics: a real `process --once` writing a text file and
# sending StatsD datagrams to a listener; the text is parsed back and every
# number checked against what was done.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

if [ "$BACKEND" = pg ] && ! command -v psql >/dev/null 2>&1; then
	[ -z "${EVF_TEST_REQUIRE_PG:-}" ] || { echo "psql is needed" >&2; exit 1; }
	exit 77
fi

# A parser of the text format 0.0.4 that refuses what Prometheus would:
# a sample before its # TYPE, a family typed twice, a bad label escape.
cat >"$T/prom.py" <<'EOF'
import re, sys

def parse(path):
    samples, types, helps = {}, {}, set()
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)')
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("# HELP "):
            helps.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, "typed twice: " + name
            types[name] = kind
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "bad line: " + line
        name, body, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = re.sub(r'_(bucket|sum|count)$', '', name) if name not in types else name
        assert family in types and family in helps, "no TYPE/HELP before " + name
        labels, pos = {}, 0
        while pos < len(body):
            lm = label.match(body, pos)
            assert lm, "bad labels: " + body
            v = lm.group(2).replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')
            labels[lm.group(1)] = v
            pos = lm.end()
        key = (name, tuple(sorted(labels.items())))
        assert key not in samples, "duplicate series: " + line
        samples[key] = value
    return samples

def get(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))

if __name__ == "__main__":
    s = parse(sys.argv[1])
    v = eval(sys.argv[2], {"s": s, "get": get, "sorted": sorted, "len": len})
    print(v if not isinstance(v, bool) else str(v).lower())
EOF

# prom FILE EXPR: EXPR over the parsed FILE (s; get(s, name, label=...)).
prom() {
	python3 "$T/prom.py" "$1" "$2" 2>&1
}

expect_prom() {
	_got=$(prom "$1" "$2")
	if [ "$_got" = "$3" ]; then
		pass "$(basename "$1"): $2 == $3"
	else
		fail "$(basename "$1"): $2 == $3 expected, got '$_got'"
	fi
}

WEIRD='we"ird\type'
evf init >/dev/null || exit 99
for i in 1 2 3; do evf emit a.ok >/dev/null; done
evf emit --max-attempts 1 "$WEIRD" >/dev/null
evf emit --max-attempts 3 c.retry >/dev/null
evf emit --in 1h d.later >/dev/null

# A StatsD listener: every datagram it gets, until 1.5 s of silence.
cat >"$T/statsd.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.settimeout(20)
out = open(sys.argv[2], "w")
try:
    while True:
        data = s.recv(65536)
        out.write(data.decode())
        out.write("\n--\n")
        out.flush()
        s.settimeout(1.5)
except socket.timeout:
    pass
EOF
python3 "$T/statsd.py" "$T/port" "$T/statsd.out" &
listener=$!
n=0
while [ ! -s "$T/port" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
port=$(cat "$T/port")

mkdir "$T/prom"
run process --once --name wk --metrics-textfile "$T/prom/worker.prom" \
	--statsd "127.0.0.1:$port" --exec a.ok=true --exec "$WEIRD=exit 65" \
	--exec 'c.retry=exit 1'
expect_exit 0
expect_stdout_equals "processed 3, failed 2 (retrying 1, dead 1), skipped 0"
wait "$listener"

W="$T/prom/worker.prom"
check "the worker's text file exists" test -s "$W"
check "no temporary file is left" test "$(ls -A "$T/prom")" = worker.prom
check "the text file is readable by the collector" test "$(stat -c %a "$W")" = 644
expect_prom "$W" "get(s, 'evf_worker_processed_total', type='a.ok', worker='wk')" 3.0
expect_prom "$W" "get(s, 'evf_worker_failed_total', type='a.ok', worker='wk')" 0.0
expect_prom "$W" "get(s, 'evf_worker_dead_total', type=r'$WEIRD', worker='wk')" 1.0
expect_prom "$W" "get(s, 'evf_worker_failed_total', type=r'$WEIRD', worker='wk')" 1.0
expect_prom "$W" "get(s, 'evf_worker_retried_total', type='c.retry', worker='wk')" 1.0
expect_prom "$W" "get(s, 'evf_worker_dead_total', type='c.retry', worker='wk')" 0.0
expect_prom "$W" "get(s, 'evf_worker_processed_total', type='d.later', worker='wk')" None
expect_prom "$W" "get(s, 'evf_worker_handler_duration_seconds_count', type='a.ok', worker='wk')" 3.0
expect_prom "$W" "get(s, 'evf_worker_handler_duration_seconds_bucket', type='a.ok', worker='wk', le='+Inf')" 3.0
expect_prom "$W" "get(s, 'evf_worker_handler_duration_seconds_sum', type='a.ok', worker='wk') > 0" true
# buckets are cumulative: never decreasing, ending at the count
for t in a.ok c.retry; do
	expect_prom "$W" "(lambda b: [v for _, v in b] == sorted(v for _, v in b))(sorted((float(dict(l)['le'].replace('+Inf', 'inf')), v) for (n, l), v in s.items() if n.endswith('_bucket') and dict(l)['type'] == '$t'))" true
done
expect_prom "$W" "len([k for k in s if k[0].endswith('_bucket') and dict(k[1])['type'] == 'a.ok'])" 15
check "the histogram is typed" grep -qx '# TYPE evf_worker_handler_duration_seconds histogram' "$W"
check "the counters are typed" grep -qx '# TYPE evf_worker_processed_total counter' "$W"

S="$T/statsd.out"
check "statsd: processed counter" grep -qx 'evf.a.ok.processed:3|c' "$S"
check "statsd: dead counter, type made safe" grep -qx 'evf.we_ird_type.dead:1|c' "$S"
check "statsd: retried counter" grep -qx 'evf.c.retry.retried:1|c' "$S"
check "statsd: failed counter" grep -qx 'evf.c.retry.failed:1|c' "$S"
check "statsd: no zero counters" sh -c "! grep -q ':0|c' '$S'"
check "statsd: one timer per handler run" test "$(grep -c '^evf\.a\.ok\.duration:[0-9.]*|ms$' "$S")" -eq 3
check "statsd: every line well-formed" sh -c "grep -v '^--\$' '$S' | grep -v '^\$' | grep -vqE '^evf\.[A-Za-z0-9_.-]+:[0-9.]+\|(c|ms)\$' && exit 1 || exit 0"

# ---- evfctl metrics: the database ------------------------------------------
old=$(emit_id e.old)
sql "UPDATE \"$TABLE\" SET date = $(sql_ago 120), not_before = $(sql_ago 120) WHERE id = $old" >/dev/null
run metrics
expect_exit 0
expect_stderr_empty
cp "$T/out" "$T/db.prom"
D="$T/db.prom"
grep -v '^evf_oldest_ready_age_seconds ' "$D" >"$T/db.noage"
expect_prom "$D" "get(s, 'evf_events', state='done', type='a.ok')" 3.0
expect_prom "$D" "get(s, 'evf_events', state='pending', type='a.ok')" 0.0
expect_prom "$D" "get(s, 'evf_events', state='dead', type=r'$WEIRD')" 1.0
expect_prom "$D" "get(s, 'evf_events', state='failed', type='c.retry')" 1.0
expect_prom "$D" "get(s, 'evf_events', state='scheduled', type='d.later')" 1.0
expect_prom "$D" "get(s, 'evf_events', state='pending', type='e.old')" 1.0
expect_prom "$D" "sum(v for (n, l), v in s.items() if n == 'evf_events')" 7.0
expect_prom "$D" "get(s, 'evf_dead_events')" 1.0
expect_prom "$D" "get(s, 'evf_workers')" 0.0
expect_prom "$D" "115 <= get(s, 'evf_oldest_ready_age_seconds') < 300" true
expect_prom "$D" "get(s, 'evf_recent_events', outcome='completed', type='a.ok')" 3.0
expect_prom "$D" "get(s, 'evf_recent_events', outcome='dead', type=r'$WEIRD')" 1.0
expect_prom "$D" "get(s, 'evf_recent_events', outcome='failed', type='c.retry')" 1.0
check "label values are escaped" grep -qF 'type="we\"ird\\type"' "$D"
check "gauges are typed" grep -qx '# TYPE evf_events gauge' "$D"
# --json changes nothing; options are refused
run --json metrics
expect_exit 0
# (but for the age, which grew meanwhile)
check "metrics ignores --json" sh -c "grep -v '^evf_oldest_ready_age_seconds ' '$T/out' | cmp -s - '$T/db.noage'"
run metrics extra
expect_exit 2
expect_one_error_line

# A worker holding a lease is counted.
evf emit f.slow >/dev/null
evf process --exec 'f.slow=sleep 300' >/dev/null 2>&1 &
worker=$!
n=0
while [ "$(count_events --state running)" != 1 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
run metrics
kill_tree "$worker"
wait "$worker" 2>/dev/null
cp "$T/out" "$T/db2.prom"
expect_prom "$T/db2.prom" "get(s, 'evf_workers')" 1.0
expect_prom "$T/db2.prom" "get(s, 'evf_events', state='running', type='f.slow')" 1.0

# ---- bad worker metrics options: nothing claimed -------------------------
snapshot "$T/before.json"
run process --once --statsd nocolon --exec a.ok=true
expect_exit 2
expect_one_error_line
expect_stderr_contains "bad address for --statsd: 'nocolon'"
run process --once --statsd 127.0.0.1:99999 --exec a.ok=true
expect_exit 2
run process --once --statsd no-such-host.invalid:8125 --exec a.ok=true
expect_exit 1
expect_one_error_line
run process --once --metrics-textfile "$T/no/such/dir/w.prom" --exec e.old=true
expect_exit 1
expect_one_error_line
expect_stderr_contains "cannot write the metrics file"
run process --once --metrics-interval 0 --metrics-textfile "$W" --exec e.old=true
expect_exit 2
run process --once --metrics-textfile "" --exec e.old=true
expect_exit 2
expect_unchanged "$T/before.json"

# The interval: a long-running worker rewrites the file while it runs.
# When the file can no longer be written it says so once and goes on.
mkdir "$T/live"
W="$T/live/worker.prom"
evf emit g.later --in 2s >/dev/null
# evfctl itself, not the `evf` function: `kill $!` must reach the worker,
# not a subshell that leaves it running after the test.
"$EVFCTL" --table "$TABLE" process --metrics-textfile "$W" --metrics-interval 200ms \
	--poll-interval 100ms --name wk --exec g.later=true >/dev/null 2>"$T/worker.err" &
worker=$!
n=0
until [ "$(prom "$W" "get(s, 'evf_worker_processed_total', type='g.later', worker='wk')" 2>/dev/null)" = 1.0 ] || [ $n -ge 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
check "the running worker wrote its counts within the interval" test $n -lt 100
rm -rf "$T/live"
for i in 1 2 3; do evf emit g.later >/dev/null; sleep 0.5; done
n=0
while [ "$(count_events --type g.later --state done)" != 4 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill "$worker"
wait "$worker" 2>/dev/null
check "the worker went on without its file" test "$(count_events --type g.later --state done)" = 4
check "the write error was logged once" test "$(grep -c 'metrics: cannot write' "$T/worker.err")" -eq 1
check "as a warning" grep -q 'level=warn msg="metrics: cannot write' "$T/worker.err"

finish
