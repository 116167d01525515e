# lib.sh - helpers for the evfctl tests; source it from a test script.
#
# Each script gets a fresh temporary directory ($T, removed on exit) and a
# fresh database: a SQLite file ($DB, also in $EVF_DATABASE_URL) with the
# default table, or with EVF_CLI_BACKEND=pg the PostgreSQL server of
# $EVF_TEST_PG_URL with a table of the script's own ($TABLE, dropped on
# exit).  Without EVF_TEST_PG_URL a pg run is skipped (exit 77), unless
# EVF_TEST_REQUIRE_PG is set, which makes that a failure.  Every evfctl
# call goes through `evf`, which names $TABLE.  `run` runs evfctl and keeps
# its exit status in $status and its output in $T/out and $T/err; the
# expect_* helpers count passes and failures, and `finish` prints
# "N passed, N failed" and exits 1 when anything failed.

set -u

if [ -z "${EVFCTL:-}" ] || [ ! -x "$EVFCTL" ]; then
	echo "EVFCTL must name the built evfctl (run the tests with make check)" >&2
	exit 99
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "python3 is needed to read the JSON output" >&2
	exit 99
fi
# The interpreter itself rather than a version manager's shim in front of
# it (pyenv's costs a second a call, and these scripts make hundreds).
PYTHON3=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -n "$PYTHON3" ] && [ -x "$PYTHON3" ] || PYTHON3=$(command -v python3)
python3() {
	"$PYTHON3" "$@"
}

BACKEND=${EVF_CLI_BACKEND:-sqlite}
case $BACKEND in
sqlite) ;;
pg)
	if [ -z "${EVF_TEST_PG_URL:-}" ]; then
		if [ -n "${EVF_TEST_REQUIRE_PG:-}" ]; then
			echo "EVF_TEST_REQUIRE_PG is set but EVF_TEST_PG_URL is not" >&2
			exit 1
		fi
		echo "set EVF_TEST_PG_URL to run this test on PostgreSQL" >&2
		exit 77
	fi
	;;
*)
	echo "EVF_CLI_BACKEND must be sqlite or pg, not '$BACKEND'" >&2
	exit 99
	;;
esac

T=$(mktemp -d "${TMPDIR:-/tmp}/evfctl-test.XXXXXX") || exit 99
trap 'cli_cleanup' EXIT
trap 'exit 1' HUP INT TERM

if [ "$BACKEND" = pg ]; then
	DB=$EVF_TEST_PG_URL
	TABLE="evf_cli_$$"
else
	DB="$T/evf.db"
	TABLE=evf_event
fi
EVF_DATABASE_URL="$DB"
export EVF_DATABASE_URL
# The settings of whoever runs the tests (./evf.conf, ~/.config/evf,
# /etc/evf) stay out of them: an empty file of our own.
: >"$T/empty.conf"
EVF_CONFIG="$T/empty.conf"
export EVF_CONFIG
PLUGIN="${EVF_TEST_BUILDDIR:-.}/tests/cli/.libs/testplugin.so"

# psql_q SQL...: run statements on the test server (pg only); quiet, and
# false when psql is missing or a statement fails.
psql_q() {
	command -v psql >/dev/null 2>&1 || return 1
	for _sql in "$@"; do
		psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "$_sql" >/dev/null 2>&1 || return 1
	done
}

# sql_ago N: the time N seconds ago as an SQL literal, in the form the
# tables evf makes hold it (SQLite: integer microseconds since 1970,
# PostgreSQL: timestamptz).
sql_ago() {
	if [ "$BACKEND" = pg ]; then
		date -u -d "-$1 sec" "+'%Y-%m-%d %H:%M:%S.000000+00'"
	else
		echo $((($(date +%s) - $1) * 1000000))
	fi
}

# sql STATEMENT: run it on the test database outside evfctl (psql, or
# Python's sqlite3) and print the rows, one per line, columns separated by
# '|'.
sql() {
	if [ "$BACKEND" = pg ]; then
		psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1"
	else
		python3 - "$DB" "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for row in c.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
c.commit()
EOF
	fi
}

# kill_tree PID: a process and its descendants (a worker and the handler
# it runs), with SIGKILL, as a crash would.  The process goes first, so it
# cannot record its handler's death; its descendants, found before, next.
descendants() {
	for _c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$_c"
		descendants "$_c"
	done
}
kill_tree() {
	_tree=$(descendants "$1")
	kill -9 "$1" 2>/dev/null
	for _c in $_tree; do
		kill -9 "$_c" 2>/dev/null
	done
}

# drop_pg_table NAME: the table and its evf_schema row, so that a later
# script with the same pid starts clean.
drop_pg_table() {
	psql_q "DROP TABLE IF EXISTS \"$1\"" || return 1
	psql_q "DELETE FROM evf_schema WHERE table_name = '$1'" 2>/dev/null
	psql_q "DELETE FROM evf_rate WHERE table_name = '$1'" 2>/dev/null
	return 0
}

cli_cleanup() {
	if [ "$BACKEND" = pg ]; then
		for _t in $TABLE ${EXTRA_TABLES:-}; do
			drop_pg_table "$_t"
		done
	fi
	rm -rf "$T"
}
if [ "$BACKEND" = pg ]; then
	drop_pg_table "$TABLE"
fi

# evf ARGS...: evfctl on this script's table (a later --table wins).
evf() {
	"$EVFCTL" --table "$TABLE" "$@"
}

passed=0
failed=0
status=0
last=""

# run ARGS...: evfctl with stdin from /dev/null.
run() {
	last="evfctl $*"
	evf "$@" <"/dev/null" >"$T/out" 2>"$T/err"
	status=$?
}

# run_in FILE ARGS...: evfctl with stdin from FILE.
run_in() {
	_in=$1
	shift
	last="evfctl $* < $(basename "$_in")"
	evf "$@" <"$_in" >"$T/out" 2>"$T/err"
	status=$?
}

pass() {
	passed=$((passed + 1))
	echo "ok $((passed + failed)) - $1"
}

fail() {
	failed=$((failed + 1))
	echo "not ok $((passed + failed)) - $1"
	echo "# command: $last (exit $status)"
	sed 's/^/# stdout: /' "$T/out" 2>/dev/null | head -20
	sed 's/^/# stderr: /' "$T/err" 2>/dev/null | head -20
}

# check DESCRIPTION COMMAND...: pass when COMMAND succeeds.
check() {
	_desc=$1
	shift
	if "$@"; then pass "$_desc"; else fail "$_desc"; fi
}

expect_exit() {
	if [ "$status" -eq "$1" ]; then
		pass "$last: exit $1"
	else
		fail "$last: exit $1 expected, got $status"
	fi
}

expect_stdout_contains() {
	if grep -qF -- "$1" "$T/out"; then
		pass "$last: stdout has '$1'"
	else
		fail "$last: stdout lacks '$1'"
	fi
}

expect_stdout_lacks() {
	if grep -qF -- "$1" "$T/out"; then
		fail "$last: stdout has '$1'"
	else
		pass "$last: stdout lacks '$1'"
	fi
}

expect_stderr_contains() {
	if grep -qF -- "$1" "$T/err"; then
		pass "$last: stderr has '$1'"
	else
		fail "$last: stderr lacks '$1'"
	fi
}

expect_stdout_equals() {
	if [ "$(cat "$T/out")" = "$1" ]; then
		pass "$last: stdout is '$1'"
	else
		fail "$last: stdout is not '$1'"
	fi
}

expect_stdout_empty() {
	if [ -s "$T/out" ]; then
		fail "$last: stdout not empty"
	else
		pass "$last: stdout empty"
	fi
}

expect_stderr_empty() {
	if [ -s "$T/err" ]; then
		fail "$last: stderr not empty"
	else
		pass "$last: stderr empty"
	fi
}

# The error contract: exactly one line on stderr, starting with "evfctl: ".
expect_one_error_line() {
	if [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q '^evfctl: ' "$T/err"; then
		pass "$last: one error line"
	else
		fail "$last: one error line expected on stderr"
	fi
}

# json EXPR [FILE]: print the Python expression EXPR evaluated with d = the
# JSON in FILE (default: the last stdout).  Strings print bare; True/False
# print as true/false, None as null.
json() {
	python3 - "$1" "${2:-$T/out}" <<'EOF'
import json, sys
with open(sys.argv[2]) as f:
    d = json.load(f)
v = eval(sys.argv[1], {"d": d, "len": len, "sorted": sorted})
print(json.dumps(v) if not isinstance(v, str) else v)
EOF
}

# expect_json EXPR EXPECTED: the last stdout is JSON and EXPR gives EXPECTED.
expect_json() {
	_got=$(json "$1" 2>/dev/null) || _got="(not JSON)"
	if [ "$_got" = "$2" ]; then
		pass "$last: $1 == $2"
	else
		fail "$last: $1 == $2 expected, got '$_got'"
	fi
}

# field ID NAME: one field of an event, through `evfctl --json show`.
field() {
	evf --json show "$1" >"$T/field.json" 2>/dev/null || { echo "(no event $1)"; return; }
	json "d.get('$2')" "$T/field.json"
}

# expect_field ID NAME EXPECTED
expect_field() {
	_got=$(field "$1" "$2")
	if [ "$_got" = "$3" ]; then
		pass "event $1: $2 is $3"
	else
		fail "event $1: $2 is $3 expected, got '$_got'"
	fi
}

# count_events [LIST OPTIONS...]: how many events `list` finds.
count_events() {
	evf --json list --limit 0 "$@" >"$T/count.json" 2>/dev/null || { echo "(list failed)"; return; }
	json "len(d)" "$T/count.json"
}

expect_count() {
	_want=$1
	shift
	_got=$(count_events "$@")
	if [ "$_got" = "$_want" ]; then
		pass "list $*: $_want events"
	else
		fail "list $*: $_want events expected, got '$_got'"
	fi
}

# snapshot FILE: the whole table, to compare before and after.
snapshot() {
	evf --json list --limit 0 >"$1" 2>&1
}

expect_unchanged() {
	snapshot "$T/after.json"
	if cmp -s "$1" "$T/after.json"; then
		pass "$last: database unchanged"
	else
		fail "$last: database changed"
	fi
}

# emit_id ARGS...: emit and print the new id.
emit_id() {
	evf --json emit "$@" </dev/null >"$T/emit.json" 2>"$T/emit.err" || {
		echo "emit $* failed: $(cat "$T/emit.err")" >&2
		echo 0
		return
	}
	json "d['id']" "$T/emit.json"
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] || exit 1
	exit 0
}
