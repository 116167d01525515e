#!/bin/sh
# test_tui_pg.sh - evf-top on PostgreSQL when the server goes away: while
# the server restarts (pg_ctl restart -m fast) evf-top keeps running and
# says so in the status line; afterwards it reconnects by itself and shows
# new counts.
#
# The server restarted is a throwaway one of this test's own (from
# tests/pg/throwaway.sh, a few seconds to make), so that other PostgreSQL
# tests running alongside under make -j do not lose their sessions.  It
# runs where throwaway servers can be made, which $EVF_PG_DIR (exported by
# ./quickstart check) says; without it the test is skipped, unless
# EVF_TEST_REQUIRE_PG is set.  Needs tmux.
# Exit 0 pass, 1 fail, 77 skip.

if ! command -v tmux >/dev/null 2>&1; then
	echo "test_tui_pg: tmux not found, skipping"
	exit 77
fi
if [ -z "${EVF_PG_DIR:-}" ]; then
	if [ -n "${EVF_TEST_REQUIRE_PG:-}" ]; then
		echo "test_tui_pg: EVF_TEST_REQUIRE_PG is set but EVF_PG_DIR (a throwaway server) is not" >&2
		exit 1
	fi
	echo "test_tui_pg: needs EVF_PG_DIR, a throwaway server from tests/pg/throwaway.sh; skipping"
	exit 77
fi
srcdir=${EVF_TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$srcdir/tests/cli/lib.sh"

TOP=${EVF_TOP:-${EVF_TEST_BUILDDIR:-.}/tui/evf-top}
if [ ! -x "$TOP" ]; then
	echo "test_tui_pg: $TOP is not built" >&2
	exit 99
fi

SOCK="evftest-pg-$$"
PG_DIR=
# throwaway ARGS...: tests/pg/throwaway.sh on this test's own server.
throwaway() {
	env -u EVF_PG_DIR ${PG_DIR:+"EVF_PG_DIR=$PG_DIR"} EVF_PG_POINTER="$T/pg.pointer" \
		bash "$srcdir/tests/pg/throwaway.sh" "$@"
}
trap 'tmux -L "$SOCK" kill-server 2>/dev/null; [ -z "$PG_DIR" ] || throwaway stop >/dev/null 2>&1; cli_cleanup' EXIT

if ! throwaway start >"$T/pg.env" 2>"$T/pg.err"; then
	echo "test_tui_pg: cannot start a throwaway PostgreSQL server:" >&2
	cat "$T/pg.err" >&2
	exit 1
fi
PG_DIR=$(sed -n 's/^EVF_PG_DIR=//p' "$T/pg.env")
DB=$(sed -n 's/^EVF_TEST_PG_URL=//p' "$T/pg.env")
EVF_DATABASE_URL=$DB
export EVF_DATABASE_URL

# The helpers below are those of test_tui.sh, cut down to what this needs.

# start ARGS...: evf-top in a fresh 100x30 tmux server.  The window keeps
# "EXITED status" on screen after evf-top ends.
start() {
	cat >"$T/run.sh" <<'SCRIPT'
sh -c 'echo $$ >"$0.pid"; exec "$@"' "$0" "$@"
echo "EXITED $?"
sleep 600
SCRIPT
	last="evf-top $*"
	tmux -L "$SOCK" new-session -d -x 100 -y 30 sh "$T/run.sh" \
		env LANG=C.UTF-8 LC_ALL=C.UTF-8 "$@"
}

screen() {
	tmux -L "$SOCK" capture-pane -p
}

# wait_line N REGEX [SECONDS]: poll until screen line N matches REGEX.
wait_line() {
	_i=0
	_limit=$((${3:-10} * 10))
	while [ "$_i" -lt "$_limit" ]; do
		if screen | sed -n "$1p" | grep -Eq -- "$2"; then
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	screen >"$T/screen"
	return 1
}

see_line() {
	if wait_line "$@"; then
		pass "line $1 matches '$2'"
	else
		fail "line $1 matches '$2'"
		sed 's/^/# screen: /' "$T/screen"
	fi
}

# running: evf-top's process is alive (it wrote its pid on start).
running() {
	[ -s "$T/run.sh.pid" ] && kill -0 "$(cat "$T/run.sh.pid")" 2>/dev/null
}

evf init >/dev/null || exit 99
for i in 1 2 3; do
	evf emit before.restart "{\"n\":$i}" >/dev/null || exit 99
done

# A password in the URL (the throwaway server trusts local users and
# ignores it) must never show, not even while the connection is lost.
# First in the query, so that it fits in the title.
start "$TOP" --db "${DB%%\?*}?password=hunter2&${DB#*\?}" --table "$TABLE" --refresh 0.5
see_line 2 '^ all 3  pending 3 ' 15
check "evf-top is running" running

# Restart the server in the background and watch the status line (the
# last line) meanwhile: evf-top notices the cut session at its next
# refresh and says so until a refresh reconnects.
throwaway restart >"$T/restart.log" 2>&1 &
restart_pid=$!
: >"$T/status-lines"
while kill -0 "$restart_pid" 2>/dev/null; do
	screen >"$T/now"
	tail -n 1 "$T/now" >>"$T/status-lines"
	head -n 1 "$T/now" >>"$T/title-lines"
	sleep 0.05
done
wait "$restart_pid"
status=$?
last="throwaway.sh restart"
if [ "$status" -ne 0 ]; then
	fail "the server restarted"
	sed 's/^/# restart: /' "$T/restart.log"
	finish
fi
# The first refresh after the restart meets the cut session.
i=0
while [ "$i" -lt 40 ]; do
	screen >"$T/now"
	tail -n 1 "$T/now" >>"$T/status-lines"
	head -n 1 "$T/now" >>"$T/title-lines"
	sleep 0.05
	i=$((i + 1))
done
last="evf-top during the restart"
if grep -q '^ *database: ' "$T/status-lines"; then
	pass "the status line warned about the database: $(grep -m 1 '^ *database: ' "$T/status-lines" | cut -c 1-80)"
else
	fail "the status line never warned about the database"
	sort "$T/status-lines" | uniq -c | sed 's/^/# status line: /'
fi
check "the title masks the password" grep -q 'password=\*\*\*&' "$T/title-lines"
check "the password never showed" sh -c "! grep -q hunter2 '$T/title-lines' '$T/status-lines'"
check "evf-top kept running through the restart" running
check "evf-top never exited" sh -c "! tmux -L '$SOCK' capture-pane -p | grep -q '^EXITED'"

# New counts after the restart: evf-top has reconnected by itself.
for i in 1 2 3 4; do
	evf emit after.restart "{\"n\":$i}" >/dev/null
done
evf mark-processed 1 >/dev/null
see_line 2 '^ all 7  pending 6 .* done 1' 15
last="evf-top after the restart"
if wait_line '$' '^ *database: ' 1; then
	fail "the warning is gone after the reconnect"
	sed 's/^/# screen: /' "$T/screen"
else
	pass "the warning is gone after the reconnect"
fi
check "evf-top is still running" running

finish
