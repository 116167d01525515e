#!/bin/sh
# test_tui.sh - drive the real evf-top in tmux: start it on a fresh SQLite
# table, send keys, and read the screen back with capture-pane.  Every
# check polls the screen until the text shows up (or a timeout), so the
# test does not depend on how fast the machine is.
# Exit 0 pass, 1 fail, 77 skip (no tmux).

if ! command -v tmux >/dev/null 2>&1; then
	echo "test_tui: tmux not found, skipping"
	exit 77
fi
. "${EVF_TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/cli/lib.sh"

TOP=${EVF_TOP:-${EVF_TEST_BUILDDIR:-.}/tui/evf-top}
MAN=${EVF_TEST_SRCDIR:-.}/man/evf-top.1
if [ ! -x "$TOP" ]; then
	echo "test_tui: $TOP is not built" >&2
	exit 99
fi

servers=""
SOCK=""
n=0
cleanup() {
	for s in $servers; do
		tmux -L "$s" kill-server 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

# start [ENV=VALUE...] ARGS...: evf-top in a fresh 100x30 tmux server.
# The window keeps "EXITED status" on screen after evf-top ends.
start() {
	n=$((n + 1))
	SOCK="evftest-$$-$n"
	servers="$servers $SOCK"
	cat >"$T/run$n.sh" <<'SCRIPT'
sh -c 'echo $$ >"$0.pid"; exec "$@"' "$0" "$@"
echo "EXITED $?"
sleep 600
SCRIPT
	last="evf-top $*"
	tmux -L "$SOCK" new-session -d -x 100 -y 30 sh "$T/run$n.sh" \
		env LANG=C.UTF-8 LC_ALL=C.UTF-8 "$@"
}

screen() {
	tmux -L "$SOCK" capture-pane -p
}

keys() {
	tmux -L "$SOCK" send-keys "$@"
}

# wait_for TEXT [SECONDS]: poll the screen until it shows TEXT.
wait_for() {
	_i=0
	_limit=$((${2:-10} * 10))
	while [ "$_i" -lt "$_limit" ]; do
		if screen | grep -qF -- "$1"; then
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	screen >"$T/screen"
	return 1
}

# wait_line N REGEX: poll until screen line N matches REGEX.
wait_line() {
	_i=0
	while [ "$_i" -lt 100 ]; do
		if screen | sed -n "$1p" | grep -Eq -- "$2"; then
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	screen >"$T/screen"
	return 1
}

see() {
	if wait_for "$@"; then
		pass "screen shows '$1'"
	else
		fail "screen shows '$1'"
		sed 's/^/# screen: /' "$T/screen"
	fi
}

see_line() {
	if wait_line "$1" "$2"; then
		pass "line $1 matches '$2'"
	else
		fail "line $1 matches '$2'"
		sed 's/^/# screen: /' "$T/screen"
	fi
}

# see_re REGEX: poll until some line matches the extended REGEX.
see_re() {
	_i=0
	while [ "$_i" -lt 100 ]; do
		if screen | grep -Eq -- "$1"; then
			pass "screen matches '$1'"
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	fail "screen matches '$1'"
	screen | sed 's/^/# screen: /'
}

lacks() {
	if screen | grep -qF -- "$1"; then
		fail "screen lacks '$1'"
		screen | sed 's/^/# screen: /'
	else
		pass "screen lacks '$1'"
	fi
}

# ---- a table with some history ------------------------------------------------
"$EVFCTL" init >/dev/null || exit 99
for i in $(seq 1 30); do
	"$EVFCTL" emit order.created "{\"n\":$i,\"items\":[1,2]}" --correlation-id "corr-$((i % 3))" >/dev/null
done
for i in 1 2 3 4 5; do
	"$EVFCTL" emit mail.send "{\"to\":\"u$i@example.org\"}" >/dev/null
done
"$EVFCTL" process --once --types mail.send \
	--exec 'mail.send=echo "smtp timeout after 30s" >&2; exit 65' >/dev/null 2>&1
first_mail=31

# ---- start, header, navigation --------------------------------------------------
start "$TOP" --db "$DB"
see "pending 30"
see "dead 5"
see "table evf_event"
see "oldest ready"
see_line 6 '^ +1 order\.created +pending'
# 30 rows: 4 of header, the column titles, 24 events, the status line
# the last page fills the screen; the selection moves by a page
keys PageDown
see_line 29 '^ +35 mail\.send'
see_line 6 '^ +12 order\.created'
keys Enter
see "Event 25"
keys Escape
keys g
see_line 6 '^ +1 order\.created'
keys j j Down Enter
see "Event 4"
keys G
see "Events with correlation id corr-1 (10)"
see_re '^> +4 order\.created'
see_re '^  +7 order\.created'
keys k g
see "Event 4"
keys Escape
see_line 5 'ID +TYPE +STATE'
keys k Enter
see "Event 3"
keys q
keys End
see_line 29 '^ +35 mail\.send +dead'

# ---- other orders, paged by (key, id) ----------------------------------------------
keys g o o o
see "sorted by attempts"
keys s
see_line 6 '^ +35 mail\.send +dead'
see_line 11 '^ +30 order\.created'
keys PageDown
see_line 29 '^ +1 order\.created'
keys PageUp
see_line 6 '^ +35 mail\.send'
keys s o
see "sorted by id"
see_line 6 '^ +1 order\.created'

# ---- the detail view: pretty JSON ------------------------------------------------
keys / 'id:7' Enter
see "filter: id:7"
keys Enter
see "Parameters"
see_re '^ +"n": +7,$'
see_re '^ +"items": +\[1, 2\]$'
keys Escape

# ---- filters -----------------------------------------------------------------------
keys Escape
see "filter cleared"
keys / 'type:mail.*' Enter
see "filter: type:mail.*  (5 match)"
lacks "order.created"
keys / C-u 'state:nope' Enter
see "bad filter: state: unknown state 'nope'"
see "mail.send"
keys Escape
see "order.created"
keys Tab Tab Tab Tab Tab Tab
see "filter: dead  (5 match)"
lacks "order.created"
keys Tab
see "filter: done"
keys BTab BTab BTab BTab BTab BTab BTab
see "pending 30"

# ---- the per-type screen: counted on a thread of its own --------------------------------
keys 2
see_re '^mail\.send +0 +0 +0 +0 +0 +5 +0 +5 +100\.0%'
see_re '^order\.created +30 +0 +0 +0 +0 +0 +0 +30 +0\.0%'
see_re '^ counted [0-9]+s ago in [0-9]+ ms'
keys j Enter
see 'filter: type:"order.created"  (30 match)'
keys Escape
see "filter cleared"

# ---- requeue and dead-letter, with confirmation ---------------------------------------
keys / C-u "id:$first_mail" Enter
see "filter: id:$first_mail"
see_line 6 "^ +$first_mail mail\\.send +dead"
keys r
see "Requeue 1 event (id $first_mail)? [y/N]"
keys y
see "requeued 1 event"
see_line 6 "^ +$first_mail mail\\.send +pending"
expect_field "$first_mail" state pending

keys / C-u 'id:2' Enter
see_line 6 '^ +2 order\.created +pending'
keys d
see "Dead-letter 1 event (id 2)? [y/N]"
keys n
see "dead-letter cancelled"
expect_field 2 state pending
keys d
see "Dead-letter 1 event (id 2)? [y/N]"
keys y
see "dead-lettered 1 event"
expect_field 2 state dead

# bulk: the question gives the count, and n leaves everything as it was
keys / C-u 'type:order.*' Enter
see "filter: type:order.*"
keys D
see "Dead-letter 29 events (matching type:order.*)? [y/N]"
keys n
see "dead-letter cancelled"
expect_count 29 --type 'order.*' --state pending

# tagged events: t tags and moves down; the action takes the tags
keys g t t
see "tagged 2"
keys m
see "Mark processed 2 events (2 tagged)? [y/N]"
keys y
see "marked processed 2 events"
expect_field 1 state done
expect_field 2 state done
expect_field 3 state pending

# everything: the question says so
keys Escape
see "filter cleared"
keys R
see "ALL events, no filter)? [y/N]"
keys Escape
see "requeue cancelled"
keys q
see "EXITED 0"

# ---- read-only ------------------------------------------------------------------------
start "$TOP" --db "$DB" --read-only
see "READ-ONLY"
keys r
see "read-only (--read-only): requeue is disabled"
keys D
see "read-only (--read-only): dead-letter is disabled"
expect_field 4 state pending

# ---- resize -------------------------------------------------------------------------
tmux -L "$SOCK" resize-window -x 80 -y 24
see_line 24 'READ-ONLY'
see_line 5 'ID +TYPE +STATE +TRIES'
if [ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 80 ]; then
	pass "lines fit 80 columns after the resize"
else
	fail "lines fit 80 columns after the resize"
fi
tmux -L "$SOCK" resize-window -x 120 -y 40
see_line 40 'READ-ONLY'
keys ?
see "Keys (q or Esc goes back"
keys q
see_line 5 'ID +TYPE'
keys q
see "EXITED 0"

# ---- NO_COLOR, SIGTERM ------------------------------------------------------------------
start NO_COLOR=1 "$TOP" --db "$DB"
see "pending"
# without colour the bar tells the states apart by letter: = pending, x dead
see_line 3 '^=+.*x+'
kill -TERM "$(cat "$T/run$n.sh.pid")"
see "EXITED 0"
lacks "table evf_event"

# ---- -n: exits by itself ----------------------------------------------------------------
start "$TOP" --db "$DB" --refresh 200ms -n 2
see "EXITED 0"

# ---- a sort too slow for its budget goes back to id order -----------------------------
# 200,000 rows sorted by priority read every row; with a 1 ms budget the
# page gives up, says so and lists by id; `o` goes on from the order tried.
"$EVFCTL" --table big init >/dev/null || exit 99
python3 - "$DB" <<'PY' || exit 99
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executemany("INSERT INTO big (type, date, parameters, processed, error, error_message, priority) "
              "VALUES ('bulk.row', 1767225600000000, '{}', 1, 0, '', ?)",
              ((i % 7,) for i in range(200000)))
c.commit()
PY
start "$TOP" --db "$DB" --table big --sort-budget 1ms
see "table big"
keys o o
see "priority sort over 1 ms here: id order; narrow with a filter first"
see_re ' id (↑|asc) *$'
see_line 7 '^ +2 bulk\.row'
keys o
see_re 'attempts sort over 1 ms'
keys o
see "sorted by id"
keys q
see "EXITED 0"
start "$TOP" --db "$DB" --table big --sort-budget 0
keys o o
see "sorted by priority"
see_re ' priority (↑|asc) *$'
see_line 7 '^ +8 bulk\.row'
# a filter matching 200,000 rows: its count stops past 10,000
keys / 'type:bulk.*' Enter
see "filter: type:bulk.*  (10.0k+ match)"
see_line 6 '^ +1 bulk\.row'
keys q
run_top() { last="evf-top $*"; "$TOP" "$@" >"$T/out" 2>"$T/err"; status=$?; }
run_top --db "$DB" --sort-budget soon
expect_exit 2
expect_stderr_contains "bad --sort-budget 'soon'"

# ---- evf.conf: the database and the table, unless given as options ----------------------
"$EVFCTL" --table cfg_table init >/dev/null
"$EVFCTL" --table cfg_table emit cfg.only >/dev/null
printf '[evf]\ndatabase = %s\ntable = cfg_table\n' "$DB" >"$T/top.conf"
start EVF_DATABASE_URL= "$TOP" --config "$T/top.conf"
see "table cfg_table"
see "cfg.only"
keys q
see "EXITED 0"
start EVF_DATABASE_URL= EVF_CONFIG="$T/top.conf" "$TOP" --table evf_event
see "table evf_event"
lacks "cfg.only"
keys q
see "EXITED 0"

# ---- errors before curses -------------------------------------------------------------
last="evf-top --db missing.db"
"$TOP" --db "$T/missing.db" >"$T/out" 2>"$T/err"
status=$?
expect_exit 1
expect_stderr_contains "evf-top: "
if [ "$(wc -l <"$T/err")" -eq 1 ]; then pass "one error line"; else fail "one error line"; fi
check "the missing database was not created" test ! -e "$T/missing.db"
last="evf-top --filter colour:red"
"$TOP" --db "$DB" --filter 'colour:red' >"$T/out" 2>"$T/err"
status=$?
expect_exit 2
expect_stderr_contains "unknown qualifier 'colour:'"
run_top() { last="evf-top $*"; "$TOP" "$@" >"$T/out" 2>"$T/err"; status=$?; }
run_top --version
expect_stdout_equals "evf-top 0.1.0"
run_top --bogus
expect_exit 2
printf '[evf]\ntable = cfg_table\n[top]\n' >"$T/bad.conf"
run_top --config "$T/bad.conf"
expect_exit 2
expect_stderr_contains "evf-top: $T/bad.conf:3: unknown section [top]"
run_top --config "$T/bad.conf" --help
expect_exit 0
expect_stdout_contains "--config FILE"
run_top --config "$T/nothere.conf"
expect_exit 2
expect_stderr_contains "cannot open the config file '$T/nothere.conf'"
EVF_DATABASE_URL= run_top --config "$T/top.conf" --db "$T/missing.db"
expect_exit 1
check "--db wins over the file: the missing database was not created" test ! -e "$T/missing.db"

# ---- the man page lists exactly the keys of the table ---------------------------------------
"$TOP" --keys-mdoc >"$T/keys.gen"
sed -n '/^\.\\" BEGIN KEYS/,/^\.\\" END KEYS/p' "$MAN" | sed '1d;$d' >"$T/keys.man"
if [ -s "$T/keys.gen" ] && cmp -s "$T/keys.gen" "$T/keys.man"; then
	pass "evf-top.1 KEYS matches evf-top --keys-mdoc"
else
	fail "evf-top.1 KEYS matches evf-top --keys-mdoc (regenerate it)"
	diff "$T/keys.gen" "$T/keys.man" | sed 's/^/# /'
fi

finish
