#!/bin/sh
# Through PgBouncer in transaction mode, which hands each transaction a
# server session of its pool: workers and emitters with the default
# settings (LISTEN, prepared statements) work.  A worker that finds its
# prepared statements missing on another session sends them unnamed from
# then on, without failing the claim or the emit that found out.  The
# pooler is one of this test's own, in front of the throwaway server.
EVF_CLI_BACKEND=pg
export EVF_CLI_BACKEND
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ -z "${EVF_PG_DIR:-}" ] || [ ! -x "$PGBOUNCER" ]; then
	if [ -n "${EVF_TEST_REQUIRE_PG:-}" ]; then
		echo "EVF_TEST_REQUIRE_PG is set but EVF_PG_DIR or pgbouncer is missing" >&2
		exit 99
	fi
	echo "needs EVF_PG_DIR (a throwaway server) and pgbouncer; skipping"
	exit 77
fi

# The server's socket directory and port, from its URL.
eval "$(python3 -c '
import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query)
print("pg_host=%s pg_port=%s pg_user=%s" % (q["host"][0], q.get("port", ["5432"])[0], q.get("user", ["postgres"])[0]))
' "$EVF_TEST_PG_URL")"
dbname=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).path.lstrip("/"))' "$EVF_TEST_PG_URL")

B=$(mktemp -d "${TMPDIR:-/tmp}/evf-pgbouncer.XXXXXX") || exit 99
chmod 755 "$B"
port=$((20000 + $$ % 20000))
cat >"$B/pgbouncer.ini" <<INI
[databases]
$dbname = host=$pg_host port=$pg_port dbname=$dbname user=$pg_user
[pgbouncer]
listen_addr =
listen_port = $port
unix_socket_dir = $B
auth_type = trust
auth_file = $B/users.txt
pool_mode = transaction
default_pool_size = 3
admin_users = $pg_user
logfile = $B/pgbouncer.log
pidfile = $B/pgbouncer.pid
INI
echo "\"$pg_user\" \"\"" >"$B/users.txt"
# PgBouncer will not run as root: run it as the server's owner, who can
# reach the server's socket.
if [ "$(id -u)" = 0 ]; then
	owner=$(stat -c %U "$pg_host")
	chown -R "$owner" "$B"
	runuser -u "$owner" -- "$PGBOUNCER" -d "$B/pgbouncer.ini" || exit 99
else
	"$PGBOUNCER" -d "$B/pgbouncer.ini" || exit 99
fi
trap 'kill "$(cat "$B/pgbouncer.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$B"; cli_cleanup' EXIT
i=0
while [ ! -S "$B/.s.PGSQL.$port" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
DB="postgresql:///$dbname?host=$B&port=$port&user=$pg_user"
EVF_DATABASE_URL=$DB
export EVF_DATABASE_URL
log="$pg_host/postgres.log"
missing() { grep -c "prepared statement \"evf_[0-9a-f]*_[0-9]*_[0-9]*\" does not exist" "$log"; }
m0=$(missing)

run init
expect_exit 0
# one event per process, then a batch (COPY)
for i in 1 2 3 4 5 6; do
	run emit t.ok "{\"n\":$i}"
	expect_exit 0
done
python3 -c 'for i in range(40): print("{\"type\": \"t.ok\", \"parameters\": {\"n\": %d}}" % i)' >"$T/batch.jsonl"
run_in "$T/batch.jsonl" emit --stdin
expect_exit 0
# two workers at once, small batches: many transactions, many sessions
for w in 1 2; do
	"$EVFCTL" --table "$TABLE" process --once --batch-size 3 --exec "t.ok=echo \$EVF_EVENT_ID >> '$T/ran.$w'" \
		</dev/null >"$T/out.$w" 2>"$T/err.$w" &
	eval "pid_$w=\$!"
done
wait "$pid_1"
s1=$?
wait "$pid_2"
s2=$?
check "both workers through PgBouncer exit 0" test "$s1$s2" = 00
check "no worker logged an error" sh -c "! grep -h 'level=error' '$T/err.1' '$T/err.2'"
expect_count 46 --state done
check "every event ran exactly once" \
	test "$(cat "$T/ran.1" "$T/ran.2" | sort -u | wc -l)" -eq 46
check "... and once only" test "$(cat "$T/ran.1" "$T/ran.2" | wc -l)" -eq 46

# The pooler replaces its server sessions under a running worker (as after
# a server restart, or server_lifetime): the worker's next claim finds its
# prepared statements missing, and goes on unnamed.
"$EVFCTL" --table "$TABLE" process --poll-interval 100ms --exec "t.ok=echo \$EVF_EVENT_ID >> '$T/ran.3'" \
	</dev/null >"$T/out.3" 2>"$T/err.3" &
pid_3=$!
# await_run ID: wait up to 10 s for the worker to have run event ID.
await_run() {
	i=0
	while ! grep -qx "$1" "$T/ran.3" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
run emit t.ok
first=$(sed -n 's/^emitted //p' "$T/out")
await_run "$first"
check "the long-running worker ran the first event" grep -qx "$first" "$T/ran.3"
admin() {
	psql -X -q "postgresql:///pgbouncer?host=$B&port=$port&user=$pg_user" -c "$1" >/dev/null 2>&1
}
check "the pooler replaces its server sessions" admin "RECONNECT $dbname"
sleep 0.5
run emit t.ok
second=$(sed -n 's/^emitted //p' "$T/out")
await_run "$second"
kill -TERM "$pid_3"
wait "$pid_3"
s3=$?
check "the worker ran the event emitted after the new sessions" grep -qx "$second" "$T/ran.3"
check "... exits 0 when stopped" test "$s3" = 0
check "... and logged no error" sh -c "! grep 'level=error' '$T/err.3'"
check "its prepared statements went missing (the case under test)" test "$(missing)" -gt "$m0"
finish
