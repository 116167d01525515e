#!/bin/sh
# purge, archive and restore on an extended table: what each selects and
# refuses, chunking, file safety (0600, never overwritten, gzip members),
# restore round trips with every digit of the parameters, and interruption
# (SIGINT and kill -9) mid-way: nothing lost, nothing duplicated beyond the
# chunk in flight.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

EXTRA_TABLES="${TABLE}_arch ${TABLE}_copy"

# ids_in FILE: the sorted ids of an archive (plain or gzip).
ids_in() {
	python3 - "$1" <<'PY'
import gzip, json, sys
p = sys.argv[1]
f = gzip.open(p, "rt") if p.endswith(".gz") else open(p)
print(" ".join(str(i) for i in sorted(json.loads(l)["id"] for l in f if l.strip())))
PY
}

# table_ids: the sorted ids in the event table.
table_ids() {
	evf --json list --limit 0 >"$T/ids.json" 2>/dev/null
	json "' '.join(str(e['id']) for e in d)" "$T/ids.json"
}

run init
expect_exit 0

# ---- purge -------------------------------------------------------------------
# 20 done (a.x), 5 dead (b.y), 3 pending (c.z), 2 scheduled.
i=0
while [ $i -lt 20 ]; do echo '{"type":"a.x"}'; i=$((i + 1)); done >"$T/a"
run_in "$T/a" emit --stdin
for i in 1 2 3 4 5; do emit_id b.y >/dev/null; done
for i in 1 2 3; do emit_id c.z >/dev/null; done
for i in 1 2; do emit_id c.z --in 1h >/dev/null; done
run process --once --exec 'a.x=cat >/dev/null' --exec 'b.y=exit 65'
expect_exit 0
expect_count 20 --state done
expect_count 5 --state dead

snapshot "$T/before.json"
run purge
expect_exit 2
expect_one_error_line
expect_stderr_contains "--older-than is required"
run purge --older-than soon
expect_exit 2
expect_one_error_line
run purge --older-than 0s --chunk 0
expect_exit 2
run purge --older-than 0s --state sleeping
expect_exit 2
run purge --older-than 0s --to x.jsonl
expect_exit 2
expect_unchanged "$T/before.json"
run --json purge --older-than 1h
expect_exit 0
expect_json "[d['total'], d['chunks']]" "[0, 0]"
run --json purge --older-than 0s --dry-run
expect_exit 0
expect_json "[d['states'], d['total'], d['dry_run']]" '[{"dead": 5, "done": 20}, 25, true]'
expect_unchanged "$T/before.json"
run --json purge --older-than 0s --type 'b.*'
expect_exit 0
expect_json "d['states']" '{"dead": 5}'
expect_count 0 --state dead
expect_count 20 --state done
run purge --older-than 0s --chunk 7
expect_exit 0
expect_stdout_contains "purged 20 events created before"
expect_stdout_contains "(3 chunks)"
expect_count 0 --state done
expect_count 3 --state pending
expect_count 2 --state scheduled
run --json purge --older-than 0s --state pending
expect_exit 0
expect_json "d['states']" '{"pending": 3}'
expect_count 2 --state scheduled

# ---- archive to a file and restore -------------------------------------------
printf '%s\n' '{"type":"p.q","parameters":{"big":12345678901234567890,"dec":0.1000000000000000055511151231257827,"u":"h\u00e9 \u2603","nl":"a\nb"}}' \
	'{"type":"p.q","parameters":[1,2,{"deep":{"er":null}}],"key":"k1","correlation_id":"c-1","priority":-3}' \
	'{"type":"p.r","parameters":"just a string"}' >"$T/p"
i=0
while [ $i -lt 7 ]; do echo '{"type":"p.r","parameters":{"i":'$i'}}'; i=$((i + 1)); done >>"$T/p"
run_in "$T/p" emit --stdin
expect_exit 0
run process --once --exec 'p.q=cat >/dev/null' --exec 'p.r=exit 65'
expect_exit 0
expect_count 2 --state done
expect_count 8 --state dead
if [ "$BACKEND" = sqlite ]; then
	# what only an SQLite table can hold: a raw line break inside a string
	# (cJSON accepts it) and, from an old table, text that is not JSON
	evf emit p.odd "$(printf '{"m":"x\ny"}')" >/dev/null
	evf mark-processed --type p.odd >/dev/null
	sql "INSERT INTO \"$TABLE\" (type, date, parameters, processed, error, error_message) VALUES ('p.odd', $(sql_ago 0), '{\"a\":1} junk', 1, 0, '')" >/dev/null
	odd=2
else
	odd=0
fi
snapshot "$T/full.json"
sql "SELECT id, parameters FROM \"$TABLE\" ORDER BY id" >"$T/params.before"

run archive --older-than 0s
expect_exit 2
expect_stderr_contains "--to FILE"
run archive --older-than 0s --to "$T/x.jsonl" --to-table x
expect_exit 2
run archive --older-than 0s --to-table 'bad name'
expect_exit 2
expect_one_error_line
run archive --older-than 0s --to-table "$TABLE"
expect_exit 2
check "refused archives create no file" test ! -e "$T/x.jsonl"
run archive --older-than 0s --to "$T/nodir/f.jsonl"
expect_exit 1
expect_one_error_line
expect_unchanged "$T/full.json"

run --json archive --older-than 0s --to "$T/f.jsonl" --chunk 4
expect_exit 0
expect_json "[d['states']['dead'], d['states']['done'], d['total'], d['purged']]" "[8, $((2 + odd)), $((10 + odd)), 0]"
expect_unchanged "$T/full.json"
check "an archive file is created mode 0600" test "$(stat -c %a "$T/f.jsonl")" = 600
check "one line per event" test "$(wc -l <"$T/f.jsonl")" -eq $((10 + odd))
check "each line is a JSON object with every column" python3 -c '
import json, sys
cols = {"id","type","date","processed","error","error_message","idempotency_key",
        "correlation_id","priority","not_before","attempts","max_attempts","last_error_at",
        "processed_at","error_code","dead","locked_by","locked_until","state"}
for l in open(sys.argv[1]):
    keys = set(json.loads(l))
    assert cols <= keys and len(keys & {"parameters", "parameters_text"}) == 1, l
' "$T/f.jsonl"
cp "$T/f.jsonl" "$T/f.copy"
run archive --older-than 0s --to "$T/f.jsonl"
expect_exit 2
expect_one_error_line
expect_stderr_contains "never overwritten"
check "an existing archive is left as it was" cmp -s "$T/f.jsonl" "$T/f.copy"
run --json archive --older-than 0s --to "$T/f.jsonl" --append --purge --chunk 3
expect_exit 0
expect_json "[d['total'], d['purged']]" "[$((10 + odd)), $((10 + odd))]"
expect_count 2
check "the appended file has both runs" test "$(wc -l <"$T/f.jsonl")" -eq $((20 + 2 * odd))
run --json restore --dry-run "$T/f.jsonl"
expect_exit 0
expect_json "[d['read'], d['inserted']]" "[$((20 + 2 * odd)), 0]"
expect_count 2
run --json restore "$T/f.jsonl"
expect_exit 0
expect_json "[d['read'], d['inserted'], d['skipped'], d['truncated']]" "[$((20 + 2 * odd)), $((10 + odd)), $((10 + odd)), false]"
expect_unchanged "$T/full.json"
sql "SELECT id, parameters FROM \"$TABLE\" ORDER BY id" >"$T/params.after"
check "restored parameters keep every digit and character" cmp -s "$T/params.before" "$T/params.after"
run restore "$T/f.jsonl"
expect_exit 0
expect_stdout_contains "restored 0 of $((20 + 2 * odd)) events"
next=$(emit_id after.restore)
check "new ids come after the restored ones" test "$next" -gt "$(tail -1 "$T/params.after" | cut -d'|' -f1)"
run purge --older-than 0s --type after.restore --state pending
expect_exit 0

# ---- gzip --------------------------------------------------------------------
run --json archive --older-than 0s --to "$T/g.jsonl.gz" --purge --chunk 4
expect_exit 0
expect_json "d['total']" $((10 + odd))
check "the .gz archive is valid gzip" gzip -t "$T/g.jsonl.gz"
check "zcat reads every event" test "$(gzip -dc "$T/g.jsonl.gz" | wc -l)" -eq $((10 + odd))
run restore "$T/g.jsonl.gz"
expect_exit 0
expect_unchanged "$T/full.json"
# bytes a crash left after the last whole chunk: read past, then cut off
cp "$T/g.jsonl.gz" "$T/z.jsonl.gz"
printf '\0\0\0\0\0\0\0\0' >>"$T/z.jsonl.gz"
run --json restore "$T/z.jsonl.gz"
expect_exit 0
expect_json "[d['read'], d['truncated']]" "[$((10 + odd)), true]"
run archive --older-than 0s --to "$T/z.jsonl.gz" --append --type nothing.here
expect_exit 0
check "--append cut the junk off" cmp -s "$T/z.jsonl.gz" "$T/g.jsonl.gz"

# ---- bad archives: nothing is written -----------------------------------------
run purge --older-than 0s --state done,dead
snapshot "$T/empty.json"
head -3 "$T/f.copy" >"$T/bad.jsonl"
echo '{"id": 99, "type": "x"}' >>"$T/bad.jsonl"
run restore "$T/bad.jsonl"
expect_exit 2
expect_one_error_line
expect_stderr_contains "line 4: date is missing"
expect_unchanged "$T/empty.json"
printf 'not json\n' >"$T/bad2.jsonl"
run restore "$T/bad2.jsonl"
expect_exit 2
expect_stderr_contains "line 1: not a JSON object"
run restore "$T/missing.jsonl"
expect_exit 1
expect_one_error_line
expect_unchanged "$T/empty.json"
# A file cut in the middle of its last chunk: the complete lines are
# restored, the rest ignored with a warning.
head -c $(( $(stat -c %s "$T/f.copy") - 20 )) "$T/f.copy" >"$T/cut.jsonl"
run --json restore "$T/cut.jsonl"
expect_exit 0
expect_json "[d['read'], d['truncated']]" "[$((9 + odd)), true]"
expect_stderr_contains "interrupted chunk"

# ---- archive to a table ---------------------------------------------------------
run restore "$T/f.copy"
run --json archive --older-than 0s --to-table "${TABLE}_arch" --chunk 4
expect_exit 0
expect_json "d['total']" $((10 + odd))
expect_count $((10 + odd)) --state done,dead
# changed since that copy: the purging run's copy must be the newer row
evf requeue --type p.q >/dev/null
evf mark-processed --type p.q >/dev/null
run --json archive --older-than 0s --to-table "${TABLE}_arch" --purge --chunk 4
expect_exit 0
expect_json "[d['total'], d['purged']]" "[$((10 + odd)), $((10 + odd))]"
expect_count 0 --state done,dead
check "the archive table holds each event once" \
	test "$(sql "SELECT count(*), count(DISTINCT id) FROM \"${TABLE}_arch\"")" = "$((10 + odd))|$((10 + odd))"
check "the archive table has the rows as they were when purged" \
	test "$(sql "SELECT count(*) FROM \"${TABLE}_arch\" WHERE type = 'p.q' AND attempts = 0")" = 2
check "the archive table keeps the parameters" \
	test "$(sql "SELECT count(*) FROM \"${TABLE}_arch\" WHERE parameters IS NOT NULL AND correlation_id IS NULL")" = $((9 + odd))

# ---- interruption ------------------------------------------------------------------
# Many events, one per chunk, so that the job is still running when it is
# stopped; every event must end up in the table or in the file.
run purge --older-than 0s --state scheduled
expect_count 0
i=0
while [ $i -lt 2000 ]; do echo '{"type":"m.n"}'; i=$((i + 1)); done >"$T/many"
run_in "$T/many" emit --stdin
run mark-processed --type m.n
all=$(table_ids)

# stop_when_growing FILE PID SIGNAL: send SIGNAL once FILE has data.
stop_when_growing() {
	_n=0
	while [ ! -s "$1" ] && [ $_n -lt 1000 ]; do sleep 0.01; _n=$((_n + 1)); done
	kill -s "$3" "$2" 2>/dev/null
	wait "$2"
	status=$?
}

for sig in INT KILL; do
	for ext in jsonl jsonl.gz; do
		f="$T/stop-$sig.$ext"
		last="archive --purge --chunk 1 to .$ext, SIG$sig mid-way"
		"$EVFCTL" --table "$TABLE" archive --older-than 0s --to "$f" --purge --chunk 1 \
			>"$T/out" 2>"$T/err" &
		stop_when_growing "$f" $! $sig
		if [ $sig = INT ]; then
			expect_exit 1
			expect_stderr_contains "interrupted after"
		else
			expect_exit 137
		fi
		left=$(table_ids)
		check "SIG$sig left work to do ($ext)" test -n "$left"
		check "SIG$sig: every event is in the table or the file ($ext)" \
			test "$(echo $left $(ids_in "$f") | tr ' ' '\n' | sort -un | tr '\n' ' ')" = "$all "
		run archive --older-than 0s --to "$f" --append --purge --chunk 200
		expect_exit 0
		expect_count 0
		got=$(ids_in "$f")
		check "SIG$sig: the file holds every event ($ext)" \
			test "$(echo $got | tr ' ' '\n' | sort -un | tr '\n' ' ')" = "$all "
		check "SIG$sig: at most the chunk in flight twice ($ext)" \
			test $(echo $got | wc -w) -le 2001
		[ "$ext" = jsonl ] || check "SIG$sig: the repaired .gz is valid" gzip -t "$f"
		run restore "$f"
		expect_exit 0
		check "SIG$sig: restore brings all 2000 back ($ext)" test "$(table_ids)" = "$all"
	done
done
# one archive job per file: a second one on the same file is refused
f="$T/locked.jsonl"
"$EVFCTL" --table "$TABLE" archive --older-than 0s --to "$f" --purge --chunk 1 \
	>"$T/first.out" 2>&1 &
first=$!
n=0
while [ ! -s "$f" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done
run archive --older-than 0s --to "$f" --append --purge
expect_exit 1
expect_one_error_line
expect_stderr_contains "being written by another archive job"
kill -INT $first
wait $first
run restore "$f"
expect_exit 0
check "the refused job lost nothing" test "$(table_ids)" = "$all"
# enough one-row chunks that the purge is still going when a poll of the
# count (a process start each, slow on a loaded machine) sees it begun
rows=20000
i=0
while [ $i -lt $rows ]; do echo '{"type":"k.p"}'; i=$((i + 1)); done >"$T/more"
run_in "$T/more" emit --stdin
run mark-processed --type k.p
last="purge --chunk 1, SIGKILL once it has begun"
"$EVFCTL" --table "$TABLE" purge --older-than 0s --chunk 1 >"$T/out" 2>"$T/err" &
pid=$!
n=0
while [ "$(sql "SELECT count(*) FROM \"$TABLE\"")" -ge $rows ] && [ $n -lt 500 ]; do
	sleep 0.01
	n=$((n + 1))
done
kill -9 $pid 2>/dev/null
wait $pid
status=$?
expect_exit 137
left=$(sql "SELECT count(*) FROM \"$TABLE\"")
check "purge stopped part way ($left left)" test "$left" -gt 0 -a "$left" -lt $rows
run purge --older-than 0s
expect_exit 0
expect_count 0

# ---- maintain: what the purges left behind --------------------------------------
if [ "$BACKEND" = pg ]; then
	sql "SELECT pg_stat_reset_single_table_counters('\"$TABLE\"'::regclass)" >/dev/null
	run --json maintain
	expect_exit 0
	expect_json "d['table']" "$TABLE"
	check "the table was vacuumed and analysed" test "$(sql "SELECT vacuum_count > 0 AND analyze_count > 0 FROM pg_stat_user_tables WHERE relname = '$TABLE'")" = t
else
	# a long-running connection (a worker's) keeps the log from being
	# truncated when the others close
	python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
c.execute("SELECT count(*) FROM evf_event").fetchone()
open(sys.argv[2], "w").close()
time.sleep(30)' "$DB" "$T/holding" &
	holder=$!
	n=0
	while [ ! -e "$T/holding" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	run emit t
	run purge --older-than 0s --state pending
	check "the write-ahead log stays while a connection is open" test -s "$DB-wal"
	run maintain
	expect_exit 0
	expect_stdout_contains "maintained $TABLE in"
	check "maintain truncated the write-ahead log" test -e "$DB-wal" -a ! -s "$DB-wal"
	kill $holder 2>/dev/null
	wait $holder 2>/dev/null
fi
run maintain extra
expect_exit 2

finish
