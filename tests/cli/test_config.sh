#!/bin/sh
# evf.conf, the EVF_* variables and the options, as evfctl sees them:
# precedence (option > environment > file > default) shown by `evfctl
# config` and felt by the commands, the lookup order, broken files and
# variables, [handlers] run by a real worker, and log_level on its output.
# SQLite only: the settings do not depend on the backend.
EVF_CLI_BACKEND=sqlite
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

# No file of this machine or user: a home and a working directory of our own.
unset EVF_CONFIG XDG_CONFIG_HOME
HOME="$T/home"
export HOME
mkdir -p "$T/home" "$T/work"
cd "$T/work" || exit 99

evf init >/dev/null || exit 99

# runx ARGS...: evfctl without the --table of `run`.
runx() {
	last="evfctl $*"
	"$EVFCTL" "$@" <"/dev/null" >"$T/out" 2>"$T/err"
	status=$?
}

# setting NAME [EVFCTL OPTIONS...]: "value source" of one setting, from
# `evfctl config --json`.
setting() {
	_name=$1
	shift
	"$EVFCTL" "$@" config --json </dev/null >"$T/cfg.json" 2>"$T/cfg.err" || {
		echo "(config failed: $(cat "$T/cfg.err"))"
		return
	}
	json "[x['value'] + ' ' + x['source'] for x in d['settings'] if x['name'] == '$_name'][0]" \
		"$T/cfg.json"
}

expect_setting() {
	_want="$2"
	_n=$1
	shift 2
	_got=$(setting "$_n" "$@")
	if [ "$_got" = "$_want" ]; then
		pass "setting $_n is '$_want'"
	else
		fail "setting $_n is '$_want' expected, got '$_got'"
	fi
}

# ---- defaults, and every key on a line of its own ------------------------
runx config
expect_exit 0
check "config: 29 keys when there is no file" test "$(wc -l <"$T/out")" -eq 29
expect_stdout_contains "evf.table"
check "config: default table and its source, aligned" \
	grep -Eq '^evf\.table +evf_event +default$' "$T/out"
check "config: the database from EVF_DATABASE_URL" \
	grep -Eq "^evf\\.database +$DB +env EVF_DATABASE_URL\$" "$T/out"
check "config: an unset key" grep -Eq '^metrics\.statsd +\(unset\) +default$' "$T/out"
runx --json config
expect_exit 0
expect_json "d['file']" null
expect_json "len(d['settings'])" 29
expect_json "[x for x in d['settings'] if x['name'] == 'health.idle_queue'][0]" \
	'{"name": "health.idle_queue", "value": "5m", "source": "default", "env": "EVF_HEALTH_IDLE_QUEUE"}'
expect_json "[x['value'] for x in d['settings'] if x['name'] == 'evf.worker_name'][0]" null
runx config --json
expect_exit 0
expect_json "len(d['settings'])" 29
runx config extra
expect_exit 2
expect_stderr_contains "unexpected argument 'extra'"

# ---- file < environment < option ----------------------------------------
cat >"$T/a.conf" <<EOF
# settings of the test
[evf]
table = t_file
batch_size = 50
max_attempts = 2

[health]
window = 1h30m
EOF
expect_setting evf.table "t_file file:$T/a.conf:3" --config "$T/a.conf"
expect_setting evf.batch_size "50 file:$T/a.conf:4" --config "$T/a.conf"
expect_setting health.window "1h30m file:$T/a.conf:8" --config "$T/a.conf"
EVF_TABLE=t_env EVF_BATCH_SIZE=70 expect_setting evf.table "t_env env EVF_TABLE" --config "$T/a.conf"
EVF_TABLE=t_env expect_setting evf.table "t_flag --table" --config "$T/a.conf" --table t_flag
EVF_BATCH_SIZE=70 expect_setting evf.batch_size "70 env EVF_BATCH_SIZE" --config "$T/a.conf"
EVF_CONFIG="$T/a.conf" expect_setting evf.table "t_file file:$T/a.conf:3"
expect_setting evf.database "$T/other.db --db" --db "$T/other.db"
runx --config "$T/a.conf" --json config
expect_json "d['file']" "$T/a.conf"

# ... and the commands feel it: each source picks a different table.
for t in t_file t_env t_flag; do
	"$EVFCTL" --table $t init >/dev/null 2>&1 || fail "init $t"
done
runx --config "$T/a.conf" emit from.file
expect_exit 0
EVF_TABLE=t_env runx --config "$T/a.conf" emit from.env
expect_exit 0
EVF_TABLE=t_env runx --config "$T/a.conf" --table t_flag emit from.flag
expect_exit 0
check "the file's table got the file's event" \
	sh -c "'$EVFCTL' --table t_file list | grep -q from.file"
check "the variable's table got the variable's event" \
	sh -c "'$EVFCTL' --table t_env list | grep -q from.env"
check "the option's table got the option's event" \
	sh -c "'$EVFCTL' --table t_flag list | grep -q from.flag"
check "nothing went to the default table" test "$(count_events)" = 0

# max_attempts is the limit of new events.
runx --config "$T/a.conf" --table evf_event --json emit m.file
id=$(json "d['id']")
expect_field "$id" max_attempts 2
EVF_MAX_ATTEMPTS=4 runx --config "$T/a.conf" --table evf_event --json emit m.env
id=$(json "d['id']")
expect_field "$id" max_attempts 4
evf mark-processed --all >/dev/null

# ---- passwords never show -----------------------------------------------
cat >"$T/pw.conf" <<'EOF'
[evf]
database = "postgresql://app:hunter2@db.example/app"
EOF
# (the variable would win over the file: empty, it counts as unset)
EVF_DATABASE_URL="" runx --config "$T/pw.conf" config
expect_exit 0
expect_stdout_contains "postgresql://app:***@db.example/app"
expect_stdout_lacks "hunter2"
EVF_DATABASE_URL="" runx --config "$T/pw.conf" --json config
expect_json "[x['value'] for x in d['settings'] if x['name'] == 'evf.database'][0]" \
	"postgresql://app:***@db.example/app"
expect_stdout_lacks "hunter2"
EVF_DATABASE_URL="host=/tmp dbname=x password=hunter2" runx config
expect_stdout_contains "password=***"
expect_stdout_lacks "hunter2"

# ---- the lookup order ---------------------------------------------------
mkdir -p "$T/home/.config/evf" "$T/xdg/evf"
printf '[evf]\nbatch_size = 3\n' >"$T/home/.config/evf/evf.conf"
expect_setting evf.batch_size "3 file:$T/home/.config/evf/evf.conf:2"
printf '[evf]\nbatch_size = 2\n' >"$T/xdg/evf/evf.conf"
XDG_CONFIG_HOME="$T/xdg" expect_setting evf.batch_size "2 file:$T/xdg/evf/evf.conf:2"
printf '[evf]\n\nbatch_size = 1\n' >"$T/work/evf.conf"
XDG_CONFIG_HOME="$T/xdg" expect_setting evf.batch_size "1 file:./evf.conf:3"
runx --json config
expect_json "d['file']" "./evf.conf"
# an explicit file wins over ./evf.conf
expect_setting evf.batch_size "50 file:$T/a.conf:4" --config "$T/a.conf"
rm -f "$T/work/evf.conf" "$T/xdg/evf/evf.conf" "$T/home/.config/evf/evf.conf"

# ---- missing and broken files fail every command but help ----------------
EVF_CONFIG="$T/nope.conf" runx stats
expect_exit 2
expect_one_error_line
expect_stderr_contains "evfctl: cannot open the config file '$T/nope.conf' named by EVF_CONFIG"
runx --config "$T/nope.conf" config
expect_exit 2
expect_stderr_contains "cannot open the config file '$T/nope.conf'"
EVF_CONFIG="" runx config
expect_exit 0

cat >"$T/bad.conf" <<'EOF'
[evf]
table = evf_event

batchsize = 3
EOF
snapshot "$T/before.json"
for cmd in list stats config "emit x" "process --once --exec x=true" "requeue --all"; do
	# shellcheck disable=SC2086 # the words of $cmd are its arguments
	runx --config "$T/bad.conf" $cmd
	expect_exit 2
	expect_one_error_line
	expect_stderr_contains "evfctl: $T/bad.conf:4: unknown key 'batchsize' in [evf]"
done
expect_unchanged "$T/before.json"
printf '[evf]\n[queue]\n' >"$T/bad2.conf"
runx --config "$T/bad2.conf" list
expect_exit 2
expect_stderr_contains "$T/bad2.conf:2: unknown section [queue]"
printf '[evf]\nlock_timeout = 5 minutes\n' >"$T/bad3.conf"
runx --config "$T/bad3.conf" list
expect_exit 2
expect_stderr_contains "$T/bad3.conf:2: bad duration for lock_timeout in [evf]: '5 minutes'"
for help in --help --version "help" "help list" "list --help" "process -h"; do
	# shellcheck disable=SC2086
	runx --config "$T/bad.conf" $help
	expect_exit 0
	expect_stderr_empty
done

# bad variables name themselves
EVF_LISTEN=maybe runx list
expect_exit 2
expect_one_error_line
expect_stderr_contains "bad boolean for EVF_LISTEN: 'maybe'"
EVF_METRICS_STATSD=localhost runx list
expect_exit 2
expect_stderr_contains "bad address for EVF_METRICS_STATSD: 'localhost'"
EVF_HEALTH_FAILURE_RATIO_WARNING=0.9 runx list
expect_exit 2
expect_stderr_contains "health.failure_ratio_warning = 0.9 (env EVF_HEALTH_FAILURE_RATIO_WARNING) must not be above"
# and bad options name the option
runx process --once --exec x=true --batch-size 0
expect_exit 2
expect_stderr_contains "bad number for --batch-size: '0' (must be from 1 to 10000)"
runx --table "no good" list
expect_exit 2
expect_stderr_contains "bad table name for --table"

# ---- [handlers] run by a real worker --------------------------------------
cat >"$T/h.conf" <<EOF
[evf]
worker_name = from-file
exec_timeout = 300ms

[handlers]
x.ok = cat >/dev/null; echo "\$EVF_EVENT_ID" >>'$T/ran'
x.slow = sleep 5
EOF
ok=$(emit_id x.ok)
slow=$(emit_id x.slow)
run --config "$T/h.conf" process --once
expect_exit 0
expect_stdout_equals "processed 1, failed 1 (retrying 1, dead 0), skipped 0"
check "the file's handler ran the event" test "$(cat "$T/ran" 2>/dev/null)" = "$ok"
expect_field "$ok" state done
expect_field "$slow" state failed
check "exec_timeout of the file killed the slow handler" \
	sh -c "'$EVFCTL' --json show $slow | grep -q 'timed out'"
expect_stderr_contains "worker=from-file:"
evf mark-processed "$slow" >/dev/null

# --exec replaces [handlers] entirely: x.ok is not claimed any more.
ok2=$(emit_id x.ok)
y=$(emit_id y)
run --config "$T/h.conf" process --once --exec 'y=cat >/dev/null' --name from-flag
expect_exit 0
expect_stdout_equals "processed 1, failed 0 (retrying 0, dead 0), skipped 0"
expect_field "$y" state done
expect_field "$ok2" state pending
check "x.ok did not run again" test "$(wc -l <"$T/ran")" -eq 1
expect_stderr_contains "worker=from-flag:"
evf mark-processed "$ok2" >/dev/null

# no handler anywhere is still a usage error
run process --once
expect_exit 2
expect_stderr_contains "no handler: give --exec TYPE=COMMAND or --plugin FILE.so, or TYPE = COMMAND under [handlers] in evf.conf"

# ---- log_level filters the worker's lines ----------------------------------
cat >"$T/l.conf" <<'EOF'
[handlers]
l.ok = cat >/dev/null
l.retry = exit 75
l.dead = exit 65
EOF
# work_levels LEVEL [GLOBAL OPTIONS...]: one of each outcome, processed.
work_levels() {
	_level=$1
	shift
	emit_id l.ok >/dev/null
	emit_id l.retry >/dev/null
	emit_id l.dead >/dev/null
	EVF_LOG_LEVEL=$_level run --config "$T/l.conf" "$@" process --once
	evf mark-processed --all >/dev/null
}
lines() {
	grep -c "$1" "$T/err"
}
work_levels info
expect_stdout_equals "processed 1, failed 2 (retrying 1, dead 1), skipped 0"
check "info: three lines" test "$(wc -l <"$T/err")" -eq 3
check "info: the processed line" test "$(lines 'level=info msg=processed')" -eq 1
work_levels warning
check "warning: two lines" test "$(wc -l <"$T/err")" -eq 2
check "warning: the retry" test "$(lines 'level=warn msg=retry')" -eq 1
check "warning: the dead letter" test "$(lines 'level=error msg=dead')" -eq 1
work_levels error
check "error: one line" test "$(wc -l <"$T/err")" -eq 1
check "error: the dead letter" test "$(lines 'level=error msg=dead')" -eq 1
work_levels warning --log-format json
check "warning, JSON: two lines" test "$(wc -l <"$T/err")" -eq 2
check "warning, JSON: no info" test "$(lines '"level":"info"')" -eq 0
check "warning, JSON: the retry" test "$(lines '"level":"warn"')" -eq 1
# the file says it as well as the variable
printf '[evf]\nlog_level = error\n[handlers]\nl.ok = cat >/dev/null\nl.retry = exit 75\nl.dead = exit 65\n' >"$T/l.conf"
emit_id l.ok >/dev/null
emit_id l.dead >/dev/null
run --config "$T/l.conf" process --once
check "log_level = error in the file: one line" test "$(wc -l <"$T/err")" -eq 1
expect_stderr_contains "msg=dead"

# [health] and [metrics] reach evfctl health and the worker; flags still win.
printf '[health]\nstuck_warning = 3\nstuck_critical = 7\nwindow = 2h\n[metrics]\ntextfile = %s\n' \
	"$T/w.prom" >"$T/hm.conf"
run --config "$T/hm.conf" --json health
expect_json "[(c['warning'], c['critical']) for c in d['checks'] if c['name'] == 'stuck']" "[[3, 7]]"
run --config "$T/hm.conf" --json health --stuck-critical 9
expect_json "[(c['warning'], c['critical']) for c in d['checks'] if c['name'] == 'stuck']" "[[3, 9]]"
run --config "$T/hm.conf" process --once --exec 'l.ok=cat >/dev/null'
expect_exit 0
check "metrics.textfile of the file: the worker writes it" grep -q '^# TYPE evf_worker_processed_total' "$T/w.prom"
run --config "$T/hm.conf" process --once --exec 'l.ok=true' --metrics-textfile "$T/w2.prom"
check "--metrics-textfile wins over the file" test -s "$T/w2.prom"
EVF_METRICS_STATSD=nocolon run --config "$T/hm.conf" health
expect_exit 2
expect_stderr_contains "EVF_METRICS_STATSD"

finish
