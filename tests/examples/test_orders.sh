#!/bin/sh
# test_orders.sh - the example application, examples/orders.c, built the
# way its users build it (cc and pkg-config, here through the build tree's
# libevf-uninstalled.pc) and run against the test database: orders placed
# with their events in one transaction, a worker with single, batch and
# command handlers, a `when` predicate, transient and permanent failures,
# correlation ids across the chain, metrics; its output is checked.
# EVF_CLI_BACKEND=pg runs it on PostgreSQL (tests/examples/test_orders_pg.sh).
. "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/lib.sh"

srcdir=${EVF_TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${EVF_TEST_BUILDDIR:-$srcdir}
EXTRA_TABLES="${TABLE}_order"
# Retries after 50 ms instead of 1 s: the example reads EVF_* like evfctl.
EVF_BACKOFF_BASE=50ms
export EVF_BACKOFF_BASE

# ---- build it as a user would -----------------------------------------------
pkgs="libevf sqlite3"
defs=
if grep -q '^#define HAVE_LIBPQ 1' "$builddir/config.h"; then
	pkgs="$pkgs libpq"
	defs=-DORDERS_WITH_LIBPQ
fi
last="cc examples/orders.c \$(pkg-config --cflags --libs $pkgs)"
status=0
if flags=$(PKG_CONFIG_PATH="$builddir/libevf${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
	pkg-config --cflags --libs $pkgs 2>"$T/err"); then
	# shellcheck disable=SC2086 # the flags are words
	# The build's compiler and flags (a sanitized libevf needs them too).
	${EVF_TEST_CC:-${CC:-cc}} ${EVF_TEST_CFLAGS:-} -std=c11 -Wall -Wextra -Werror \
		$defs -o "$T/orders" "$srcdir/examples/orders.c" $flags ${EVF_TEST_LDFLAGS:-} \
		>"$T/out" 2>"$T/err" || status=$?
else
	status=$?
fi
expect_exit 0
[ -x "$T/orders" ] || finish
LD_LIBRARY_PATH="$builddir/libevf/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH

# orders ARGS...: the example on this test's database and table.
orders() {
	last="orders $*"
	"$T/orders" --db "$DB" --table "$TABLE" "$@" </dev/null >"$T/out" 2>"$T/err"
	status=$?
}

# ---- place: orders and their events commit together ---------------------------
if [ "$BACKEND" = sqlite ]; then
	run init
fi
orders place 15
expect_exit 0
expect_stdout_contains "placed order 15 (event 15)"
expect_count 15 --type order.placed
expect_field 4 correlation_id order-4
expect_field 4 idempotency_key order-4
check "the application's table has the 15 orders" \
	test "$(sql "SELECT count(*) FROM ${TABLE}_order")" = 15

# A failed emit rolls the whole transaction back: with a trigger that
# refuses order.placed events, the order is not stored either.
if [ "$BACKEND" = pg ]; then
	psql_q "CREATE FUNCTION ${TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS
		\$\$ BEGIN RAISE EXCEPTION 'refused by a test trigger'; END \$\$" \
		"CREATE TRIGGER refuse BEFORE INSERT ON $TABLE FOR EACH ROW
		 EXECUTE FUNCTION ${TABLE}_refuse()"
else
	sql "CREATE TRIGGER refuse BEFORE INSERT ON $TABLE
	     BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END" >/dev/null
fi
orders place 1
check "an order whose event cannot be emitted fails" test "$status" -ne 0
expect_stderr_contains "refused by a test trigger"
if [ "$BACKEND" = pg ]; then
	psql_q "DROP TRIGGER refuse ON $TABLE" "DROP FUNCTION ${TABLE}_refuse()"
else
	sql "DROP TRIGGER refuse" >/dev/null
fi
check "nor is the order stored" \
	test "$(sql "SELECT count(*) FROM ${TABLE}_order")" = 15
expect_count 15 --type order.placed

# ---- work: the whole chain, retries included ---------------------------------------
orders work --until-idle --metrics "$T/worker.prom"
expect_exit 0
expect_stdout_equals "processed 46, failed 5 (retried 3, dead 2), skipped 2"
expect_stderr_contains "msg=retry id="
expect_stderr_contains "error_code=gateway_timeout"
expect_stderr_contains "msg=dead id="
expect_stderr_contains "msg=skipped id="

orders report
expect_exit 0
cat >"$T/want" <<'WANT'
order-1: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-2: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-3: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-4: order.placed done -> payment.charge done after 2 attempts -> order.ship done -> email.send done
order-5: order.placed done -> payment.charge dead (card_declined)
order-6: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-7: order.placed done
order-8: order.placed done -> payment.charge done after 2 attempts -> order.ship done -> email.send done
order-9: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-10: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-11: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-12: order.placed done -> payment.charge done after 2 attempts -> order.ship done -> email.send done
order-13: order.placed done -> payment.charge done -> order.ship done -> email.send done
order-14: order.placed done
order-15: order.placed done -> payment.charge dead (card_declined)
WANT
if cmp -s "$T/want" "$T/out"; then
	pass "orders report: every chain as expected"
else
	fail "orders report: every chain as expected"
	diff "$T/want" "$T/out" | sed 's/^/# /'
fi

# What evfctl sees of it: the chain of one order, the dead letters.
expect_count 4 --correlation-id order-12
expect_count 2 --state dead
run --json list --state dead --type payment.charge
expect_json "sorted(e['error_code'] for e in d)" '["card_declined", "card_declined"]'

check "the worker wrote its metrics" \
	grep -q '^evf_worker_processed_total{type="order.ship",worker="[^"]*"} 11$' "$T/worker.prom"
check "the metrics count the retries" \
	grep -q '^evf_worker_retried_total{type="payment.charge",worker="[^"]*"} 3$' "$T/worker.prom"

# ---- a command handler for email.send ----------------------------------------------------
cat >"$T/mail.sh" <<'SH'
#!/bin/sh
# Record what a command handler gets: its environment and its stdin.
echo "$EVF_EVENT_TYPE $EVF_CORRELATION_ID attempt=$EVF_ATTEMPT" >>"$MAIL_LOG"
cat >/dev/null
SH
chmod +x "$T/mail.sh"
MAIL_LOG="$T/mail.log"
export MAIL_LOG
orders place 2
orders work --until-idle --mail-command "$T/mail.sh"
expect_exit 0
expect_stdout_equals "processed 8, failed 1 (retried 1, dead 0), skipped 0"
check "the command handler got the correlation ids" \
	test "$(sort "$MAIL_LOG" | tr '\n' ' ')" = "email.send order-16 attempt=1 email.send order-17 attempt=1 "

finish
