#!/usr/bin/env bash
# A disposable PostgreSQL server for the test suite: a fresh cluster in a
# temporary directory, reachable only through a unix socket in that same
# directory, with trust authentication and durability switched off (it is
# thrown away anyway).
#
#   tests/pg/throwaway.sh start   start one; prints EVF_TEST_PG_URL=... and
#                                 EVF_PG_DIR=... lines on stdout
#   tests/pg/throwaway.sh env     print those lines again for a running one
#   tests/pg/throwaway.sh stop    shut it down and remove its directory
#   tests/pg/throwaway.sh restart restart it (pg_ctl restart -m fast)
#
# `env` and `stop` find the server through $EVF_PG_DIR, else through the
# pointer file left by the last `start` ($EVF_PG_POINTER, default
# ${TMPDIR:-/tmp}/evf-throwaway-pg.UID).
# PostgreSQL refuses to run as root, so under root the server runs as the
# `postgres` user when it exists, else as a system user `evfpg` made on
# first use.
#
# Environment: EVF_PG_DIR (the server's directory), EVF_PG_PORT (the
# socket's port number, default 5432: only the socket name depends on it),
# EVF_PG_DATABASE (default evf_test), EVF_PG_BINDIR (PostgreSQL's programs),
# EVF_PG_USER (who runs the server when we are root).
set -euo pipefail

prog=${0##*/}
database=${EVF_PG_DATABASE:-evf_test}
port=${EVF_PG_PORT:-5432}
pointer=${EVF_PG_POINTER:-${TMPDIR:-/tmp}/evf-throwaway-pg.$(id -u)}

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

# initdb, pg_ctl and postgres live outside PATH on Debian.
find_bindir() {
	local dir
	if [[ -n ${EVF_PG_BINDIR:-} ]]; then
		dir=$EVF_PG_BINDIR
	elif command -v pg_config >/dev/null 2>&1 &&
		dir=$(pg_config --bindir 2>/dev/null) && [[ -x $dir/initdb ]]; then
		:
	else
		# The newest installed major version.
		local candidate
		dir=
		for candidate in /usr/lib/postgresql/*/bin; do
			[[ -x $candidate/initdb ]] || continue
			if [[ -z $dir ]] || [[ $(printf '%s\n' "$dir" "$candidate" | sort -V | tail -n 1) == "$candidate" ]]; then
				dir=$candidate
			fi
		done
	fi
	[[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] ||
		die "PostgreSQL server programs (initdb, pg_ctl) not found: install the postgresql package or set EVF_PG_BINDIR"
	echo "$dir"
}

# The user the server runs as: ourselves, unless we are root.
server_user() {
	if [[ $(id -u) -ne 0 ]]; then
		id -un
	elif [[ -n ${EVF_PG_USER:-} ]]; then
		[[ $EVF_PG_USER != root ]] || die "EVF_PG_USER=root: PostgreSQL refuses to run as root"
		id "$EVF_PG_USER" >/dev/null 2>&1 || die "EVF_PG_USER=$EVF_PG_USER: no such user"
		echo "$EVF_PG_USER"
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		if ! id evfpg >/dev/null 2>&1; then
			useradd --system --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin evfpg ||
				die "cannot create the system user evfpg to run PostgreSQL as (it refuses root)"
		fi
		echo evfpg
	fi
}

# Run a server program as $user; from the server directory because the
# user may not be allowed into our working directory.
as_server_user() {
	if [[ $user == "$(id -un)" ]]; then
		(cd "$dir" && "$@")
	else
		(cd "$dir" && runuser -u "$user" -- "$@")
	fi
}

# Read the server directory: $EVF_PG_DIR, else the pointer file.
locate() {
	dir=${EVF_PG_DIR:-}
	if [[ -z $dir && -f $pointer ]]; then
		dir=$(cat "$pointer")
	fi
	[[ -n $dir ]] || die "no throwaway server known: set EVF_PG_DIR or run '$prog start'"
	[[ -f $dir/settings ]] || die "$dir is not a throwaway PostgreSQL directory (no settings file)"
	# shellcheck source=/dev/null
	. "$dir/settings"
}

print_env() {
	echo "EVF_TEST_PG_URL=postgresql:///$database?host=$dir&port=$port&user=$superuser"
	echo "EVF_PG_DIR=$dir"
}

cmd_start() {
	local bindir user superuser i
	bindir=$(find_bindir)
	user=$(server_user)
	superuser=$user
	if [[ -n ${EVF_PG_DIR:-} ]]; then
		dir=$EVF_PG_DIR
		[[ ! -e $dir/settings ]] || die "$dir already holds a throwaway server: stop it first"
		mkdir -p "$dir" || die "cannot create $dir"
	else
		dir=$(mktemp -d "${TMPDIR:-/tmp}/evf-pg.XXXXXX") || die "cannot create a temporary directory"
	fi
	# The socket lives here too; a unix socket path must stay under ~100 bytes.
	(( ${#dir} < 80 )) || die "$dir is too long a path for a unix socket: set TMPDIR to a shorter one"
	printf 'bindir=%q\nuser=%q\nsuperuser=%q\nport=%q\ndatabase=%q\n' \
		"$bindir" "$user" "$superuser" "$port" "$database" >"$dir/settings"
	[[ $user == "$(id -un)" ]] || chown "$user" "$dir" || die "cannot give $dir to $user"
	chmod 0700 "$dir"

	if ! as_server_user "$bindir/initdb" -D "$dir/data" -U "$superuser" \
		--auth=trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		rm -rf "$dir"
		die "initdb failed"
	fi
	# listen_addresses='' keeps it off the network entirely.
	if ! as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
		-w -t 60 -o "-k '$dir' -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >"$dir/pg_ctl.log" 2>&1; then
		cat "$dir/pg_ctl.log" "$dir/postgres.log" >&2 || true
		stop_server
		die "the server did not start"
	fi
	for ((i = 0; i < 50; i++)); do
		"$bindir/pg_isready" -q -h "$dir" -p "$port" && break
		sleep 0.2
	done
	if ! "$bindir/psql" -X -q -h "$dir" -p "$port" -U "$superuser" -d postgres \
		-v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$database\"" >"$dir/createdb.log" 2>&1; then
		cat "$dir/createdb.log" >&2
		stop_server
		die "cannot create database $database"
	fi
	echo "$dir" >"$pointer"
	say "PostgreSQL running as $user, socket in $dir (port $port)"
	print_env
}

# Stop the server of $dir (settings already read) and remove the directory.
stop_server() {
	local pid i
	if [[ -f $dir/data/postmaster.pid ]]; then
		as_server_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	fi
	# If pg_ctl could not stop it, make sure nothing outlives the directory.
	if [[ -f $dir/data/postmaster.pid ]]; then
		pid=$(head -n 1 "$dir/data/postmaster.pid")
		if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
			kill -QUIT "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -rf "$dir"
	if [[ -f $pointer && $(cat "$pointer") == "$dir" ]]; then
		rm -f "$pointer"
	fi
}

cmd_stop() {
	locate
	stop_server
	say "stopped and removed $dir"
}

# A fast restart, as a test of reconnection would want: sessions are cut,
# the data stays.
cmd_restart() {
	locate
	as_server_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart \
		>>"$dir/pg_ctl.log" 2>&1 || die "restart failed: see $dir/pg_ctl.log"
	say "restarted the server in $dir"
}

cmd_env() {
	locate
	"$bindir/pg_isready" -q -h "$dir" -p "$port" || die "the server in $dir is not running"
	print_env
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_restart ;;
env) cmd_env ;;
-h | --help | help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	;;
*)
	echo "usage: $prog start|stop|restart|env" >&2
	exit 2
	;;
esac
