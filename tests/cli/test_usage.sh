#!/bin/sh
# evfctl usage: help, version, command lookup, option and database errors.
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

run --help
expect_exit 0
expect_stdout_contains "usage: evfctl"
for cmd in init emit process list show requeue mark-processed dead-letter set-max-attempts stats health stuck metrics purge archive restore maintain bench config help; do
	expect_stdout_contains "  $cmd "
done
expect_stderr_empty

run -h
expect_exit 0
expect_stdout_contains "usage: evfctl"

run --version
expect_exit 0
expect_stdout_equals "evfctl 0.1.0"
run -V
expect_stdout_equals "evfctl 0.1.0"

# Help for one command, three ways, the same text and no database needed.
run help list
expect_exit 0
expect_stdout_contains "usage: evfctl [GLOBAL OPTIONS] list"
expect_stdout_contains "--limit N"
expect_stdout_contains "--state S[,S]"
cp "$T/out" "$T/help-list"
run list --help
expect_exit 0
check "list --help equals help list" cmp -s "$T/out" "$T/help-list"
run list -h
check "list -h equals help list" cmp -s "$T/out" "$T/help-list"
run help
expect_exit 0
expect_stdout_contains "Commands"
run help set-max
expect_exit 0
expect_stdout_contains "set-max-attempts [OPTIONS] N [ID...]"
run emit --help
expect_stdout_contains "--stdin"
run process --help
expect_stdout_contains "--exec TYPE=COMMAND"
run requeue --help
expect_stdout_contains "--dry-run"

# No command, unknown command, unknown options.
run
expect_exit 2
expect_one_error_line
expect_stderr_contains "no command given"
run frobnicate
expect_exit 2
expect_one_error_line
expect_stderr_contains "evfctl: unknown command 'frobnicate'"
run help frobnicate
expect_exit 2
expect_stderr_contains "unknown command 'frobnicate'"
run --frob list
expect_exit 2
expect_one_error_line
expect_stderr_contains "unknown option '--frob'"
run list --frob
expect_exit 2
expect_one_error_line
expect_stderr_contains "evfctl: list: unknown option '--frob'"
run list --limit
expect_exit 2
expect_stderr_contains "option '--limit' needs an argument"
run --db
expect_exit 2
expect_stderr_contains "needs an argument"
run --log-format xml list
expect_exit 2
expect_stderr_contains "unknown log format 'xml'"
run show 1 2
expect_exit 2
expect_stderr_contains "unexpected argument '2'"

# Unique prefixes name a command; an ambiguous one lists the candidates.
run init
expect_exit 0
run li
expect_exit 0
expect_stdout_contains "TYPE"
run sh --help
expect_exit 0
expect_stdout_contains "evfctl [GLOBAL OPTIONS] show ID"
run mark --help
expect_stdout_contains "mark-processed"
run s
expect_exit 2
expect_one_error_line
expect_stderr_contains "ambiguous command 's': show, set-max-attempts, stats, stuck"
run st
expect_exit 2
expect_stderr_contains "ambiguous command 'st': stats, stuck"
run sta
expect_exit 0
expect_stdout_contains "total"
run --json stats
expect_json "d['total']" 0

# Global options come before the command, except --json, which may also
# follow it.
run list --json
expect_exit 0
expect_stdout_equals "[]"
run list --table evf_event
expect_exit 2
expect_stderr_contains "unknown option '--table'"

# Database: --db wins over $EVF_DATABASE_URL; neither is a usage error.
run --db "$T/other.db" list
expect_exit 1
expect_one_error_line
check "a read command does not create the database file" test ! -e "$T/other.db"
run --db "sqlite:$DB" list
expect_exit 0
run --db "sqlite://$DB" list
expect_exit 0
unset EVF_DATABASE_URL
run list
expect_exit 2
expect_one_error_line
expect_stderr_contains "no database given: use --db URL or set EVF_DATABASE_URL"
run emit t.x
expect_exit 2
expect_stderr_contains "no database given"
run help emit
expect_exit 0
EVF_DATABASE_URL=""
export EVF_DATABASE_URL
run stats
expect_exit 2
expect_stderr_contains "no database given"

finish
