# Helpers shared by the stress tests; sourced (POSIX sh), never run.
# make check sets EVFCTL to the built evfctl.  Exit 77 means "skipped".

if [ -z "${EVFCTL:-}" ] || [ ! -x "$EVFCTL" ]; then
	echo "FAIL: EVFCTL must name the built evfctl (make check sets it)" >&2
	exit 1
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
note() { echo "# $*"; }

# The JSON that evfctl prints is read with python3.
command -v python3 >/dev/null 2>&1 || skip "python3 is needed to read evfctl --json output"

# A fresh directory and database for this test, removed on exit (kept when
# EVF_KEEP_TMP=1, for a post-mortem).  Background pids listed in
# $STRESS_PIDS are killed on exit so that a failing test leaves nothing
# running.
#
# EVF_STRESS_BACKEND=pg runs the same test on PostgreSQL ($EVF_TEST_PG_URL,
# a table of its own); without a server it is skipped, unless
# EVF_TEST_REQUIRE_PG is set (CI), which makes that a failure.
STRESS_PIDS=
TABLE=evf_event
stress_setup() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/evf-stress.XXXXXX") || fail "mktemp -d failed"
	trap 'stress_cleanup' EXIT
	trap 'exit 1' INT TERM HUP
	if [ "${EVF_STRESS_BACKEND:-sqlite}" = pg ]; then
		if [ -z "${EVF_TEST_PG_URL:-}" ]; then
			[ -z "${EVF_TEST_REQUIRE_PG:-}" ] || fail "EVF_TEST_REQUIRE_PG is set but EVF_TEST_PG_URL is not"
			skip "set EVF_TEST_PG_URL to run this test on PostgreSQL"
		fi
		DB=$EVF_TEST_PG_URL
		TABLE="evf_stress_$$"
	else
		DB="$WORK/evf.db"
	fi
	evf init >/dev/null || fail "evfctl init failed"
}
stress_cleanup() {
	for pid in $STRESS_PIDS; do
		kill -KILL "$pid" 2>/dev/null
	done
	if [ "${EVF_KEEP_TMP:-}" = 1 ]; then
		echo "# kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}

evf() { "$EVFCTL" --db "$DB" --table "$TABLE" "$@"; }

# emit_many N TYPE: emit N events of TYPE in one `emit --stdin` transaction.
emit_many() {
	awk -v n="$1" -v t="$2" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "{\"type\":\"%s\",\"parameters\":{\"n\":%d}}\n", t, i
	}' | evf emit --stdin >/dev/null || fail "emit --stdin of $1 events failed"
}

# read_stats: set STATS to "pending=N scheduled=N ... done=N" from
# `stats --json`, every state present, in a fixed order.
read_stats() {
	STATS=$(evf --json stats | python3 -c '
import json, sys
states = json.load(sys.stdin)["states"]
order = ["pending", "scheduled", "running", "failed", "stuck", "dead", "done"]
missing = [s for s in order if s not in states]
if missing:
    sys.exit("stats --json lacks states: " + ", ".join(missing))
print(" ".join("%s=%d" % (s, states[s]) for s in order))
') || fail "cannot read evfctl --json stats"
}

# count_of STATE: that state's count in $STATS (run read_stats first).
count_of() {
	for kv in $STATS; do
		case $kv in "$1="*) echo "${kv#*=}"; return 0 ;; esac
	done
	echo "no state $1 in: $STATS" >&2
	return 1
}

# ids_to FILE [LIST OPTIONS...]: write the ids of the matching events to
# FILE, one per line, sorted as text (ready for comm).
ids_to() {
	out=$1
	shift
	evf --json list --limit 0 "$@" >"$WORK/list.json" ||
		fail "evfctl --json list $* failed"
	python3 -c '
import json, sys
for ev in json.load(sys.stdin):
    print(ev["id"])
' <"$WORK/list.json" >"$out.unsorted" || fail "cannot read evfctl --json list $*"
	sort "$out.unsorted" >"$out" && rm -f "$out.unsorted" "$WORK/list.json"
}

# line_count FILE: lines in FILE, 0 when it does not exist yet.
line_count() {
	if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}
