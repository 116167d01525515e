/* contract_sqlite.c - the contract suite on SQLite files, plus what only
 * SQLite has: emitting on the caller's own connection, and the guard
 * against the planner trap. */
#include "contract.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *last_path;

/* The table as earlier evf builds made it, with TEXT timestamps: tables
 * made then keep that form, and the contract runs once more on it. */
static const char text_times_ddl[] =
	"CREATE TABLE evf_event (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, "
	"parameters TEXT NOT NULL DEFAULT '{}', date TEXT NOT NULL, processed INTEGER NOT "
	"NULL DEFAULT 0, error INTEGER NOT NULL DEFAULT 0, error_message TEXT, "
	"idempotency_key TEXT, correlation_id TEXT, priority INTEGER NOT NULL DEFAULT 0, "
	"not_before TEXT, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL "
	"DEFAULT 5, last_error_at TEXT, processed_at TEXT, error_code TEXT, dead INTEGER "
	"NOT NULL DEFAULT 0, locked_by TEXT, locked_until TEXT)";
static bool text_times; /* open_fresh makes the default table in that form */

static int exec_raw(const char *sql);

static int open_fresh(evf_db **out, evf_options *o)
{
	char *path = tu_path("contract");
	free(last_path);
	last_path = strdup(path);
	o->create = true;
	int rc = evf_open(out, path, o);
	free(path);
	if (!rc && text_times && !o->table && exec_raw(text_times_ddl))
		rc = -1;
	if (!rc)
		rc = evf_init(*out);
	return rc;
}

/* open_fresh, its table in the text form when text (whatever the run's) */
static int open_fresh_form(evf_db **out, evf_options *o, bool text)
{
	bool run = text_times;
	text_times = text;
	int rc = open_fresh(out, o);
	text_times = run;
	return rc;
}

static int reopen(evf_db **out, evf_options *o)
{
	return evf_open(out, last_path, o);
}

/* Run SQL on the file of the last fresh database, as another program would. */
static int exec_raw(const char *sql)
{
	sqlite3 *conn;
	if (sqlite3_open(last_path, &conn) != SQLITE_OK)
		return -1;
	int rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
	sqlite3_close(conn);
	return rc == SQLITE_OK ? 0 : -1;
}

/* One integer from a query with one text argument, on the file of the
 * last fresh database; `none` when no row comes back. */
static int query_int(const char *sql, const char *arg, int none)
{
	sqlite3 *conn;
	sqlite3_stmt *q;
	int n = none;
	if (sqlite3_open(last_path, &conn) != SQLITE_OK)
		return -2;
	if (sqlite3_prepare_v2(conn, sql, -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, arg, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int(q, 0);
		sqlite3_finalize(q);
	}
	sqlite3_close(conn);
	return n;
}

static int column_count(const char *table)
{
	return query_int("SELECT count(*) FROM pragma_table_info(?)", table, -1);
}

/* Exactly what Django's migration makes for the original EventModel. */
static const char django_ddl[] =
	"CREATE TABLE \"app_eventmodel\" (\"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "
	"\"type\" varchar(255) NOT NULL, \"date\" datetime NOT NULL, "
	"\"parameters\" text NOT NULL CHECK ((JSON_VALID(\"parameters\") OR \"parameters\" IS NULL)), "
	"\"processed\" bool NOT NULL, \"error\" bool NOT NULL, \"error_message\" text NOT NULL);"
	"INSERT INTO app_eventmodel (type, date, parameters, processed, error, error_message) VALUES "
	"('a', '2024-01-01 10:00:00', '{}', 0, 0, ''),"
	"('a', '2024-01-01 10:00:01.250000', '{\"x\":1}', 1, 0, ''),"
	"('b', '2024-01-02 10:00:00', '{}', 1, 1, 'boom'),"
	"('b', '2024-01-03 10:00:00', '{}', 0, 1, 'half');";

static void test_outbox_joins_callers_transaction(void **state)
{
	(void)state;
	char *path = tu_path("outbox");
	evf_options o = EVF_OPTIONS_INIT;
	o.create = true;
	evf_db *setup;
	EVF_OK_OR_FAIL(evf_open(&setup, path, &o));
	EVF_OK_OR_FAIL(evf_init(setup));
	evf_close(setup);

	sqlite3 *conn;
	assert_int_equal(sqlite3_open(path, &conn), SQLITE_OK);
	assert_int_equal(sqlite3_exec(conn, "CREATE TABLE orders (id INTEGER PRIMARY KEY)", 0, 0, 0), SQLITE_OK);
	evf_db *db;
	EVF_OK_OR_FAIL(evf_open_sqlite(&db, conn, NULL));

	/* rolled back together with the business row */
	assert_int_equal(sqlite3_exec(conn, "BEGIN; INSERT INTO orders VALUES (1)", 0, 0, 0), SQLITE_OK);
	EVF_OK_OR_FAIL(evf_emit(db, "order.created", "{\"id\":1}", NULL, NULL));
	assert_int_equal(sqlite3_exec(conn, "ROLLBACK", 0, 0, 0), SQLITE_OK);
	/* committed together */
	assert_int_equal(sqlite3_exec(conn, "BEGIN; INSERT INTO orders VALUES (2)", 0, 0, 0), SQLITE_OK);
	EVF_OK_OR_FAIL(evf_emit(db, "order.created", "{\"id\":2}", NULL, NULL));
	/* a failed emit inside the transaction leaves the caller's work alone */
	assert_int_equal(evf_emit(db, "order.created", "{oops", NULL, NULL), EVF_EINVAL);
	assert_false(sqlite3_get_autocommit(conn));
	assert_int_equal(sqlite3_exec(conn, "COMMIT", 0, 0, 0), SQLITE_OK);

	evf_filter f = EVF_FILTER_INIT;
	int64_t n;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);
	evf_close(db);
	/* the connection is the caller's and still usable */
	assert_int_equal(sqlite3_exec(conn, "SELECT 1", 0, 0, 0), SQLITE_OK);
	sqlite3_close(conn);
	free(path);
}

/* The claims a worker ran on a connection: their virtual machine steps,
 * a count of the work done that no clock can make flaky. */
typedef struct claim_watch {
	int claims;
	int vm_steps;
} claim_watch;

static int watch_claims(unsigned what, void *user, void *p, void *x)
{
	claim_watch *cw = user;
	sqlite3_stmt *st = p;
	(void)what;
	(void)x;
	const char *sql = sqlite3_sql(st);
	if (sql && strstr(sql, "ORDER BY priority, not_before, id LIMIT")) { /* the claim's walk */
		cw->claims++;
		/* reset as read: each claim's own count */
		cw->vm_steps += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
	}
	return 0;
}

/* Statistics gathered while every row is pending make the planner prefer a
 * table scan for the claim (the ready index looks useless: every row is in
 * it); once most rows are done that scan walks them all for every batch.
 * The real claim statement, watched on the connection, never scans. */
static void test_claim_keeps_index_after_analyze(void **state)
{
	(void)state;
	char *path = tu_path("analyze");
	evf_options o = EVF_OPTIONS_INIT;
	o.create = true;
	evf_db *setup;
	EVF_OK_OR_FAIL(evf_open(&setup, path, &o));
	EVF_OK_OR_FAIL(evf_init(setup));
	evf_close(setup);
	sqlite3 *conn = NULL;
	assert_int_equal(sqlite3_open(path, &conn), SQLITE_OK);
	free(path);
	evf_db *db;
	EVF_OK_OR_FAIL(evf_open_sqlite(&db, conn, NULL));
	enum { N = 10000 };
	static evf_emit_item items[N];
	for (int i = 0; i < N; i++)
		items[i] = (evf_emit_item){ "t", "{}", EVF_EMIT_OPTIONS_INIT };
	EVF_OK_OR_FAIL(evf_emit_batch(db, items, N, NULL));
	assert_int_equal(sqlite3_exec(conn, "ANALYZE", 0, 0, 0), SQLITE_OK);
	assert_int_equal(sqlite3_exec(conn, "UPDATE evf_event SET processed = 1 "
		"WHERE id <= 9900", 0, 0, 0), SQLITE_OK);

	claim_watch cw = { 0, 0 };
	assert_int_equal(sqlite3_trace_v2(conn, SQLITE_TRACE_PROFILE, watch_claims, &cw),
	                 SQLITE_OK);
	evf_worker *w;
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.batch_size = 10;
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	EVF_OK_OR_FAIL(evf_register_exec(w, "t", "true", 0));
	size_t n;
	EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	assert_int_equal(n, 10);
	evf_worker_free(w);
	sqlite3_trace_v2(conn, 0, NULL, NULL);
	assert_int_equal(cw.claims, 1);
	/* about 1,200 steps through the index; a scan of the done rows takes
	 * about 45,000 */
	assert_in_range(cw.vm_steps, 1, 5000);
	evf_close(db);
	sqlite3_close(conn);
}

/* How the index is defined: 1 partial, 0 whole, -1 missing. */
static int index_partial(const char *name)
{
	return query_int("SELECT sql LIKE '% WHERE %' FROM sqlite_master "
	                 "WHERE type = 'index' AND name = ?", name, -1);
}

/* This release's index set on evf_event: (type) whole, no (processed,
 * type), (error, date) and the idempotency index partial. */
static void assert_index_set(void)
{
	assert_int_equal(index_partial("evf_event_by_type"), 0);
	assert_int_equal(index_partial("evf_event_processed_type"), -1);
	assert_int_equal(index_partial("evf_event_error_date"), 1);
	assert_int_equal(index_partial("evf_event_idempotency"), 1);
	/* completions are tallied, not indexed */
	assert_int_equal(index_partial("evf_event_processed_at"), -1);
	assert_int_equal(query_int("SELECT count(*) FROM sqlite_master WHERE name = ?",
	                           "evf_event_tally", -1), 1);
}

/* The index set an emit and a completion pay for: type filters use
 * (type), which a completion leaves alone, where earlier releases had
 * (processed, type); (error, date) and the idempotency index are partial,
 * so a keyless emit writes neither.  A table made before gets the new set
 * on its next init, and keys stay unique throughout. */
static void test_index_set_replaces_older_one(void **state)
{
	(void)state;
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	EVF_OK_OR_FAIL(open_fresh(&db, &o));
	assert_index_set();
	evf_emit_options keyed = EVF_EMIT_OPTIONS_INIT;
	keyed.key = "k1";
	evf_emit_result r1, r2;
	EVF_OK_OR_FAIL(evf_emit(db, "a", "{}", &keyed, &r1));
	EVF_OK_OR_FAIL(evf_emit(db, "b", "{}", NULL, NULL));
	evf_close(db);
	/* the index set of earlier releases */
	assert_int_equal(exec_raw("DROP INDEX evf_event_by_type; CREATE INDEX "
		"evf_event_processed_type ON evf_event (processed, type); "
		"DROP INDEX evf_event_error_date; CREATE INDEX evf_event_error_date "
		"ON evf_event (error, date); DROP INDEX evf_event_idempotency; "
		"CREATE UNIQUE INDEX evf_event_idempotency ON evf_event (type, idempotency_key)"), 0);
	assert_int_equal(index_partial("evf_event_error_date"), 0);
	EVF_OK_OR_FAIL(reopen(&db, &o));
	EVF_OK_OR_FAIL(evf_init(db));
	assert_index_set();
	evf_filter f = EVF_FILTER_INIT;
	f.type = "b";
	int64_t n = 0;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);
	EVF_OK_OR_FAIL(evf_emit(db, "a", "{}", &keyed, &r2));
	assert_int_equal(r2.id, r1.id);
	assert_true(r2.duplicate);
	f.type = "a";
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);
	/* a second init has nothing left to replace, and leaves another
	 * table's index alone even when its name looks like an old one */
	assert_int_equal(exec_raw("CREATE TABLE evf_event_processed (type TEXT); CREATE INDEX "
	                          "evf_event_processed_type ON evf_event_processed (type)"), 0);
	EVF_OK_OR_FAIL(evf_init(db));
	assert_int_equal(index_partial("evf_event_idempotency"), 1);
	assert_int_equal(index_partial("evf_event_processed_type"), 0);
	evf_close(db);
}

static void test_missing_file_is_not_created(void **state)
{
	(void)state;
	char *path = tu_path("missing");
	evf_db *db = NULL;
	assert_int_equal(evf_open(&db, path, NULL), EVF_ENOTFOUND);
	assert_non_null(strstr(evf_error_last(), "does not exist"));
	FILE *f = fopen(path, "r");
	assert_null(f);
	free(path);
	assert_int_equal(evf_open(&db, "nosuch://x", NULL), EVF_EINVAL);
	evf_options o = EVF_OPTIONS_INIT;
	o.table = "bad;table";
	assert_int_equal(evf_open(&db, ":memory:", &o), EVF_EINVAL);
}

/* A batch goes in statements of 64 rows: a failure in a later statement
 * must take back the earlier ones, on evf's transaction and inside the
 * caller's (where only the batch's savepoint is undone). */
static void test_batch_failure_inserts_nothing(void **state)
{
	(void)state;
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	EVF_OK_OR_FAIL(open_fresh(&db, &o));
	assert_int_equal(exec_raw("CREATE UNIQUE INDEX one_each ON evf_event (parameters)"), 0);
	enum { N = 150 };
	evf_emit_item items[N];
	char params[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(params[i], sizeof params[i], "{\"i\":%d}", i == 140 ? 3 : i);
		items[i] = (evf_emit_item){ "t", params[i], EVF_EMIT_OPTIONS_INIT };
	}
	evf_emit_result res[N];
	assert_int_equal(evf_emit_batch(db, items, N, res), EVF_ESTORE);
	assert_non_null(strstr(evf_error_last(), "UNIQUE"));
	evf_filter f = EVF_FILTER_INIT;
	int64_t n = -1;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 0);
	evf_close(db);

	sqlite3 *conn;
	assert_int_equal(sqlite3_open(last_path, &conn), SQLITE_OK);
	EVF_OK_OR_FAIL(evf_open_sqlite(&db, conn, NULL));
	assert_int_equal(sqlite3_exec(conn, "BEGIN", 0, 0, 0), SQLITE_OK);
	EVF_OK_OR_FAIL(evf_emit(db, "mine", "{}", NULL, NULL));
	assert_int_equal(evf_emit_batch(db, items, N, res), EVF_ESTORE);
	assert_int_equal(sqlite3_exec(conn, "COMMIT", 0, 0, 0), SQLITE_OK);
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);
	evf_close(db);
	sqlite3_close(conn);
}

static int h_done(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	(void)user;
	return 0;
}

/* A worker that completes every event of the given types. */
static evf_worker *completer(evf_db *db, const char *const *types, size_t n)
{
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	evf_worker *w;
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	for (size_t i = 0; i < n; i++)
		EVF_OK_OR_FAIL(evf_register(w, types[i], h_done, NULL));
	return w;
}

/* Emit n events of a type and let a worker complete them. */
static void complete_n(evf_db *db, const char *type, int n)
{
	for (int i = 0; i < n; i++)
		EVF_OK_OR_FAIL(evf_emit(db, type, "{}", NULL, NULL));
	evf_worker *w = completer(db, &type, 1);
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_free(w);
}

static int64_t completed_since(evf_db *db, int64_t seconds_ago)
{
	evf_activity *a;
	EVF_OK_OR_FAIL(evf_activity_get(db, evf_now() - seconds_ago * 1000000, &a));
	int64_t n = a->all.completed;
	evf_activity_free(a);
	return n;
}

/* Completions the tally holds in buckets of `span` seconds, of the types
 * LIKE matches ("%": all). */
static int tally_sum(const char *like, int span)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT coalesce(sum(completed), 0) FROM evf_event_tally "
	         "WHERE type LIKE ? AND span = %d", span);
	return query_int(sql, like, -1);
}

/* Completions, an operator's included, are counted per second in the
 * tally; buckets older than an hour become minutes, older than a day
 * hours, and every window still counts them. */
static void test_tally_counts_and_folds(void **state)
{
	(void)state;
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	EVF_OK_OR_FAIL(open_fresh(&db, &o));
	complete_n(db, "a", 3);
	assert_int_equal(completed_since(db, 60), 3);
	EVF_OK_OR_FAIL(evf_emit(db, "b", "{}", NULL, NULL));
	EVF_OK_OR_FAIL(evf_emit(db, "b", "{}", NULL, NULL));
	evf_filter f = EVF_FILTER_INIT;
	f.type = "b";
	int64_t n = 0;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_MARK_PROCESSED, &f, 0, false, &n));
	assert_int_equal(n, 2);
	assert_int_equal(completed_since(db, 60), 5);
	evf_activity *a;
	EVF_OK_OR_FAIL(evf_activity_get(db, evf_now() - 60 * 1000000LL, &a));
	assert_int_equal(a->ntypes, 2);
	assert_string_equal(a->types[1].type, "b");
	assert_int_equal(a->types[1].c.completed, 2);
	evf_activity_free(a);
	/* one batch of interleaved types: a row per type */
	const char *mixed[] = { "m2", "m1", "m2", "m1", "m2" };
	for (size_t i = 0; i < 5; i++)
		EVF_OK_OR_FAIL(evf_emit(db, mixed[i], "{}", NULL, NULL));
	evf_worker *w = completer(db, mixed, 2);
	size_t got;
	EVF_OK_OR_FAIL(evf_worker_step(w, &got));
	assert_int_equal(got, 5);
	evf_worker_free(w);
	EVF_OK_OR_FAIL(evf_activity_get(db, evf_now() - 60 * 1000000LL, &a));
	assert_int_equal(a->all.completed, 10);
	assert_int_equal(a->ntypes, 4);
	assert_string_equal(a->types[2].type, "m1");
	assert_int_equal(a->types[2].c.completed, 2);
	assert_string_equal(a->types[3].type, "m2");
	assert_int_equal(a->types[3].c.completed, 3);
	evf_activity_free(a);
	evf_close(db);

	/* seconds from two hours ago, a minute from two days ago */
	assert_int_equal(exec_raw("INSERT INTO evf_event_tally SELECT 1, now - 7200, 'a', 4 "
		"FROM (SELECT CAST(strftime('%s', 'now') AS INTEGER) AS now); "
		"INSERT INTO evf_event_tally SELECT 1, now - 7199, 'a', 1 "
		"FROM (SELECT CAST(strftime('%s', 'now') AS INTEGER) AS now); "
		"INSERT INTO evf_event_tally SELECT 60, m - m % 60, 'a', 6 "
		"FROM (SELECT CAST(strftime('%s', 'now') AS INTEGER) - 172800 AS m)"), 0);
	EVF_OK_OR_FAIL(reopen(&db, &o));
	assert_int_equal(completed_since(db, 3 * 86400), 21);
	complete_n(db, "a", 1); /* a new connection's first completion folds */
	assert_int_equal(query_int("SELECT count(*) FROM evf_event_tally WHERE span = 1 AND "
		"at < CAST(strftime('%s', 'now') AS INTEGER) - 3660 AND ? IS NOT NULL", "", -1), 0);
	assert_int_equal(tally_sum("%", 60), 5);
	assert_int_equal(tally_sum("%", 3600), 6);
	assert_int_equal(completed_since(db, 60), 11);
	assert_int_equal(completed_since(db, 3 * 3600), 16);
	assert_int_equal(completed_since(db, 3 * 86400), 22);
	evf_close(db);
}

/* A table made before the tally keeps counting through processed_at
 * until its next init, which tallies what it had completed (not what
 * failed) and drops the index; a second init counts nothing twice. */
static void tally_made_from_processed_at(bool text)
{
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	char sql[1024];
	EVF_OK_OR_FAIL(open_fresh_form(&db, &o, text));
	complete_n(db, "a", 3);
	evf_close(db);
	/* done two hours and three days ago, and now; one that failed */
#define AGO(m) (text ? "strftime('%Y-%m-%d %H:%M:%f', 'now'" m ")" : \
	"CAST((julianday('now'" m ") - 2440587.5) * 86400000000 AS INTEGER)")
	snprintf(sql, sizeof sql, "DROP TABLE evf_event_tally; CREATE INDEX "
		"evf_event_processed_at ON evf_event (processed_at) WHERE processed_at IS NOT NULL; "
		"UPDATE evf_event SET processed_at = %s WHERE id = 1; "
		"UPDATE evf_event SET processed_at = %s WHERE id = 2; "
		"INSERT INTO evf_event (type, parameters, date, processed, error, processed_at) "
		"VALUES ('x', '{}', %s, 1, 1, %s)", AGO(", '-2 hours'"), AGO(", '-3 days'"),
		AGO(""), AGO(""));
#undef AGO
	assert_int_equal(exec_raw(sql), 0);
	assert_int_equal(query_int("SELECT count(*) FROM evf_event WHERE typeof(processed_at) "
	                           "= ?", text ? "text" : "integer", -1), 4);
	EVF_OK_OR_FAIL(reopen(&db, &o));
	assert_int_equal(completed_since(db, 60), 1);
	assert_int_equal(completed_since(db, 3 * 3600), 2);
	assert_int_equal(completed_since(db, 4 * 86400), 3);
	complete_n(db, "c", 1);
	assert_int_equal(completed_since(db, 60), 2);
	EVF_OK_OR_FAIL(evf_init(db));
	assert_index_set();
	/* each in a bucket as wide as the fold leaves one of its age */
	assert_int_equal(tally_sum("a", 1), 1);
	assert_int_equal(tally_sum("a", 60), 1);
	assert_int_equal(tally_sum("a", 3600), 1);
	assert_int_equal(completed_since(db, 60), 2);
	assert_int_equal(completed_since(db, 3 * 3600), 3);
	assert_int_equal(completed_since(db, 4 * 86400), 4);
	/* an index an older release's init made again goes again */
	assert_int_equal(exec_raw("CREATE INDEX evf_event_processed_at ON evf_event "
	                          "(processed_at) WHERE processed_at IS NOT NULL"), 0);
	EVF_OK_OR_FAIL(evf_init(db));
	assert_index_set();
	assert_int_equal(completed_since(db, 4 * 86400), 4);
	complete_n(db, "c", 1);
	assert_int_equal(completed_since(db, 60), 3);
	evf_close(db);
}

static void test_tally_made_from_processed_at(void **state)
{
	(void)state;
	tally_made_from_processed_at(false);
}

static void test_tally_made_from_processed_at_text(void **state)
{
	(void)state;
	tally_made_from_processed_at(true);
}

/* The tables evf makes hold times as integers, and refuse text written
 * by hand (which would sort after every integer and never be ready);
 * a table of the older text form keeps it; an archive table of the
 * other form is refused rather than filled with times nobody can read. */
static void test_times_in_the_tables_form(void **state)
{
	(void)state;
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	EVF_OK_OR_FAIL(open_fresh(&db, &o));
	EVF_OK_OR_FAIL(evf_emit(db, "a", "{}", NULL, NULL));
	complete_n(db, "b", 1);
	assert_int_equal(query_int("SELECT count(*) FROM evf_event WHERE typeof(date) = ? AND "
	                           "typeof(not_before) = ?1", "integer", -1), 2);
	assert_int_equal(query_int("SELECT typeof(processed_at) = ? FROM evf_event WHERE "
	                           "type = 'b'", "integer", -1), 1);
	assert_int_equal(exec_raw("INSERT INTO evf_event (type, date) VALUES "
	                          "('c', '2026-01-01 00:00:00.000000')"), -1);
	assert_int_equal(exec_raw("UPDATE evf_event SET not_before = '2026-01-01' "
	                          "WHERE type = 'a'"), -1);
	/* by hand, as integer microseconds: ready at once */
	assert_int_equal(exec_raw("INSERT INTO evf_event (type, date) VALUES ('c', "
		"CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"), 0);
	complete_n(db, "c", 0);
	assert_int_equal(query_int("SELECT processed FROM evf_event WHERE type = ?", "c", -1), 1);
	evf_retention r = EVF_RETENTION_INIT;
	evf_retention_result res;
	r.older_than = evf_now() + 1000000;
	r.to_table = "arch_text";
	assert_int_equal(exec_raw("CREATE TABLE arch_text (id INTEGER PRIMARY KEY, date TEXT)"), 0);
	assert_int_equal(evf_archive(db, &r, &res), EVF_ESCHEMA);
	assert_non_null(strstr(evf_error_last(), "archive into another table"));
	r.to_table = "arch_new";
	EVF_OK_OR_FAIL(evf_archive(db, &r, &res));
	assert_int_equal(res.total, 2);
	assert_int_equal(query_int("SELECT count(*) FROM arch_new WHERE typeof(date) = ? AND "
	                           "typeof(processed_at) = ?1", "integer", -1), 2);
	evf_close(db);

	EVF_OK_OR_FAIL(open_fresh_form(&db, &o, true));
	complete_n(db, "b", 2);
	assert_int_equal(query_int("SELECT count(*) FROM evf_event WHERE typeof(date) = ? AND "
	                           "typeof(processed_at) = ?1", "text", -1), 2);
	r.older_than = evf_now() + 1000000;
	r.to_table = "arch_int";
	assert_int_equal(exec_raw("CREATE TABLE arch_int (id INTEGER PRIMARY KEY, date INTEGER)"), 0);
	assert_int_equal(evf_archive(db, &r, &res), EVF_ESCHEMA);
	r.to_table = "arch_text";
	EVF_OK_OR_FAIL(evf_archive(db, &r, &res));
	assert_int_equal(query_int("SELECT count(*) FROM arch_text WHERE typeof(date) = ?",
	                           "text", -1), 2);
	evf_close(db);
}

static int tally_tables(void)
{
	return query_int("SELECT count(*) FROM sqlite_master WHERE name = ?", "evf_event_tally", -1);
}

/* The tally is bookkeeping: a completion stands when it cannot be
 * counted.  It goes with its table, starts empty with a new table of the
 * same name, and a table of that name that is not a tally is never used,
 * filled or dropped. */
static void test_tally_belongs_to_its_table(void **state)
{
	(void)state;
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	EVF_OK_OR_FAIL(open_fresh(&db, &o));
	complete_n(db, "a", 2);
	assert_int_equal(exec_raw("DROP TABLE evf_event_tally"), 0);
	complete_n(db, "a", 1);
	evf_filter f = EVF_FILTER_INIT;
	f.states = 1u << EVF_STATE_DONE;
	int64_t n = 0;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 3);
	EVF_OK_OR_FAIL(evf_init(db));
	assert_int_equal(completed_since(db, 60), 3);

	EVF_OK_OR_FAIL(evf_drop(db));
	assert_int_equal(tally_tables(), 0);
	EVF_OK_OR_FAIL(evf_init(db));
	complete_n(db, "a", 2);
	assert_int_equal(exec_raw("DROP TABLE evf_event"), 0); /* by hand: the tally stays */
	assert_int_equal(tally_tables(), 1);
	EVF_OK_OR_FAIL(evf_init(db));
	assert_int_equal(completed_since(db, 60), 0);

	EVF_OK_OR_FAIL(evf_drop(db));
	assert_int_equal(exec_raw("CREATE TABLE evf_event_tally (note TEXT)"), 0);
	assert_int_equal(evf_init(db), EVF_ESCHEMA);
	assert_non_null(strstr(evf_error_last(), "evf_event_tally exists but is not evf's"));
	EVF_OK_OR_FAIL(evf_drop(db));
	assert_int_equal(tally_tables(), 1);
	evf_close(db);
}

static const struct CMUnitTest sqlite_tests[] = {
	cmocka_unit_test(test_outbox_joins_callers_transaction),
	cmocka_unit_test(test_claim_keeps_index_after_analyze),
	cmocka_unit_test(test_missing_file_is_not_created),
	cmocka_unit_test(test_index_set_replaces_older_one),
	cmocka_unit_test(test_batch_failure_inserts_nothing),
	cmocka_unit_test(test_tally_counts_and_folds),
	cmocka_unit_test(test_tally_made_from_processed_at),
	cmocka_unit_test(test_tally_made_from_processed_at_text),
	cmocka_unit_test(test_times_in_the_tables_form),
	cmocka_unit_test(test_tally_belongs_to_its_table),
};

int main(void)
{
	static const contract_backend b = {
		"sqlite", open_fresh, reopen, exec_raw, column_count, django_ddl,
		sqlite_tests, sizeof sqlite_tests / sizeof sqlite_tests[0],
	};
	static const contract_backend text = {
		"sqlite-text-times", open_fresh, reopen, exec_raw, column_count, django_ddl,
		NULL, 0,
	};
	int rc = contract_run(&b);
	text_times = true;
	rc |= contract_run(&text);
	free(last_path);
	return rc;
}
