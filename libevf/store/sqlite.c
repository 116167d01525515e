/*
 * sqlite.c - the SQLite backend: the embedded default.
 *
 * Timestamps are integer microseconds since the epoch in the tables evf
 * makes, and TEXT "YYYY-MM-DD HH:MM:SS.ffffff" UTC in tables of the
 * original package (Django's format; fixed width makes text comparison
 * equal time comparison) and of earlier evf builds: bind_time() writes the
 * table's form, col_time() reads either.  Writes run in BEGIN IMMEDIATE so
 * that the busy timeout, not a failed lock upgrade, decides who waits.
 */
#include "evf_internal.h"

#include <sqlite3.h>
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STMT_CACHE 24

typedef struct sq_store {
	evf_store base;
	sqlite3 *db;
	bool borrowed;   /* the caller's connection: never closed, no pragmas */
	int extended;    /* 1 extended, 0 basic, -1 not known yet */
	bool basic_tx;   /* a basic-table batch holds the write transaction */
	unsigned have_ext; /* extended columns present (bits of store/ddl.c) */
	bool int_times;  /* timestamps as integer microseconds, not TEXT */
	char qt[64];     /* the quoted table name */
	char qtally[72]; /* the quoted name of its completion tally */
	int tally;       /* 1 the table has its tally, 0 not, -1 not known yet */
	int64_t folded;  /* the minute this connection last folded the tally */
	struct { char *sql; sqlite3_stmt *st; } cache[STMT_CACHE];
	int cache_next;
	int cache_last;  /* the slot prepare() returned last: never evicted next */
	/* BEGIN IMMEDIATE and COMMIT, prepared once; not in the cache, where
	 * preparing them could evict a statement the caller is about to step */
	sqlite3_stmt *tx[2];
	int64_t tally_checked; /* when s->tally was last found to be 0 (us) */
} sq_store;

#define SQ(s) ((sq_store *)(s))

/* Both lists name the columns in the order read_row() expects. */
#define EXT_COLS "id, type, parameters, date, processed, error, error_message, " \
	"error_code, idempotency_key, correlation_id, priority, not_before, " \
	"attempts, max_attempts, last_error_at, processed_at, dead, locked_by, " \
	"locked_until"
#define BASIC_COLS "id, type, parameters, date, processed, error, error_message, " \
	"NULL, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, 0, NULL, NULL"

/* The evf code of a SQLite result code. */
static int evf_code(int rc)
{
	if (rc == SQLITE_NOMEM)
		return EVF_ENOMEM;
	return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? EVF_EBUSY : EVF_ESTORE;
}

static int sq_err(sq_store *s, int rc, const char *what)
{
	return evfi_fail(evf_code(rc), "%s: %s", what, sqlite3_errmsg(s->db));
}

static int exec_sql(sq_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int code = rc == SQLITE_BUSY ? EVF_EBUSY : EVF_ESTORE;
		evfi_fail(code, "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

/* Statements the hot paths run again and again are prepared once.  The
 * statement returned last is never the one evicted, so a caller may hold
 * two at once (prepared one after the other). */
static int prepare(sq_store *s, const char *sql, sqlite3_stmt **out)
{
	for (int i = 0; i < STMT_CACHE; i++)
		if (s->cache[i].sql && !strcmp(s->cache[i].sql, sql)) {
			sqlite3_reset(s->cache[i].st);
			sqlite3_clear_bindings(s->cache[i].st);
			*out = s->cache[i].st;
			s->cache_last = i;
			return 0;
		}
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "preparing a statement");
	int slot = s->cache_next == s->cache_last ? (s->cache_next + 1) % STMT_CACHE
	                                          : s->cache_next;
	s->cache_next = (slot + 1) % STMT_CACHE;
	s->cache_last = slot;
	free(s->cache[slot].sql);
	sqlite3_finalize(s->cache[slot].st);
	s->cache[slot].sql = strdup(sql);
	s->cache[slot].st = st;
	if (!s->cache[slot].sql) {
		sqlite3_finalize(st);
		s->cache[slot].st = NULL;
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	*out = st;
	return 0;
}

static void cache_clear(sq_store *s)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(s->cache[i].st);
		free(s->cache[i].sql);
		s->cache[i].st = NULL;
		s->cache[i].sql = NULL;
	}
}

/* ---- binding by name ---------------------------------------------------- */

static int idx(sqlite3_stmt *st, const char *name)
{
	return sqlite3_bind_parameter_index(st, name);
}

static void bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = idx(st, name);
	if (i)
		v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static void bind_int(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = idx(st, name);
	if (i)
		sqlite3_bind_int64(st, i, v);
}

/* A time in the table's form: comparisons in SQL then compare times (an
 * integer never equals or orders with text the way times do). */
static void bind_time_at(const sq_store *s, sqlite3_stmt *st, int i, evf_time t)
{
	char buf[40];
	if (!t)
		sqlite3_bind_null(st, i);
	else if (s->int_times)
		sqlite3_bind_int64(st, i, t);
	else
		sqlite3_bind_text(st, i, evf_time_format(buf, sizeof buf, t), -1, SQLITE_TRANSIENT);
}

static void bind_time(const sq_store *s, sqlite3_stmt *st, const char *name, evf_time t)
{
	int i = idx(st, name);
	if (i)
		bind_time_at(s, st, i, t);
}

/* ---- transactions -------------------------------------------------------- */

/* BEGIN IMMEDIATE (0) or COMMIT (1) of the hot paths, prepared once:
 * through sqlite3_exec they were parsed again each time, 4% of a drain. */
static int tx_step(sq_store *s, int which)
{
	static const char *const sql[2] = { "BEGIN IMMEDIATE", "COMMIT" };
	sqlite3_stmt *st = s->tx[which];
	int rc;
	if (!st) {
		rc = sqlite3_prepare_v3(s->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK)
			return sq_err(s, rc, "preparing a statement");
		s->tx[which] = st;
	}
	rc = sqlite3_step(st);
	/* the message alone, as from exec_sql: callers say what they were doing */
	rc = rc == SQLITE_DONE ? 0 : evfi_fail(evf_code(rc), "%s", sqlite3_errmsg(s->db));
	sqlite3_reset(st);
	return rc;
}

static int begin(sq_store *s)
{
	return s->basic_tx ? 0 : tx_step(s, 0);
}

static int commit(sq_store *s)
{
	if (s->basic_tx)
		return 0;
	int rc = tx_step(s, 1);
	if (rc)
		exec_sql(s, "ROLLBACK");
	return rc;
}

static void rollback(sq_store *s)
{
	if (s->basic_tx)
		return; /* end_batch decides */
	if (!sqlite3_get_autocommit(s->db)) {
		char saved[512];
		snprintf(saved, sizeof saved, "%s", evf_error_last());
		exec_sql(s, "ROLLBACK");
		evfi_fail(EVF_ESTORE, "%s", saved); /* keep the first error */
	}
}

/* ---- schema ---------------------------------------------------------------- */

/* ---- the completion tally ---------------------------------------------------
 *
 * Completions are counted per second and type in "<table>_tally" instead
 * of being found through an index on processed_at: a batch adds one row
 * per type where the index added an entry per event (an eighth to a
 * sixth of a drain).  Health, metrics and stats read their windows from
 * it.  Buckets older than an hour are folded into minutes, older than a
 * day into hours, so it stays small; a window's start is exact to the
 * width of the buckets it falls in.  init and migrate make it, count the
 * completions already recorded into it and drop the index.  Counting is
 * bookkeeping: a tally that cannot be written never costs a completion. */

#define TALLY_MINUTE_AFTER 3600   /* seconds before buckets become minutes */
#define TALLY_HOUR_AFTER 86400    /* and minutes become hours */

/* The n integers of the one row a query about this table returns (:t is
 * its name).  Not from the statement cache: preparing there could evict
 * a statement a caller holds. */
static int table_ints(sq_store *s, const char *sql, int *out, int n, const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, what);
	bind_text(st, ":t", s->base.table);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		for (int i = 0; i < n; i++)
			out[i] = sqlite3_column_int(st, i);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sq_err(s, rc, what);
}

/* Whether "<table>_tally" is there: 1 with the tally's four columns, 0
 * not at all, -1 as a table of another shape (not ours: never used,
 * written or dropped). */
static int tally_shape(sq_store *s, int *out)
{
	int v[2];
	int rc = table_ints(s, "SELECT count(*), coalesce(sum(name IN ('span', 'at', 'type', "
	                    "'completed')), 0) FROM pragma_table_info(:t || '_tally')", v, 2,
	                    "looking for the completion tally");
	if (!rc)
		*out = v[0] == 0 ? 0 : v[0] == 4 && v[1] == 4 ? 1 : -1;
	return rc;
}

/* s->tally, looked up again when unknown and, while there is none, once
 * a minute: another process's init or migrate can make it under running
 * workers, whose completions are then counted within the minute. */
static bool tally_on(sq_store *s)
{
	evf_time now = evf_now();
	int shape;
	if (s->tally == 1 || (s->tally == 0 && now - s->tally_checked < 60 * (evf_time)1000000))
		return s->tally == 1;
	if (s->extended != 1 || tally_shape(s, &shape)) {
		evfi_error_clear(); /* none for now; looked up again later */
		shape = 0;
	}
	s->tally = shape == 1;
	s->tally_checked = now;
	return s->tally == 1;
}

static int table_exists(sq_store *s, bool *out)
{
	int n = 0;
	int rc = table_ints(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
	                    "name = :t", &n, 1, "looking for the table");
	*out = n > 0;
	return rc;
}

/* The tally, what the table has completed so far counted into it (in
 * buckets as wide as the fold would have left them), and no index on
 * processed_at: appended to an init's or migration's script.  A tally
 * left by an event table of this name that was dropped by hand starts
 * again empty with the new table. */
static int tally_ddl(sq_store *s, evfi_buf *b)
{
	int shape;
	bool table;
	int rc = tally_shape(s, &shape);
	if (!rc)
		rc = table_exists(s, &table);
	if (rc)
		return rc;
	if (shape < 0)
		return evfi_fail(EVF_ESCHEMA, "table %s_tally exists but is not evf's completion "
		                 "tally (span, at, type, completed): rename it", s->base.table);
	if (shape == 1 && !table)
		evfi_buf_printf(b, "DELETE FROM %s;\n", s->qtally);
	if (shape == 0) {
		evfi_buf_printf(b, "CREATE TABLE %s (span INTEGER NOT NULL, at INTEGER NOT NULL, "
			"type TEXT NOT NULL, completed INTEGER NOT NULL, PRIMARY KEY (span, at, type)) "
			"WITHOUT ROWID;\n", s->qtally);
		evfi_buf_printf(b, "INSERT INTO %s (span, at, type, completed) "
			"SELECT span, e - e %% span, type, count(*) FROM (SELECT type, e, CASE "
			"WHEN e >= now - %d THEN 1 WHEN e >= now - %d THEN 60 ELSE 3600 END AS span "
			"FROM (SELECT type, CASE typeof(processed_at) WHEN 'integer' THEN "
			"processed_at / 1000000 ELSE CAST(strftime('%%s', processed_at) AS INTEGER) END AS e, "
			"CAST(strftime('%%s', 'now') AS INTEGER) AS now FROM %s WHERE processed_at "
			"IS NOT NULL AND processed = 1 AND error = 0 AND dead = 0) WHERE e IS NOT NULL) "
			"GROUP BY 1, 2, 3;\n", s->qtally, TALLY_MINUTE_AFTER, TALLY_HOUR_AFTER, s->qt);
	}
	evfi_buf_printf(b, "DROP INDEX IF EXISTS \"%s_processed_at\";\n", s->base.table);
	return 0;
}

/* One statement of a fold, run once a minute: not worth a cache slot. */
static int fold_step(sq_store *s, const char *sql, int64_t before)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "folding the completion tally");
	bind_int(st, ":before", before);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "folding the completion tally");
}

/* Fold the buckets of one width older than `before` (a multiple of the
 * wider width) into buckets of the wider one. */
static int tally_fold_span(sq_store *s, int from, int to, int64_t before)
{
	char add[512], drop[160];
	snprintf(add, sizeof add, "INSERT INTO %s (span, at, type, completed) SELECT %d, "
	         "at - at %% %d, type, sum(completed) FROM %s WHERE span = %d AND at < :before "
	         "GROUP BY 2, 3 ON CONFLICT (span, at, type) DO UPDATE SET completed = "
	         "completed + excluded.completed", s->qtally, to, to, s->qtally, from);
	snprintf(drop, sizeof drop, "DELETE FROM %s WHERE span = %d AND at < :before",
	         s->qtally, from);
	int rc = fold_step(s, add, before);
	return rc ? rc : fold_step(s, drop, before);
}

static int cmp_type(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add n completions of a type in second sec. */
static int tally_upsert(sq_store *s, const char *type, int64_t n, int64_t sec)
{
	char sql[320];
	sqlite3_stmt *st;
	snprintf(sql, sizeof sql, "INSERT INTO %s (span, at, type, completed) VALUES "
	         "(1, :at, :type, :n) ON CONFLICT (span, at, type) DO UPDATE SET "
	         "completed = completed + excluded.completed", s->qtally);
	int rc = prepare(s, sql, &st);
	if (rc)
		return rc;
	bind_int(st, ":at", sec);
	bind_text(st, ":type", type);
	bind_int(st, ":n", n);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "counting completions");
}

/* Add the completions whose lease was held (applied) to the tally, one
 * row per type. */
static int tally_count(sq_store *s, const evf_lease *leases, size_t n, const bool *applied,
                       int64_t sec)
{
	size_t k = 0;
	int rc = 0;

	const char **types = malloc((n ? n : 1) * sizeof *types);
	if (!types)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (applied[i] && leases[i].type)
			types[k++] = leases[i].type;
	/* a batch is mostly of one type, but need not be */
	for (size_t i = 1; i < k; i++)
		if (strcmp(types[i], types[0])) {
			qsort(types, k, sizeof *types, cmp_type);
			break;
		}
	for (size_t i = 0, run; !rc && i < k; i += run) {
		for (run = 1; i + run < k && !strcmp(types[i + run], types[i]); run++)
			;
		rc = tally_upsert(s, types[i], (int64_t)run, sec);
	}
	free(types);
	return rc;
}

/* After counting (rc its outcome): fold the tally once a minute, in the
 * completion's transaction.  A failure leaves the completion standing,
 * unless it took the transaction with it; the tally is then looked up
 * again at the next completion. */
static int tally_done(sq_store *s, int rc, int64_t sec)
{
	int64_t m = sec - TALLY_MINUTE_AFTER, h = sec - TALLY_HOUR_AFTER;
	if (!rc && sec / 60 != s->folded) {
		s->folded = sec / 60;
		if (!(rc = tally_fold_span(s, 1, 60, m - m % 60)))
			rc = tally_fold_span(s, 60, 3600, h - h % 3600);
	}
	if (!rc || sqlite3_get_autocommit(s->db))
		return rc;
	evfi_error_clear();
	s->tally = -1;
	return 0;
}

/* Count completions (leases without a type are not counted). */
static int tally_add(sq_store *s, const evf_lease *leases, size_t n, const bool *applied,
                     evf_time now)
{
	int64_t sec = now / 1000000;
	return tally_done(s, tally_count(s, leases, n, applied, sec), sec);
}

/* Count completions already added up by type (in the done column). */
static int tally_add_types(sq_store *s, const evf_stats *by_type, evf_time now)
{
	int64_t sec = now / 1000000;
	int rc = 0;
	for (size_t i = 0; !rc && i < by_type->ntypes; i++)
		rc = tally_upsert(s, by_type->types[i].type,
		                  by_type->types[i].counts[EVF_STATE_DONE], sec);
	return tally_done(s, rc, sec);
}

/* Whether a table's date column is declared INTEGER (qt: quoted name). */
static int date_is_integer(sq_store *s, const char *qt, int *out)
{
	sqlite3_stmt *st;
	*out = 0;
	evfi_buf q = { 0 };
	evfi_buf_printf(&q, "PRAGMA table_info(%s)", qt);
	if (q.oom)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	int rc = sqlite3_prepare_v2(s->db, q.data, -1, &st, NULL);
	evfi_buf_free(&q);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "reading a table's columns");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *type = (const char *)sqlite3_column_text(st, 2);
		if (name && type && !strcmp(name, "date"))
			*out = !sqlite3_stricmp(type, "INTEGER");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "reading a table's columns");
}

static int detect_schema(sq_store *s)
{
	char sql[128];
	sqlite3_stmt *st;
	unsigned have_basic = 0, have_ext = 0;
	int ncols = 0;

	snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", s->qt);
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "reading the table's columns");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		bool basic;
		unsigned bit = evfi_column_bit(name ? name : "", &basic);
		ncols++;
		if (basic)
			have_basic |= bit;
		else
			have_ext |= bit;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sq_err(s, rc, "reading the table's columns");
	if ((rc = evfi_schema_verdict(s->base.table, ncols, have_basic)))
		return rc;
	/* the date column tells the table's form: "datetime" (Django), "TEXT"
	 * (earlier evf builds) or "INTEGER" */
	int int_times;
	if ((rc = date_is_integer(s, s->qt, &int_times)))
		return rc;
	s->have_ext = have_ext;
	s->int_times = int_times;
	s->extended = have_ext == EVFI_ALL_EXT;
	int shape = 0;
	if (s->extended && (rc = tally_shape(s, &shape))) {
		s->extended = -1; /* all of it again next time */
		return rc;
	}
	s->tally = shape == 1;
	s->tally_checked = evf_now();
	return 0;
}

static int sq_schema_extended(evf_store *base)
{
	sq_store *s = SQ(base);
	if (s->extended < 0) {
		int rc = detect_schema(s);
		if (rc)
			return rc;
	}
	return s->extended;
}

/* Operations that need leases, retries or scheduling call this. */
static int need_extended(sq_store *s, const char *what)
{
	int rc = sq_schema_extended(&s->base);
	if (rc < 0)
		return rc;
	return rc == 0 ? evfi_fail_basic(what, s->base.table) : 0;
}

/* The indexes of earlier releases that this one replaces: (processed,
 * type), now (type); whole (error, date) and idempotency indexes, now
 * partial (store/ddl.c).  CREATE INDEX IF NOT EXISTS would keep an old
 * one by its name, so they are dropped, to be made again; only this
 * table's (index names are shared by every table of the database). */
static int drop_old_indexes(sq_store *s, evfi_buf *b)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "SELECT name FROM sqlite_master WHERE type = 'index' AND "
	                 "tbl_name = :t AND (name = :t || '_processed_type' OR (name IN "
	                 "(:t || '_error_date', :t || '_idempotency') AND sql NOT LIKE '% WHERE %'))",
	                 &st);
	if (rc)
		return rc;
	bind_text(st, ":t", s->base.table);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		evfi_buf_printf(b, "DROP INDEX \"%s\";\n", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "reading the table's indexes");
}

/* init (create) and migrate (add what is missing) share one transaction
 * shape: look at the table, build the DDL, run it, record the version. */
static int schema_change(sq_store *s, bool migrate, bool dry_run, char **sql_out)
{
	const char *t = s->base.table, *q = s->qt;
	evfi_buf b = { 0 };
	int rc;

	if (sql_out)
		*sql_out = NULL;
	if ((rc = exec_sql(s, dry_run ? "BEGIN" : "BEGIN IMMEDIATE")))
		return evfi_wrap(rc, "%s %s", migrate ? "migrating" : "initialising", t);
	s->extended = -1;
	rc = detect_schema(s);
	if (migrate && rc) {
		exec_sql(s, "ROLLBACK");
		return evfi_fail(rc, "%s", evf_error_last());
	}
	if (!migrate && rc == 0 && !s->extended) {
		exec_sql(s, "ROLLBACK");
		return evfi_fail(EVF_EBASIC, "table %s exists as a basic table from the "
		                 "original package; init never alters it ('evfctl migrate' "
		                 "adds the extended columns)", t);
	}
	evfi_error_clear();
	if (migrate) {
		/* the new columns take the form of the table's date */
		evfi_ddl_add_columns(&b, q, s->have_ext, false, s->int_times,
		                     s->base.opts->max_attempts);
	} else {
		/* A table that exists keeps its form (detect_schema); a new one
		 * gets integer times: rows ~70 bytes shorter than with text, and
		 * 10% fewer instructions per drained event (design-notes.md). */
		bool int_times = rc != 0 || s->int_times;
		evfi_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY "
			"AUTOINCREMENT, type TEXT NOT NULL, parameters TEXT NOT NULL DEFAULT '{}', ", q);
		evfi_ddl_date(&b, int_times);
		evfi_buf_puts(&b, ", processed INTEGER NOT NULL DEFAULT 0, error INTEGER NOT "
			"NULL DEFAULT 0, error_message TEXT");
		evfi_ddl_columns(&b, false, int_times, s->base.opts->max_attempts);
		evfi_buf_puts(&b, ");\n");
	}
	if (!(rc = drop_old_indexes(s, &b))) {
		evfi_ddl_indexes(&b, t, q, false);
		rc = tally_ddl(s, &b);
	}
	if (rc) {
		exec_sql(s, "ROLLBACK");
		evfi_buf_free(&b);
		return evfi_wrap(rc, "%s %s", migrate ? "migrating" : "initialising", t);
	}
	if (b.oom) {
		exec_sql(s, "ROLLBACK");
		evfi_buf_free(&b);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if (dry_run) {
		exec_sql(s, "ROLLBACK");
		char now[40];
		evfi_buf_printf(&b, "INSERT INTO evf_schema (table_name, version, updated_at) "
		                "VALUES ('%s', 1, '%s') ON CONFLICT (table_name) DO UPDATE SET "
		                "version = excluded.version, updated_at = excluded.updated_at;\n",
		                t, evf_time_format(now, sizeof now, evf_now()));
		*sql_out = b.data;
		return b.oom ? (evfi_buf_free(&b), evfi_fail(EVF_ENOMEM, "out of memory")) : 0;
	}
	rc = exec_sql(s, b.data);
	if (sql_out)
		*sql_out = b.data;
	else
		evfi_buf_free(&b);
	if (!rc) {
		sqlite3_stmt *st;
		rc = prepare(s, "INSERT INTO evf_schema (table_name, version, updated_at) "
		             "VALUES (:t, 1, :now) ON CONFLICT (table_name) DO UPDATE "
		             "SET version = excluded.version, updated_at = excluded.updated_at", &st);
		if (!rc) {
			char now[40];
			bind_text(st, ":t", t);
			/* evf_schema is shared by every table: always text */
			bind_text(st, ":now", evf_time_format(now, sizeof now, evf_now()));
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = sq_err(s, sqlite3_errcode(s->db), "recording the schema version");
			sqlite3_reset(st);
		}
	}
	if (rc) {
		rollback(s);
		return evfi_wrap(rc, "%s %s", migrate ? "migrating" : "initialising", t);
	}
	rc = commit(s);
	s->extended = -1;
	s->tally = -1;
	cache_clear(s); /* statements prepared against the old shape */
	return rc;
}

static int sq_init(evf_store *base)
{
	return schema_change(SQ(base), false, false, NULL);
}

static int sq_migrate(evf_store *base, bool dry_run, char **sql_out)
{
	return schema_change(SQ(base), true, dry_run, sql_out);
}

/* ---- rows ------------------------------------------------------------------ */

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v ? strdup((const char *)v) : NULL;
}

static evf_time col_time(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
		return sqlite3_column_int64(st, i);
	const unsigned char *v = sqlite3_column_text(st, i);
	evf_time t = 0;
	if (v && evf_time_parse(&t, (const char *)v))
		t = 0;
	return t;
}

static bool col_bool(sqlite3_stmt *st, int i)
{
	return sqlite3_column_int(st, i) != 0;
}

static int read_row(sqlite3_stmt *st, evf_event *ev, evf_time now)
{
	memset(ev, 0, sizeof *ev);
	ev->id = sqlite3_column_int64(st, 0);
	ev->type = col_str(st, 1);
	ev->parameters = col_str(st, 2);
	ev->date = col_time(st, 3);
	ev->processed = col_bool(st, 4);
	ev->error = col_bool(st, 5);
	ev->error_message = col_str(st, 6);
	ev->error_code = col_str(st, 7);
	ev->idempotency_key = col_str(st, 8);
	ev->correlation_id = col_str(st, 9);
	ev->priority = sqlite3_column_int(st, 10);
	ev->not_before = col_time(st, 11);
	ev->attempts = sqlite3_column_int(st, 12);
	ev->max_attempts = sqlite3_column_int(st, 13);
	ev->last_error_at = col_time(st, 14);
	ev->processed_at = col_time(st, 15);
	ev->dead = col_bool(st, 16);
	ev->locked_by = col_str(st, 17);
	ev->locked_until = col_time(st, 18);
	if (!ev->type)
		ev->type = strdup("");
	if (!ev->parameters)
		ev->parameters = strdup("null");
	ev->state = evfi_state_of(ev, now);
	if (!ev->type || !ev->parameters) {
		evfi_event_clear(ev);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- emit -------------------------------------------------------------------- */

/* The id of the event with this (type, key), or 0. */
static int find_key(sq_store *s, const char *type, const char *key, int64_t *id)
{
	char sql[256];
	sqlite3_stmt *st;
	int rc;

	*id = 0;
	snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE type = :type AND "
	         "idempotency_key = :key", s->qt);
	if ((rc = prepare(s, sql, &st)))
		return rc;
	bind_text(st, ":type", type);
	bind_text(st, ":key", key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(s, rc, "looking up a key");
}

/* Events one INSERT carries.  A statement costs about as much as two rows
 * (its savepoint, the AUTOINCREMENT counter, setting up the program), so
 * a batch goes in statements of up to this many rows; 64 rows x 8 values
 * stays far below SQLite's limit on bound values. */
#define EMIT_ROWS 64
#define EMIT_VALUES 8

/* INSERT of k rows without idempotency keys (or, keyed, of one row that
 * does nothing on a conflict: its key was looked up first).  No RETURNING:
 * SQLite builds a temporary table for it in every statement, about as
 * costly as the row itself; the ids come from the last rowid instead. */
static void emit_sql(const sq_store *s, evfi_buf *b, size_t k, bool keyed)
{
	evfi_buf_printf(b, "INSERT INTO %s (type, parameters, date, processed, error, "
	                "error_message%s) VALUES ", s->qt, s->extended ? ", idempotency_key, "
	                "correlation_id, priority, not_before, max_attempts" : "");
	/* processed, error and error_message spelled out: migrated Django
	 * tables have them NOT NULL without defaults */
	for (size_t j = 0; j < k; j++) {
		if (s->extended)
			evfi_buf_puts(b, j ? ",(?,?,?,0,0,'',?,?,?,?,?)" : "(?,?,?,0,0,'',?,?,?,?,?)");
		else
			evfi_buf_puts(b, j ? ",(?,?,?,0,0,'')" : "(?,?,?,0,0,'')");
	}
	if (keyed)
		evfi_buf_puts(b, " ON CONFLICT DO NOTHING");
}

/* A time of an emit: the batch's time as text is formatted once. */
static void bind_emit_time(const sq_store *s, sqlite3_stmt *st, int i, evf_time t,
                           evf_time now, const char *now_text)
{
	if (t == now && !s->int_times)
		sqlite3_bind_text(st, i, now_text, -1, SQLITE_STATIC);
	else
		bind_time_at(s, st, i, t);
}

/* Insert items[0..k) in one statement; out[] (may be NULL) gets the ids.
 * now_text is the batch's emit time, already formatted. */
static int emit_rows(sq_store *s, const evf_emit_item *items, size_t k, evf_time now,
                     const char *now_text, evf_emit_result *out)
{
	bool keyed = k == 1 && items[0].opts.key;
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	int rc;

	emit_sql(s, &sql, k, keyed);
	rc = sql.oom ? evfi_fail(EVF_ENOMEM, "out of memory") : prepare(s, sql.data, &st);
	evfi_buf_free(&sql);
	if (rc)
		return rc;
	for (size_t j = 0; j < k; j++) {
		const evf_emit_item *it = &items[j];
		const evf_emit_options *o = &it->opts;
		int v = (int)j * (s->extended ? EMIT_VALUES : 3);
		/* SQLITE_STATIC: the caller's strings outlive the step below */
		sqlite3_bind_text(st, v + 1, it->type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, v + 2, it->parameters ? it->parameters : "{}", -1, SQLITE_STATIC);
		bind_emit_time(s, st, v + 3, now, now, now_text);
		if (!s->extended)
			continue;
		evf_time nb = o->not_before ? o->not_before : now + o->delay_ms * 1000;
		o->key ? sqlite3_bind_text(st, v + 4, o->key, -1, SQLITE_STATIC)
		       : sqlite3_bind_null(st, v + 4);
		o->correlation_id ? sqlite3_bind_text(st, v + 5, o->correlation_id, -1, SQLITE_STATIC)
		                  : sqlite3_bind_null(st, v + 5);
		sqlite3_bind_int(st, v + 6, o->priority);
		bind_emit_time(s, st, v + 7, nb, now, now_text);
		sqlite3_bind_int(st, v + 8, o->max_attempts > 0 ? o->max_attempts
		                                                : s->base.opts->max_attempts);
	}
	rc = sqlite3_step(st);
	/* read before reset: both describe this statement */
	sqlite3_int64 last = sqlite3_last_insert_rowid(s->db);
	size_t changed = (size_t)sqlite3_changes(s->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st); /* no pointers into the caller's strings kept */
	if (rc != SQLITE_DONE)
		return sq_err(s, rc, "inserting events");
	if (changed != k)
		return evfi_fail(EVF_ESTORE, "insert of a %s event was ignored for a conflict "
		                 "that is not its idempotency key", items[0].type);
	/* One statement under the write lock numbers its rows consecutively:
	 * each new rowid is one past the largest (AUTOINCREMENT or not, as
	 * long as the table has not reached the largest rowid, where SQLite
	 * fails with AUTOINCREMENT, the only kind evf creates). */
	for (size_t j = 0; out && j < k; j++)
		out[j] = (evf_emit_result){ .id = last - (sqlite3_int64)(k - 1 - j), .duplicate = false };
	return 0;
}

/* Items in order: a keyed one alone (its key is looked up first, since a
 * conflicting INSERT would still use up an id), runs of keyless ones in
 * statements of up to EMIT_ROWS. */
static int emit_items(sq_store *s, const evf_emit_item *items, size_t n, evf_time now,
                      evf_emit_result *out)
{
	char now_text[40];
	int rc;
	if (!s->extended && (rc = evfi_emit_check_basic(items, n, s->base.table)))
		return rc;
	evf_time_format(now_text, sizeof now_text, now);
	for (size_t i = 0; i < n;) {
		const char *key = items[i].opts.key;
		if (key) {
			int64_t id;
			if ((rc = find_key(s, items[i].type, key, &id)))
				return rc;
			if (id) {
				if (out)
					out[i] = (evf_emit_result){ .id = id, .duplicate = true };
				i++;
				continue;
			}
		}
		size_t k = 1;
		while (!key && k < EMIT_ROWS && i + k < n && !items[i + k].opts.key)
			k++;
		/* a few statement sizes only, so that they stay in the statement
		 * cache next to the claim's and the completion's */
		k = k >= EMIT_ROWS ? EMIT_ROWS : k >= 16 ? 16 : k >= 4 ? 4 : 1;
		if ((rc = emit_rows(s, &items[i], k, now, now_text, out ? &out[i] : NULL)))
			return rc;
		i += k;
	}
	return 0;
}

static int sq_emit(evf_store *base, const evf_emit_item *items, size_t n,
                   evf_emit_result *out)
{
	sq_store *s = SQ(base);
	int rc = sq_schema_extended(base);
	if (rc < 0)
		return rc;
	/* Inside the caller's transaction (outbox) a savepoint keeps the batch
	 * all-or-nothing without ending the caller's transaction. */
	bool own = sqlite3_get_autocommit(s->db);
	if ((rc = exec_sql(s, own ? "BEGIN IMMEDIATE" : "SAVEPOINT evf_emit")))
		return evfi_wrap(rc, "emitting");
	rc = emit_items(s, items, n, evf_now(), out);
	if (rc) {
		char saved[512];
		snprintf(saved, sizeof saved, "%s", evf_error_last());
		exec_sql(s, own ? "ROLLBACK" : "ROLLBACK TO evf_emit; RELEASE evf_emit");
		return evfi_fail(rc, "%s", saved);
	}
	if (own)
		return commit(s);
	return exec_sql(s, "RELEASE evf_emit");
}

/* ---- claim and outcomes ---------------------------------------------------- */

static char *json_types(const char *const *types, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(types[i]));
	char *s = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return s;
}

/* Basic tables: take the oldest unprocessed rows and keep the write
 * transaction open until end_batch, so no other worker can take them. */
static int claim_basic(sq_store *s, const evf_claim *c, evf_event ***out, size_t *n)
{
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	char *types = NULL;
	int rc;

	evfi_buf_printf(&sql, "SELECT %s FROM %s WHERE processed = 0", BASIC_COLS, s->qt);
	if (c->types)
		evfi_buf_puts(&sql, " AND type IN (SELECT value FROM json_each(:types))");
	if (c->older_than)
		evfi_buf_puts(&sql, " AND date <= :older");
	if (c->only_errors)
		evfi_buf_puts(&sql, " AND error = 1");
	evfi_buf_puts(&sql, " ORDER BY id LIMIT :n");
	if (sql.oom || (c->types && !(types = json_types(c->types, c->ntypes)))) {
		evfi_buf_free(&sql);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	rc = prepare(s, sql.data, &st);
	evfi_buf_free(&sql);
	if (!rc && !(rc = exec_sql(s, "BEGIN IMMEDIATE")))
		s->basic_tx = true;
	if (rc) {
		free(types);
		return rc;
	}
	bind_text(st, ":types", types);
	free(types);
	bind_time(s, st, ":older", c->older_than);
	size_t cap = (size_t)(c->limit > 0 ? c->limit : 1), got = 0;
	bind_int(st, ":n", (int64_t)cap);
	evf_event **evs = calloc(cap, sizeof *evs);
	evf_time now = evf_now();
	while (evs && (rc = sqlite3_step(st)) == SQLITE_ROW && got < cap) {
		evf_event *ev = malloc(sizeof *ev);
		if (!ev || read_row(st, ev, now)) {
			free(ev);
			rc = SQLITE_NOMEM;
			break;
		}
		ev->attempts = 1; /* the lease of a basic batch is its transaction */
		ev->state = EVF_STATE_RUNNING;
		evs[got++] = ev;
	}
	sqlite3_reset(st);
	if (!evs || rc != SQLITE_DONE) {
		rc = evs ? sq_err(s, rc, "claiming events") : evfi_fail(EVF_ENOMEM, "out of memory");
		for (size_t i = 0; i < got; i++)
			evf_event_free(evs[i]);
		free(evs);
		s->basic_tx = false;
		exec_sql(s, "ROLLBACK");
		return rc;
	}
	*out = evs;
	*n = got;
	return 0;
}

static int sq_end_batch(evf_store *base, bool ok)
{
	sq_store *s = SQ(base);
	if (!s->basic_tx)
		return 0;
	s->basic_tx = false;
	if (ok)
		return commit(s);
	char saved[512];
	snprintf(saved, sizeof saved, "%s", evf_error_last());
	exec_sql(s, "ROLLBACK");
	evfi_fail(EVF_ESTORE, "%s", saved);
	return 0;
}

static char *glob_of(const char *pattern);

/* "[1,2,3]" for json_each. */
static char *json_ids(const int64_t *ids, size_t n)
{
	evfi_buf b = { 0 };
	evfi_buf_add(&b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			evfi_buf_add(&b, ",", 1);
		evfi_buf_add_int(&b, ids[i]); /* a printf per id was 5% of a drain */
	}
	evfi_buf_add(&b, "]", 1);
	return b.oom ? (evfi_buf_free(&b), NULL) : b.data;
}

/* The rows of a list of ids, for an UPDATE's WHERE: "id BETWEEN" when
 * the ids are exactly one run of consecutive ids (a drain's batches
 * nearly always are), else json_each over a JSON list.  With the range
 * SQLite updates the rows as it walks them; the subquery makes it
 * gather the list and then the rows in two temporary indexes first,
 * 2k instructions per row. */
typedef struct id_set {
	bool range;
	int64_t lo, hi;
	char *list; /* when !range */
} id_set;

static bool ids_are_a_run(const int64_t *ids, size_t n, int64_t *lo, int64_t *hi)
{
	*lo = *hi = ids[0];
	for (size_t i = 1; i < n; i++) {
		if (ids[i] < *lo)
			*lo = ids[i];
		if (ids[i] > *hi)
			*hi = ids[i];
	}
	if ((uint64_t)*hi - (uint64_t)*lo != n - 1)
		return false;
	/* n ids over n places: a run unless one is there twice */
	bool *seen = calloc(n, sizeof *seen);
	bool run = seen != NULL;
	for (size_t i = 0; run && i < n; i++) {
		run = !seen[ids[i] - *lo];
		seen[ids[i] - *lo] = true;
	}
	free(seen);
	return run;
}

static int id_set_make(id_set *set, const int64_t *ids, size_t n)
{
	set->list = NULL;
	set->range = n > 0 && ids_are_a_run(ids, n, &set->lo, &set->hi);
	if (!set->range && !(set->list = json_ids(ids, n)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	return 0;
}

static const char *id_set_where(const id_set *set)
{
	return set->range ? "id BETWEEN :lo AND :hi" : "id IN (SELECT value FROM json_each(:ids))";
}

static void id_set_bind(sqlite3_stmt *st, const id_set *set)
{
	if (set->range) {
		bind_int(st, ":lo", set->lo);
		bind_int(st, ":hi", set->hi);
	} else {
		sqlite3_bind_text(st, idx(st, ":ids"), set->list, -1, SQLITE_STATIC);
	}
}

/* After the step: no pointer into the list kept by the statement. */
static void id_set_free(id_set *set, sqlite3_stmt *st)
{
	if (st && !set->range)
		sqlite3_bind_null(st, idx(st, ":ids"));
	free(set->list);
	set->list = NULL;
}

/* The event as the claim leaves it: one more attempt, held by us. */
static int lease_taken(evf_event *ev, const char *worker_id, evf_time until, evf_time now)
{
	char *by = strdup(worker_id);
	if (!by)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	free(ev->locked_by);
	ev->locked_by = by;
	ev->locked_until = until;
	ev->attempts++;
	ev->state = evfi_state_of(ev, now);
	return 0;
}

/* Lease the rows a claim has just read, in the same write transaction. */
static int lease_rows(sq_store *s, const int64_t *ids, size_t n, const char *worker_id,
                      evf_time until)
{
	char sql[200];
	sqlite3_stmt *st = NULL;
	id_set set;
	int rc = id_set_make(&set, ids, n);
	if (rc)
		return rc;
	snprintf(sql, sizeof sql, "UPDATE %s SET locked_by = :w, locked_until = :until, "
	         "attempts = attempts + 1 WHERE %s", s->qt, id_set_where(&set));
	if (!(rc = prepare(s, sql, &st))) {
		bind_text(st, ":w", worker_id);
		bind_time(s, st, ":until", until);
		id_set_bind(st, &set);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			rc = sq_err(s, rc, "leasing claimed events");
		else if ((size_t)sqlite3_changes(s->db) != n) /* we hold the write lock */
			rc = evfi_fail(EVF_ESTORE, "leasing claimed events: %d of %zu rows changed",
			               sqlite3_changes(s->db), n);
		else
			rc = 0;
	}
	id_set_free(&set, st);
	return rc;
}

static int sq_claim(evf_store *base, const evf_claim *c, evf_event ***out, size_t *n)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	char *types = NULL, *skip = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = sq_schema_extended(base)) < 0)
		return rc;
	if (rc == 0)
		return claim_basic(s, c, out, n);
	/* INDEXED BY pins the ready-queue index: with statistics gathered while
	 * every row was pending the planner would otherwise scan the table.
	 * The rows are read first and then leased by id, in one write
	 * transaction: an UPDATE ... RETURNING would gather its rows in a
	 * temporary table, a tenth of a claim's cost. */
	evfi_buf_printf(&sql, "SELECT %s FROM %s INDEXED BY \"%s_ready\" "
		"WHERE processed = 0 AND dead = 0 AND (not_before IS NULL OR not_before <= :now) "
		"AND (locked_until IS NULL OR locked_until <= :now)",
		EXT_COLS, s->qt, s->base.table);
	if (c->types)
		evfi_buf_puts(&sql, " AND type IN (SELECT value FROM json_each(:types))");
	if (c->older_than)
		evfi_buf_puts(&sql, " AND date <= :older");
	if (c->only_errors)
		evfi_buf_puts(&sql, " AND error = 1");
	if (c->max_attempts > 0)
		evfi_buf_puts(&sql, " AND attempts < :maxatt");
	if (c->nskip) /* types a rate limit holds back */
		evfi_buf_puts(&sql, " AND NOT EXISTS (SELECT 1 FROM json_each(:skip) "
		              "WHERE type GLOB value)");
	evfi_buf_puts(&sql, " ORDER BY priority, not_before, id LIMIT :n");
	if (sql.oom || (c->types && !(types = json_types(c->types, c->ntypes))) ||
	    (c->nskip && !(skip = evfi_strings_mapped(c->skip, c->nskip, glob_of, json_types)))) {
		evfi_buf_free(&sql);
		free(types);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	rc = prepare(s, sql.data, &st);
	evfi_buf_free(&sql);
	if (rc) {
		free(types);
		free(skip);
		return rc;
	}
	evf_time now = evf_now(), until = now + c->lock_ms * 1000;
	bind_time(s, st, ":now", now);
	bind_text(st, ":types", types);
	bind_text(st, ":skip", skip);
	bind_time(s, st, ":older", c->older_than);
	bind_int(st, ":maxatt", c->max_attempts);
	size_t cap = (size_t)(c->limit > 0 ? c->limit : 1), got = 0;
	bind_int(st, ":n", (int64_t)cap);
	free(types);
	free(skip);

	evf_event **evs = calloc(cap, sizeof *evs);
	int64_t *ids = malloc(cap * sizeof *ids);
	if (!evs || !ids) {
		free(evs);
		free(ids);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if ((rc = begin(s))) {
		free(evs);
		free(ids);
		return evfi_wrap(rc, "claiming events");
	}
	int oom = 0;
	while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW && got < cap) {
		evf_event *ev = malloc(sizeof *ev);
		if (!ev || read_row(st, ev, now)) {
			free(ev);
			oom = evfi_fail(EVF_ENOMEM, "claiming events: out of memory");
		} else if ((oom = lease_taken(ev, c->worker_id, until, now))) {
			evf_event_free(ev);
		} else {
			ids[got] = ev->id;
			evs[got++] = ev;
		}
	}
	sqlite3_reset(st);
	if (oom)
		rc = oom;
	else if (rc != SQLITE_DONE)
		rc = sq_err(s, rc, "claiming events");
	else if (!(rc = got ? lease_rows(s, ids, got, c->worker_id, until) : 0) &&
	         (rc = commit(s)))
		rc = evfi_wrap(rc, "claiming events");
	free(ids);
	if (rc) {
		rollback(s);
		for (size_t i = 0; i < got; i++)
			evf_event_free(evs[i]);
		free(evs);
		return rc;
	}
	evfi_sort_claimed(evs, got);
	*out = evs;
	*n = got;
	return 0;
}

/* The leases of one (attempts, clean) group, from the first one not yet
 * done; marks them done and writes their ids to ids[] (returns how many). */
static size_t lease_group(const evf_lease *leases, size_t n, bool by_clean, bool *done,
                          int64_t *ids, int *attempts, bool *clean)
{
	size_t first = 0, k = 0;
	while (done[first])
		first++;
	*attempts = leases[first].attempts;
	*clean = by_clean && leases[first].clean;
	for (size_t i = first; i < n; i++)
		if (!done[i] && leases[i].attempts == *attempts &&
		    (!by_clean || leases[i].clean == *clean)) {
			done[i] = true;
			ids[k++] = leases[i].id;
		}
	return k;
}

/* The leases as one UPDATE per group of leases with the same attempts
 * (and clean flag, when the statement has a form for clean leases), the
 * rows named by an id_set: the statement's set-up, cursors and column
 * buffers once per group instead of once per row, 13-15% of a drain.
 * Every group is run.  1: every row changed; 0: some group changed fewer
 * rows than it has leases, and only row by row tells which (a caller
 * that must know starts again that way); <0: an error. */
static int lease_update_groups(sq_store *s, const char *set, const char *set_clean,
                               const char *worker_id, const evf_lease *leases, size_t n,
                               evf_time now, evf_time until, const char *what)
{
	char sql[640];
	bool *done = calloc(n, sizeof *done);
	int64_t *ids = malloc(n * sizeof *ids);
	int rc = 0;
	bool all = true;
	size_t left = n;

	if (!done || !ids)
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
	while (!rc && left) {
		int attempts;
		bool clean;
		sqlite3_stmt *st = NULL;
		size_t k = lease_group(leases, n, set_clean != NULL, done, ids, &attempts, &clean);
		id_set rows;
		left -= k;
		if ((rc = id_set_make(&rows, ids, k)))
			break;
		snprintf(sql, sizeof sql, "UPDATE %s SET %s WHERE %s AND locked_by = :w AND "
		         "attempts = :att", s->qt, clean ? set_clean : set, id_set_where(&rows));
		if (!(rc = prepare(s, sql, &st))) {
			id_set_bind(st, &rows);
			bind_text(st, ":w", worker_id);
			bind_int(st, ":att", attempts);
			bind_time(s, st, ":now", now);
			bind_time(s, st, ":until", until);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				rc = sq_err(s, rc, what);
			else if ((rc = 0), (size_t)sqlite3_changes(s->db) != k)
				all = false;
		}
		id_set_free(&rows, st);
	}
	free(done);
	free(ids);
	return rc < 0 ? rc : all;
}

/* Change the rows of the leases still held by this worker, each found
 * by id and changed only while its (locked_by, attempts) still match;
 * applied (optional) marks the leases that were still held.  On basic
 * tables the rows are ours while the claim's transaction lasts (it is
 * still open), so the id is enough.
 *
 * Several leases go through lease_update_groups(); one lease, a basic
 * table, and a batch of which some lease was lost (to learn which) go
 * through one cached statement stepped per row, which tells row by row,
 * with no RETURNING (which would gather the rows in a temporary table). */
static int lease_update(sq_store *s, const char *set, const char *set_clean,
                        const char *worker_id, const evf_lease *leases, size_t n,
                        evf_time now, evf_time until, bool *applied, bool tally,
                        const char *what)
{
	char sql[640];
	sqlite3_stmt *st[2];
	int id_at[2], att_at[2], rc;
	int nst = set_clean ? 2 : 1; /* [1]: for leases marked clean */

	if (n == 0)
		return 0;
	if ((rc = sq_schema_extended(&s->base)) < 0) /* the form of its times */
		return rc;
	if (!s->basic_tx && (rc = begin(s)))
		return evfi_wrap(rc, "%s", what);
	if (!s->basic_tx && n > 1) {
		rc = lease_update_groups(s, set, set_clean, worker_id, leases, n, now, until, what);
		if (rc == 1 || (rc == 0 && !applied)) {
			for (size_t i = 0; applied && i < n; i++)
				applied[i] = true;
			rc = tally ? tally_add(s, leases, n, applied, now) : 0;
			goto end;
		}
		if (rc < 0) {
			rollback(s);
			return rc;
		}
		/* a lease was lost: undo (no error), and again row by row */
		exec_sql(s, "ROLLBACK");
		if ((rc = begin(s)))
			return evfi_wrap(rc, "%s", what);
	}
	for (int k = 0; !rc && k < nst; k++) {
		snprintf(sql, sizeof sql, "UPDATE %s SET %s WHERE id = :id%s", s->qt,
		         k ? set_clean : set,
		         s->basic_tx ? "" : " AND locked_by = :w AND attempts = :att");
		if ((rc = prepare(s, sql, &st[k])))
			break;
		bind_text(st[k], ":w", worker_id);
		bind_time(s, st[k], ":now", now);
		bind_time(s, st[k], ":until", until);
		/* looked up once: by name on every row it was 1% of a drain */
		id_at[k] = idx(st[k], ":id");
		att_at[k] = idx(st[k], ":att");
	}
	for (size_t i = 0; !rc && i < n; i++) {
		int k = nst == 2 && leases[i].clean;
		sqlite3_bind_int64(st[k], id_at[k], leases[i].id);
		if (att_at[k])
			sqlite3_bind_int64(st[k], att_at[k], leases[i].attempts);
		rc = sqlite3_step(st[k]);
		sqlite3_reset(st[k]);
		if (rc != SQLITE_DONE)
			rc = sq_err(s, rc, what);
		else if ((rc = 0), applied)
			applied[i] = sqlite3_changes(s->db) == 1;
	}
	if (!rc && tally)
		rc = tally_add(s, leases, n, applied, now);
end:
	if (s->basic_tx)
		return rc;
	if (rc) {
		rollback(s);
		return rc;
	}
	return commit(s);
}

static int sq_complete(evf_store *base, const char *worker_id, const evf_lease *leases,
                       size_t n, bool *applied)
{
	sq_store *s = SQ(base);
	if (s->basic_tx)
		return lease_update(s, "processed = 1, error = 0", NULL, worker_id, leases, n,
		                    evf_now(), 0, applied, false, "completing events");
	int rc = sq_schema_extended(base);
	if (rc < 0)
		return rc;
	bool *mine = NULL, tally = tally_on(s);
	if (tally && !applied && !(applied = mine = calloc(n ? n : 1, sizeof *mine)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	/* Rows claimed with their error flag clear (a lease marked clean; it
	 * stays clear while the lease holds) leave error out of the SET: the
	 * (error, date) index is then not even opened, 2.7% of a drain. */
	rc = lease_update(s, "processed = 1, error = 0, processed_at = :now, locked_by = NULL, "
	                  "locked_until = NULL", "processed = 1, processed_at = :now, "
	                  "locked_by = NULL, locked_until = NULL", worker_id, leases, n, evf_now(),
	                  0, applied, tally, "completing events");
	free(mine);
	return rc;
}

static int sq_extend(evf_store *base, const char *worker_id, const evf_lease *leases,
                     size_t n, int64_t lock_ms)
{
	if (SQ(base)->basic_tx)
		return 0; /* the transaction holds the rows as long as it lasts */
	evf_time now = evf_now();
	return lease_update(SQ(base), "locked_until = :until", NULL, worker_id, leases, n,
	                    now, now + lock_ms * 1000, NULL, false, "extending leases");
}

static int sq_release(evf_store *base, const char *worker_id, const evf_lease *leases,
                      size_t n)
{
	if (SQ(base)->basic_tx)
		return 0; /* untouched rows are simply not updated */
	return lease_update(SQ(base), "locked_by = NULL, locked_until = NULL, "
	                    "attempts = MAX(attempts - 1, 0)", NULL, worker_id, leases, n,
	                    0, 0, NULL, false, "releasing events");
}

static int sq_fail(evf_store *base, const char *worker_id, const evf_failure_rec *recs,
                   size_t n, bool *applied)
{
	sq_store *s = SQ(base);
	char sql[512];
	sqlite3_stmt *st;
	int rc;

	if (n == 0)
		return 0;
	if ((rc = sq_schema_extended(base)) < 0) /* the form of its times */
		return rc;
	if (s->basic_tx) /* final, as the original package recorded failures */
		snprintf(sql, sizeof sql, "UPDATE %s SET processed = 1, error = 1, "
		         "error_message = :msg WHERE id = :id", s->qt);
	else
		snprintf(sql, sizeof sql, "UPDATE %s SET error = 1, error_message = :msg, "
		         "error_code = :code, last_error_at = :now, locked_by = NULL, "
		         "locked_until = NULL, dead = :dead, not_before = :retry "
		         "WHERE id = :id AND locked_by = :w AND attempts = :att", s->qt);
	if ((rc = prepare(s, sql, &st)) || (rc = begin(s)))
		return evfi_wrap(rc, "recording failures");
	evf_time now = evf_now();
	for (size_t i = 0; i < n; i++) {
		const evf_failure_rec *r = &recs[i];
		sqlite3_reset(st);
		bind_text(st, ":msg", r->message ? r->message : "handler failed");
		bind_text(st, ":code", r->code);
		bind_time(s, st, ":now", now);
		bind_int(st, ":dead", r->dead);
		bind_time(s, st, ":retry", r->dead ? now : now + 1000 * r->retry_ms);
		bind_int(st, ":id", r->lease.id);
		bind_text(st, ":w", worker_id);
		bind_int(st, ":att", r->lease.attempts);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			rc = sq_err(s, rc, "recording a failure");
			sqlite3_reset(st);
			rollback(s);
			return rc;
		}
		if (applied)
			applied[i] = sqlite3_changes(s->db) == 1;
	}
	sqlite3_reset(st);
	return commit(s);
}

/* ---- queries ---------------------------------------------------------------- */

/* GLOB treats '?' and '[' specially; the filter syntax only knows '*'. */
static char *glob_of(const char *pattern)
{
	evfi_buf b = { 0 };
	for (const char *p = pattern; *p; p++) {
		if (*p == '?')
			evfi_buf_puts(&b, "[?]");
		else if (*p == '[')
			evfi_buf_puts(&b, "[[]");
		else
			evfi_buf_add(&b, p, 1);
	}
	if (!b.data)
		evfi_buf_puts(&b, "");
	return b.oom ? (evfi_buf_free(&b), NULL) : b.data;
}

/* The column of a sort order; a basic table has no priority or attempts
 * (every row counts as 0 there). */
static const char *order_column(evf_order o, bool ext)
{
	switch (o) {
	case EVF_ORDER_DATE:
		return "date";
	case EVF_ORDER_PRIORITY:
		return ext ? "priority" : "0";
	case EVF_ORDER_ATTEMPTS:
		return ext ? "attempts" : "0";
	default:
		return "id";
	}
}

/* Live states lie in an id range (see evfi_sql_state_hints): walk it by
 * rowid, which the planner would otherwise trade for an index and a sort
 * of every live row (100k live of 1M: 490 ms -> 35 ms). */
static const char *live_walk(const evf_filter *f, bool ext)
{
	return ext && evfi_states_live_only(f->states) && f->order == EVF_ORDER_ID
	       ? " NOT INDEXED" : "";
}

static void where_clause(sq_store *s, evfi_buf *b, const evf_filter *f, bool ext, bool paging)
{
	evfi_buf_puts(b, " WHERE 1");
	evfi_sql_states(b, f->states, ext, false, ":now");
	evfi_sql_state_hints(b, f->states, ext, false, s->base.table, s->qt);
	if (f->type && *f->type)
		evfi_buf_puts(b, strchr(f->type, '*') ? " AND type GLOB :type" : " AND type = :type");
	if (f->nids)
		evfi_buf_puts(b, " AND id IN (SELECT value FROM json_each(:ids))");
	if (f->since)
		evfi_buf_puts(b, " AND date >= :since");
	if (f->until)
		evfi_buf_puts(b, " AND date < :until");
	if (f->errors)
		evfi_buf_puts(b, " AND error = 1");
	if (f->correlation_id)
		evfi_buf_puts(b, ext ? " AND correlation_id = :corr" : " AND 0");
	if (f->text && *f->text)
		evfi_buf_puts(b, " AND (instr(error_message, :text) > 0 OR instr(parameters, :text) > 0)");
	if (paging && f->after_id) {
		if (f->order == EVF_ORDER_ID)
			evfi_buf_puts(b, f->descending ? " AND id < :after" : " AND id > :after");
		else
			evfi_buf_printf(b, " AND (%s, id) %s (:akey, :after)",
			                order_column(f->order, ext), f->descending ? "<" : ">");
	}
}

static int bind_filter(const sq_store *s, sqlite3_stmt *st, const evf_filter *f,
                       evf_time now)
{
	bind_time(s, st, ":now", now);
	if (f->type && *f->type) {
		if (strchr(f->type, '*')) {
			char *g = glob_of(f->type);
			if (!g)
				return evfi_fail(EVF_ENOMEM, "out of memory");
			bind_text(st, ":type", g);
			free(g);
		} else {
			bind_text(st, ":type", f->type);
		}
	}
	if (f->nids) {
		char *ids = json_ids(f->ids, f->nids);
		if (!ids)
			return evfi_fail(EVF_ENOMEM, "out of memory");
		bind_text(st, ":ids", ids);
		free(ids);
	}
	bind_time(s, st, ":since", f->since);
	bind_time(s, st, ":until", f->until);
	bind_text(st, ":corr", f->correlation_id);
	bind_text(st, ":text", f->text);
	bind_int(st, ":after", f->after_id);
	if (f->order == EVF_ORDER_DATE)
		bind_time(s, st, ":akey", f->after_key);
	else
		bind_int(st, ":akey", f->after_key);
	bind_int(st, ":limit", f->limit);
	return 0;
}

/* Prepare a one-off statement (not cached: filters vary without end). */
static int prepare_filtered(sq_store *s, evfi_buf *sql, const evf_filter *f,
                            evf_time now, sqlite3_stmt **st)
{
	if (sql->oom) {
		evfi_buf_free(sql);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	int rc = sqlite3_prepare_v2(s->db, sql->data, -1, st, NULL);
	evfi_buf_free(sql);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "preparing a query");
	if ((rc = bind_filter(s, *st, f, now))) {
		sqlite3_finalize(*st);
		return rc;
	}
	return 0;
}

/* Progress callbacks (each 1000 VM steps) a walk by id may take to fill a
 * page before the type's index is left to the planner: about 20,000 rows,
 * a few milliseconds. */
enum { WALK_PROBE_CALLS = 100 };

static int probe_spent(void *calls)
{
	return ++*(int *)calls > WALK_PROBE_CALLS;
}

/* A page in id order filtered by type: without statistics the planner
 * takes the type's index and sorts every row of the type (a type of 1M
 * rows: 460 ms a page), where a walk by id fills the page at once unless
 * the type is rare.  A bounded walk decides; the index wins when it runs
 * out, as it does for a rare type, whose rows the index finds at once. */
static bool walk_fills_page(sq_store *s, const evf_filter *f, bool ext, evf_time now)
{
	if (f->order != EVF_ORDER_ID || f->limit <= 0 || !f->type || !*f->type || f->nids ||
	    f->correlation_id || f->since || f->until || *live_walk(f, ext))
		return false;
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	evfi_buf_printf(&sql, "SELECT count(*) FROM (SELECT 1 FROM %s NOT INDEXED", s->qt);
	where_clause(s, &sql, f, ext, true);
	evfi_buf_printf(&sql, " ORDER BY id %s LIMIT :limit)", f->descending ? "DESC" : "ASC");
	if (prepare_filtered(s, &sql, f, now, &st))
		return false;
	int calls = 0;
	sqlite3_progress_handler(s->db, 1000, probe_spent, &calls);
	int rc = sqlite3_step(st);
	sqlite3_progress_handler(s->db, 0, NULL, NULL);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}

/* Past the deadline, a non-zero return interrupts the statement. */
static int past_deadline(void *deadline)
{
	return evfi_mono_ms() >= *(const int64_t *)deadline;
}

static int sq_query(evf_store *base, const evf_filter *f, evf_row_cb cb, void *user)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	evf_time now = evf_now();
	evfi_buf_printf(&sql, "SELECT %s FROM %s%s", ext ? EXT_COLS : BASIC_COLS, s->qt,
	                walk_fills_page(s, f, ext, now) ? " NOT INDEXED" : live_walk(f, ext));
	where_clause(s, &sql, f, ext, true);
	if (f->order != EVF_ORDER_ID)
		evfi_buf_printf(&sql, " ORDER BY %s %s,", order_column(f->order, ext),
		                f->descending ? "DESC" : "ASC");
	else
		evfi_buf_puts(&sql, " ORDER BY");
	evfi_buf_printf(&sql, " id %s", f->descending ? "DESC" : "ASC");
	if (f->limit > 0)
		evfi_buf_puts(&sql, " LIMIT :limit");
	if ((rc = prepare_filtered(s, &sql, f, now, &st)))
		return rc;
	/* a sort without an index reads the whole table before its first
	 * row: the budget stops it instead of freezing a console */
	int64_t deadline = evfi_mono_ms() + f->budget_ms;
	if (f->budget_ms > 0)
		sqlite3_progress_handler(s->db, 1000, past_deadline, &deadline);
	int stop = 0;
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		evf_event ev;
		if ((stop = read_row(st, &ev, now)))
			break;
		stop = cb(&ev, user);
		evfi_event_clear(&ev);
	}
	if (f->budget_ms > 0)
		sqlite3_progress_handler(s->db, 0, NULL, NULL);
	if (stop)
		rc = stop;
	else if (rc == SQLITE_DONE)
		rc = 0;
	else if (rc == SQLITE_INTERRUPT && f->budget_ms > 0)
		rc = evfi_fail(EVF_ETIMEDOUT, "listing events took over %" PRId64 " ms",
		               f->budget_ms);
	else
		rc = sq_err(s, rc, "listing events");
	sqlite3_finalize(st);
	return rc;
}

static int sq_count(evf_store *base, const evf_filter *f, int64_t *out)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	/* a limit caps the count: a console can say "10k+" without reading
	 * every match */
	evfi_buf_printf(&sql, "SELECT count(*) FROM %s%s%s", f->limit > 0 ? "(SELECT 1 FROM " : "",
	                s->qt, live_walk(f, ext));
	where_clause(s, &sql, f, ext, false);
	if (f->limit > 0)
		evfi_buf_puts(&sql, " LIMIT :limit)");
	if ((rc = prepare_filtered(s, &sql, f, evf_now(), &st)))
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = sq_err(s, rc, "counting events");
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_get(evf_store *base, int64_t id, evf_event **out)
{
	evf_filter f = EVF_FILTER_INIT;
	evf_event *found = NULL;
	f.ids = &id;
	f.nids = 1;
	int rc = sq_query(base, &f, evfi_keep_first, &found);
	if (rc < 0)
		return rc;
	if (!found)
		return evfi_fail(EVF_ENOTFOUND, "no event with id %lld", (long long)id);
	*out = found;
	return 0;
}

static int one_row(sq_store *s, const char *sql, evf_time now, int64_t *v, int nv,
                   const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, what);
	bind_time(s, st, ":now", now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < nv; i++)
			v[i] = col_time(st, i); /* a count, or a time in either form */
		rc = 0;
	} else {
		rc = sq_err(s, rc, what);
	}
	sqlite3_finalize(st);
	return rc;
}

/* The table's lowest id and how many ids lie from it to the highest (0
 * for an empty table): max and min in one query would scan an index;
 * apart, each is one step down the rowid tree. */
static int id_range(sq_store *s, int64_t *lo, int64_t *span)
{
	char sql[200];
	int64_t v[2];
	snprintf(sql, sizeof sql, "SELECT (SELECT min(id) FROM %s), (SELECT max(id) FROM %s)",
	         s->qt, s->qt);
	int rc = one_row(s, sql, 0, v, 2, "sizing the table");
	*lo = v[0];
	*span = rc || (!v[0] && !v[1]) ? 0 : v[1] - v[0] + 1;
	return rc;
}

/* Rows of (type, state, count) into out; :lo and :span bound when the
 * statement names them. */
static int stats_rows(sq_store *s, evfi_buf *sql, int64_t lo, int64_t span, evf_stats *out)
{
	sqlite3_stmt *st;
	evf_filter none = EVF_FILTER_INIT;
	int rc = prepare_filtered(s, sql, &none, evf_now(), &st), err = 0;
	if (rc)
		return rc;
	bind_int(st, ":lo", lo);
	bind_int(st, ":span", span);
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = evfi_stats_add(out, (const char *)sqlite3_column_text(st, 0),
		                     sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2));
	rc = err ? err : rc == SQLITE_DONE ? 0 : sq_err(s, rc, "counting events");
	sqlite3_finalize(st);
	return rc;
}

static int sq_stats(evf_store *base, evf_stats *out)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	char from[160];
	int64_t lo = 0, span = 0;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	if (ext && (rc = id_range(s, &lo, &span)))
		return rc;
	evf_stats *sample = NULL;
	if (ext && span > EVFI_EXACT_LIMIT) {
		/* ids drawn at random over the id range (store/common.c,
		 * evfi_stats_sampled); purged ids count as the gaps they are */
		if (!(sample = calloc(1, sizeof *sample)))
			return evfi_fail(EVF_ENOMEM, "out of memory");
		evfi_buf_printf(&sql, "WITH RECURSIVE ids(n, i) AS (SELECT 0, NULL UNION ALL "
		                "SELECT n + 1, :lo + abs(random() %% :span) FROM ids WHERE n < %d) ",
		                EVFI_STATS_SAMPLE);
		snprintf(from, sizeof from, "ids CROSS JOIN %s ON id = i", s->qt);
		evfi_sql_stats(&sql, ext, false, ":now", from, NULL);
		if ((rc = stats_rows(s, &sql, lo, span, sample))) {
			evf_stats_free(sample);
			return rc;
		}
	}
	if (!sample || !evfi_stats_sampled(sample, span)) {
		/* small (or sparse: few ids left in a wide range): every row */
		evf_stats_free(sample);
		evfi_sql_stats(&sql, ext, false, ":now", s->qt, NULL);
		return stats_rows(s, &sql, 0, 0, out);
	}
	/* the live rows through the ready-queue index, the dead (every one
	 * has error = 1) through the error index: exact */
	snprintf(from, sizeof from, "%s INDEXED BY \"%s_ready\"", s->qt, s->base.table);
	evfi_sql_stats(&sql, ext, false, ":now", from, "processed = 0 AND dead = 0");
	if (!(rc = stats_rows(s, &sql, 0, 0, out))) {
		evfi_sql_stats(&sql, ext, false, ":now", s->qt,
		               "error = 1 AND (dead = 1 OR processed = 1)");
		rc = stats_rows(s, &sql, 0, 0, out);
	}
	if (!rc)
		rc = evfi_stats_add_done(out, sample, span);
	evf_stats_free(sample);
	return rc;
}

static int sq_act(evf_store *base, evf_action a, const evf_filter *f, int arg,
                  bool dry_run, int64_t *affected)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	if (dry_run)
		return sq_count(base, f, affected);
	if (evfi_action_needs_ext(a) && !ext)
		return need_extended(s, evf_action_name(a));
	evfi_buf_printf(&sql, "UPDATE %s SET ", s->qt);
	evfi_sql_action_set(&sql, a, ext, false, ":now");
	if (a == EVF_ACTION_SET_MAX_ATTEMPTS)
		evfi_buf_puts(&sql, ":arg");
	where_clause(s, &sql, f, ext, false);
	/* an operator's completions count as completions */
	bool count = a == EVF_ACTION_MARK_PROCESSED && ext && tally_on(s);
	if (count)
		evfi_buf_puts(&sql, " RETURNING type");
	if ((rc = begin(s)))
		return evfi_wrap(rc, "%s", evf_action_name(a));
	evf_time now = evf_now();
	if ((rc = prepare_filtered(s, &sql, f, now, &st))) {
		rollback(s);
		return rc;
	}
	bind_int(st, ":arg", arg);
	/* the completed rows added up by type, counted once per type */
	evf_stats *by_type = count ? calloc(1, sizeof *by_type) : NULL;
	int err = count && !by_type ? evfi_fail(EVF_ENOMEM, "out of memory") : 0;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = evfi_stats_add(by_type, (const char *)sqlite3_column_text(st, 0),
		                     EVF_STATE_DONE, 1);
	if (!err && rc != SQLITE_DONE)
		err = sq_err(s, rc, evf_action_name(a));
	sqlite3_finalize(st);
	if (!err && count)
		err = tally_add_types(s, by_type, now);
	*affected = count && by_type ? by_type->total : sqlite3_changes(s->db);
	evf_stats_free(by_type);
	if (err) {
		rollback(s);
		return err;
	}
	return commit(s);
}

/* ---- retention: purge, archive, restore ------------------------------------ */

/* Step a statement whose rows are states (column 0) and add them up. */
static int sum_states(sq_store *s, sqlite3_stmt *st, bool counted,
                      int64_t counts[EVF_STATE__COUNT], const char *what)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int state = sqlite3_column_int(st, 0);
		if (state >= 0 && state < EVF_STATE__COUNT)
			counts[state] += counted ? sqlite3_column_int64(st, 1) : 1;
	}
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, what);
}

static int sq_count_states(evf_store *base, const evf_filter *f,
                           int64_t counts[EVF_STATE__COUNT])
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	evfi_buf_puts(&sql, "SELECT ");
	evfi_sql_state_case(&sql, ext, false, ":now");
	evfi_buf_printf(&sql, " AS st, count(*) FROM %s", s->qt);
	where_clause(s, &sql, f, ext, false);
	evfi_buf_puts(&sql, " GROUP BY st");
	if ((rc = prepare_filtered(s, &sql, f, evf_now(), &st)))
		return rc;
	rc = sum_states(s, st, true, counts, "counting events");
	sqlite3_finalize(st);
	return rc;
}

/* Run one filtered statement inside the caller's transaction, adding the
 * states it returns (one per row) to counts. */
static int run_states(sq_store *s, evfi_buf *sql, const evf_filter *f, evf_time now,
                      int64_t hi, int64_t counts[EVF_STATE__COUNT], const char *what)
{
	sqlite3_stmt *st;
	int rc = prepare_filtered(s, sql, f, now, &st);
	if (rc)
		return rc;
	bind_int(st, ":hi", hi);
	rc = counts ? sum_states(s, st, false, counts, what)
	            : (sqlite3_step(st) == SQLITE_DONE ? 0 : sq_err(s, sqlite3_errcode(s->db), what));
	sqlite3_finalize(st);
	return rc;
}

static int sq_delete_chunk(evf_store *base, const evf_filter *f,
                           int64_t counts[EVF_STATE__COUNT])
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	evfi_buf_printf(&sql, "DELETE FROM %s WHERE id IN (SELECT id FROM %s", s->qt, s->qt);
	where_clause(s, &sql, f, ext, true);
	evfi_buf_puts(&sql, f->limit > 0 ? " ORDER BY id LIMIT :limit) RETURNING " : ") RETURNING ");
	evfi_sql_state_case(&sql, ext, false, ":now");
	if ((rc = begin(s)))
		return evfi_wrap(rc, "purging");
	rc = run_states(s, &sql, f, evf_now(), 0, counts, "deleting events");
	if (rc) {
		rollback(s);
		return rc;
	}
	return commit(s);
}

static int sq_archive_table_create(evf_store *base, const char *qarch)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	evfi_ddl_archive_table(&sql, qarch, false, s->int_times, ext);
	if (sql.oom) {
		evfi_buf_free(&sql);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	rc = exec_sql(s, sql.data);
	evfi_buf_free(&sql);
	if (rc)
		return evfi_wrap(rc, "creating the archive table %s", qarch);
	/* An archive made for a table of the other form would turn integer
	 * times into text digits (or keep text where integers are expected):
	 * rows nobody could read back as times. */
	int int_dates;
	if ((rc = date_is_integer(s, qarch, &int_dates)))
		return rc;
	if (int_dates != s->int_times)
		return evfi_fail(EVF_ESCHEMA, "archive table %s holds times as %s and table %s "
		                 "as %s: archive into another table", qarch,
		                 int_dates ? "integers" : "text", s->base.table,
		                 s->int_times ? "integers" : "text");
	return 0;
}

/* Restrict an archive step to the rows (:after, :hi] matching f. */
static void chunk_where(sq_store *s, evfi_buf *b, const evf_filter *f, bool ext)
{
	where_clause(s, b, f, ext, true);
	evfi_buf_puts(b, " AND id <= :hi");
}

static int sq_archive_chunk(evf_store *base, const evf_filter *f, const char *qarch,
                            bool purge, int64_t *last_id, int64_t counts[EVF_STATE__COUNT])
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 }, cols = { 0 };
	sqlite3_stmt *st;
	evf_time now = evf_now();
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	*last_id = 0;
	if ((rc = begin(s)))
		return evfi_wrap(rc, "archiving");
	/* the chunk's last id first: the write transaction keeps the range's
	 * rows as they are until the copy and the delete are done */
	evfi_buf_printf(&sql, "SELECT max(id) FROM (SELECT id FROM %s", s->qt);
	where_clause(s, &sql, f, ext, true);
	evfi_buf_puts(&sql, " ORDER BY id LIMIT :limit)");
	if ((rc = prepare_filtered(s, &sql, f, now, &st)))
		goto fail;
	rc = sqlite3_step(st);
	*last_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	rc = rc == SQLITE_ROW ? 0 : sq_err(s, rc, "archiving");
	sqlite3_finalize(st);
	if (rc || !*last_id)
		goto done;

	evfi_sql_columns(&cols, ext);
	if (cols.oom) {
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
		goto fail;
	}
	evfi_buf_printf(&sql, "INSERT INTO %s (%s) SELECT %s FROM %s", qarch, cols.data,
	                cols.data, s->qt);
	chunk_where(s, &sql, f, ext);
	/* archived before (without purge): the row as it is now wins */
	evfi_buf_puts(&sql, " ON CONFLICT (id) DO UPDATE SET ");
	evfi_sql_excluded_set(&sql, ext);
	if ((rc = run_states(s, &sql, f, now, *last_id, NULL, "copying to the archive table")))
		goto fail;
	evfi_buf_puts(&sql, purge ? "DELETE FROM " : "SELECT ");
	if (!purge) {
		evfi_sql_state_case(&sql, ext, false, ":now");
		evfi_buf_puts(&sql, " FROM ");
	}
	evfi_buf_puts(&sql, s->qt);
	chunk_where(s, &sql, f, ext);
	if (purge) {
		evfi_buf_puts(&sql, " RETURNING ");
		evfi_sql_state_case(&sql, ext, false, ":now");
	}
	if ((rc = run_states(s, &sql, f, now, *last_id, counts, "archiving")))
		goto fail;
done:
	evfi_buf_free(&cols);
	if (rc)
		goto fail;
	return commit(s);
fail:
	evfi_buf_free(&cols);
	rollback(s);
	return rc;
}

static int sq_restore(evf_store *base, const evf_event *evs, size_t n, int64_t *inserted)
{
	sq_store *s = SQ(base);
	sqlite3_stmt *st;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	*inserted = 0;
	if ((rc = begin(s)))
		return evfi_wrap(rc, "restoring");
	char sql[1024];
	snprintf(sql, sizeof sql, ext ?
		"INSERT INTO %s (id, type, date, parameters, processed, error, error_message, "
		"idempotency_key, correlation_id, priority, not_before, attempts, max_attempts, "
		"last_error_at, processed_at, error_code, dead, locked_by, locked_until) VALUES "
		"(:id, :type, :date, :params, :processed, :error, :msg, :key, :corr, :prio, :nb, "
		":attempts, :max, :lerr, :pat, :code, :dead, :lby, :luntil) ON CONFLICT DO NOTHING" :
		"INSERT INTO %s (id, type, date, parameters, processed, error, error_message) "
		"VALUES (:id, :type, :date, :params, :processed, :error, :msg) ON CONFLICT DO NOTHING",
		s->qt);
	rc = prepare(s, sql, &st);
	for (size_t i = 0; !rc && i < n; i++) {
		const evf_event *e = &evs[i];
		bind_int(st, ":id", e->id);
		bind_text(st, ":type", e->type);
		bind_time(s, st, ":date", e->date);
		bind_text(st, ":params", e->parameters);
		/* a basic table records a final failure as processed with error */
		bind_int(st, ":processed", e->processed || (!ext && e->dead));
		bind_int(st, ":error", e->error || (!ext && e->dead));
		/* Django declared error_message NOT NULL */
		bind_text(st, ":msg", e->error_message || ext ? e->error_message : "");
		bind_text(st, ":key", e->idempotency_key);
		bind_text(st, ":corr", e->correlation_id);
		bind_int(st, ":prio", e->priority);
		bind_time(s, st, ":nb", e->not_before);
		bind_int(st, ":attempts", e->attempts);
		bind_int(st, ":max", e->max_attempts > 0 ? e->max_attempts : s->base.opts->max_attempts);
		bind_time(s, st, ":lerr", e->last_error_at);
		bind_time(s, st, ":pat", e->processed_at);
		bind_text(st, ":code", e->error_code);
		bind_int(st, ":dead", e->dead);
		bind_text(st, ":lby", e->locked_by);
		bind_time(s, st, ":luntil", e->locked_until);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = evfi_wrap(sq_err(s, sqlite3_errcode(s->db), "restoring"),
			               "event %lld", (long long)e->id);
		else
			*inserted += sqlite3_changes(s->db);
		sqlite3_reset(st);
	}
	if (rc) {
		rollback(s);
		return rc;
	}
	return commit(s);
}

/* ---- scratch tables and reports ---------------------------------------------- */

static int sq_drop(evf_store *base)
{
	sq_store *s = SQ(base);
	sqlite3_stmt *st;
	char sql[256];
	int rc;
	/* only an event table (or none): never somebody else's table */
	bool exists;
	if ((rc = table_exists(s, &exists)))
		return rc;
	s->extended = -1;
	int shape = 0;
	if (exists && (rc = sq_schema_extended(base)) < 0)
		return evfi_wrap(rc, "not dropped");
	if ((rc = tally_shape(s, &shape)))
		return evfi_wrap(rc, "not dropped");
	if ((rc = begin(s)))
		return rc;
	/* its tally with it: a table of that name and the tally's shape */
	snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s;%s%s", s->qt,
	         shape == 1 ? " DROP TABLE " : "", shape == 1 ? s->qtally : "");
	if ((rc = exec_sql(s, sql)))
		goto fail;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM evf_schema WHERE table_name = :t", -1, &st,
	                       NULL) == SQLITE_OK) {
		bind_text(st, ":t", base->table);
		sqlite3_step(st);
		sqlite3_finalize(st);
	} /* no evf_schema table: nothing to forget */
	cache_clear(s);
	s->extended = -1;
	s->tally = -1;
	return commit(s);
fail:
	rollback(s);
	return rc;
}

/* SQLite removes index entries with their rows; what a big change leaves
 * is a write-ahead log as large as the change (2.8 GB after marking 10M
 * events done), which the automatic checkpoints reuse but never shrink.
 * Truncate it once every reader is past it. */
static int sq_maintain(evf_store *base)
{
	sq_store *s = SQ(base);
	int log = 0, moved = 0;
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &moved);
	if (rc == SQLITE_BUSY)
		return evfi_fail(EVF_EBUSY, "checkpointing the write-ahead log: another connection "
		                 "is reading or writing; try again");
	return rc == SQLITE_OK ? 0 : sq_err(s, rc, "checkpointing the write-ahead log");
}

static int sq_durability(evf_store *base, char *buf, size_t len)
{
	sq_store *s = SQ(base);
	static const char *const sync_names[] = { "OFF", "NORMAL", "FULL", "EXTRA" };
	sqlite3_stmt *st;
	char mode[32] = "?";
	int sync = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			sync = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	snprintf(buf, len, "SQLite %s, journal_mode=%s, synchronous=%s", sqlite3_libversion(),
	         mode, sync >= 0 && sync <= 3 ? sync_names[sync] : "?");
	return 0;
}

static int sq_activity(evf_store *base, evf_time since, evf_activity *out)
{
	sq_store *s = SQ(base);
	evfi_buf sql = { 0 };
	sqlite3_stmt *st;
	char completed[200];
	int rc;

	if ((rc = sq_schema_extended(base)) < 0)
		return rc;
	/* buckets that start in the window: exact to the second for the
	 * last hour, to the minute for the last day */
	snprintf(completed, sizeof completed, "SELECT type, sum(completed) AS n FROM %s "
	         "WHERE span IN (1, 60, 3600) AND at >= :since_s GROUP BY type", s->qtally);
	evfi_sql_activity(&sql, false, s->qt, ":since", tally_on(s) ? completed : NULL);
	if (sql.oom) {
		evfi_buf_free(&sql);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	rc = sqlite3_prepare_v2(s->db, sql.data, -1, &st, NULL);
	evfi_buf_free(&sql);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "counting recent activity");
	bind_time(s, st, ":since", since);
	bind_int(st, ":since_s", since > 0 ? since / 1000000 : 0);
	int err = 0;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = evfi_activity_add(out, (const char *)sqlite3_column_text(st, 0),
		                        sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
		                        sqlite3_column_int64(st, 3));
	if (!err && rc != SQLITE_DONE)
		err = sq_err(s, rc, "counting recent activity");
	sqlite3_finalize(st);
	return err;
}

/* ---- waking idle workers ------------------------------------------------------ */

/* Bumped by every commit of another connection; reading it touches only
 * the WAL index in shared memory, not the disk.  -1 when unreadable. */
static int64_t data_version(sq_store *s)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	if (prepare(s, "PRAGMA data_version", &st) == 0) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	return v;
}

/* SQLite has no notifications, but an idle worker can watch for commits
 * cheaply: every millisecond at first, backing off to every 16 ms, so a
 * new event starts within a few milliseconds instead of a poll interval
 * (1 s by default) while an idle worker costs a few dozen reads a second.
 * Any commit wakes it (a completion too); the claim that follows decides. */
static int sq_wait(evf_store *base, int64_t ms, volatile sig_atomic_t *stop)
{
	sq_store *s = SQ(base);
	int64_t seen = data_version(s), step = 1;
	while (ms > 0 && !(stop && *stop)) {
		int64_t nap = step < ms ? step : ms;
		struct timespec ts = { (time_t)(nap / 1000), (long)(nap % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		ms -= nap;
		int64_t now = data_version(s);
		if (seen >= 0 && now >= 0 && now != seen)
			return 1;
		if (step < 16)
			step *= 2;
	}
	return 0;
}

/* ---- the console's header -------------------------------------------------- */

static int sq_overview(evf_store *base, evf_overview *out)
{
	sq_store *s = SQ(base);
	char sql[1400];
	int ext = sq_schema_extended(base), rc;
	int64_t v[8] = { 0 };
	evf_time now = evf_now();

	if (ext < 0)
		return ext;
	out->now = now;
	if (ext) {
		/* The live states from the ready-queue index alone. */
		snprintf(sql, sizeof sql, "SELECT "
			"coalesce(sum(locked_until IS NULL AND error = 0 AND (not_before IS NULL OR not_before <= :now)), 0), "
			"coalesce(sum(locked_until IS NULL AND error = 0 AND not_before > :now), 0), "
			"coalesce(sum(locked_until > :now), 0), "
			"coalesce(sum(locked_until IS NULL AND error = 1), 0), "
			"coalesce(sum(locked_until <= :now), 0), "
			"min(CASE WHEN (locked_until IS NULL OR locked_until <= :now) AND "
			"(not_before IS NULL OR not_before <= :now) THEN coalesce(not_before, date) END), "
			"count(DISTINCT CASE WHEN locked_until > :now THEN locked_by END) "
			"FROM %s INDEXED BY \"%s_ready\" WHERE processed = 0 AND dead = 0",
			s->qt, s->base.table);
		if ((rc = one_row(s, sql, now, v, 7, "counting the queue")))
			return rc;
		out->counts[EVF_STATE_PENDING] = v[0];
		out->counts[EVF_STATE_SCHEDULED] = v[1];
		out->counts[EVF_STATE_RUNNING] = v[2];
		out->counts[EVF_STATE_FAILED] = v[3];
		out->counts[EVF_STATE_STUCK] = v[4];
		out->oldest_ready = v[5];
		out->workers = v[6];
		/* every dead row has error = 1: count them through that index */
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE error = 1 AND "
		         "(dead = 1 OR processed = 1)", s->qt);
	} else {
		snprintf(sql, sizeof sql, "SELECT coalesce(sum(error = 0), 0), coalesce(sum(error = 1), 0), "
		         "min(CASE WHEN error = 0 THEN date END) FROM %s WHERE processed = 0", s->qt);
		if ((rc = one_row(s, sql, now, v, 3, "counting the queue")))
			return rc;
		out->counts[EVF_STATE_PENDING] = v[0];
		out->counts[EVF_STATE_FAILED] = v[1];
		out->oldest_ready = v[2];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE error = 1 AND processed = 1", s->qt);
	}
	if ((rc = one_row(s, sql, now, v, 1, "counting dead events")))
		return rc;
	out->counts[EVF_STATE_DEAD] = v[0];
	int64_t lo, total;
	if ((rc = id_range(s, &lo, &total)))
		return rc;
	if (total <= EVFI_EXACT_LIMIT) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", s->qt);
		if ((rc = one_row(s, sql, now, v, 1, "counting events")))
			return rc;
		total = v[0];
	} else {
		out->estimated = true;
	}
	evfi_overview_finish(out, total, out->estimated);
	return 0;
}

static int sq_error_groups(evf_store *base, size_t limit, evf_error_group **out, size_t *n)
{
	sq_store *s = SQ(base);
	char sql[600];
	sqlite3_stmt *st;
	int ext = sq_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	/* grouped by the first line of the message, at most 200 bytes */
	snprintf(sql, sizeof sql, "SELECT type, substr(m, 1, 200) AS line, count(*), max(at) FROM "
	         "(SELECT type, CASE WHEN instr(coalesce(error_message, ''), char(10)) > 0 THEN "
	         "substr(error_message, 1, instr(error_message, char(10)) - 1) ELSE "
	         "coalesce(error_message, '') END AS m, %s AS at FROM %s WHERE error = 1) "
	         "GROUP BY type, line ORDER BY 3 DESC, 4 DESC LIMIT :limit",
	         ext ? "last_error_at" : "date", s->qt);
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return sq_err(s, rc, "grouping errors");
	bind_int(st, ":limit", (int64_t)limit);
	evf_error_group *g = calloc(limit, sizeof *g);
	size_t got = 0;
	while (g && (rc = sqlite3_step(st)) == SQLITE_ROW && got < limit) {
		g[got].type = col_str(st, 0);
		g[got].message = col_str(st, 1);
		g[got].count = sqlite3_column_int64(st, 2);
		g[got].last_at = col_time(st, 3);
		got++;
	}
	sqlite3_finalize(st);
	if (!g)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		evf_error_groups_free(g, got);
		return sq_err(s, rc, "grouping errors");
	}
	*out = g;
	*n = got;
	return 0;
}

/* ---- open and close ------------------------------------------------------------ */

static void sq_close(evf_store *base)
{
	sq_store *s = SQ(base);
	cache_clear(s);
	sqlite3_finalize(s->tx[0]);
	sqlite3_finalize(s->tx[1]);
	if (!s->borrowed)
		sqlite3_close_v2(s->db);
	free(s);
}

/* ---- global rate limits ------------------------------------------------------ */

/* One bucket per (event table, rule); times are this host's clock in
 * seconds, which every process on one SQLite file shares. */
static int sq_rate_setup(evf_store *base, const char *rule, double burst)
{
	sq_store *s = SQ(base);
	sqlite3_stmt *st;
	int rc = exec_sql(s, "CREATE TABLE IF NOT EXISTS evf_rate (table_name TEXT NOT NULL, "
	                  "rule TEXT NOT NULL, tokens REAL NOT NULL, taken REAL NOT NULL "
	                  "DEFAULT 0, refilled_at REAL NOT NULL, PRIMARY KEY (table_name, rule))");
	if (rc)
		return evfi_wrap(rc, "creating evf_rate");
	if ((rc = prepare(s, "INSERT INTO evf_rate (table_name, rule, tokens, refilled_at) "
	                  "VALUES (:t, :r, :b, :now) ON CONFLICT DO NOTHING", &st)))
		return rc;
	bind_text(st, ":t", s->base.table);
	bind_text(st, ":r", rule);
	sqlite3_bind_double(st, idx(st, ":b"), burst);
	sqlite3_bind_double(st, idx(st, ":now"), (double)evf_now() / 1e6);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "setting up a rate limit");
}

static int sq_rate_take(evf_store *base, const char *rule, double per_second,
                        double burst, int64_t want, int64_t *granted, double *left)
{
	sq_store *s = SQ(base);
	sqlite3_stmt *st;
	/* SET sees the row as it was: taken and tokens agree */
	int rc = prepare(s, "UPDATE evf_rate SET "
		"taken = MIN(:want, CAST(MIN(:burst, tokens + :rate * MAX(0, :now - refilled_at)) AS INTEGER)), "
		"tokens = MIN(:burst, tokens + :rate * MAX(0, :now - refilled_at)) - "
		"MIN(:want, CAST(MIN(:burst, tokens + :rate * MAX(0, :now - refilled_at)) AS INTEGER)), "
		"refilled_at = MAX(refilled_at, :now) "
		"WHERE table_name = :t AND rule = :r RETURNING taken, tokens", &st);
	*granted = 0;
	*left = 0;
	if (rc)
		return rc;
	bind_int(st, ":want", want);
	sqlite3_bind_double(st, idx(st, ":burst"), burst);
	sqlite3_bind_double(st, idx(st, ":rate"), per_second);
	sqlite3_bind_double(st, idx(st, ":now"), (double)evf_now() / 1e6);
	bind_text(st, ":t", s->base.table);
	bind_text(st, ":r", rule);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*granted = sqlite3_column_int64(st, 0);
		*left = sqlite3_column_double(st, 1);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "taking rate tokens");
}

static const evf_store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.init = sq_init,
	.schema_extended = sq_schema_extended,
	.emit = sq_emit,
	.claim = sq_claim,
	.complete = sq_complete,
	.fail_batch = sq_fail,
	.extend = sq_extend,
	.release = sq_release,
	.get = sq_get,
	.query = sq_query,
	.count = sq_count,
	.stats = sq_stats,
	.act = sq_act,
	.end_batch = sq_end_batch,
	.migrate = sq_migrate,
	.overview = sq_overview,
	.error_groups = sq_error_groups,
	.count_states = sq_count_states,
	.delete_chunk = sq_delete_chunk,
	.archive_table_create = sq_archive_table_create,
	.archive_chunk = sq_archive_chunk,
	.restore = sq_restore,
	.drop = sq_drop,
	.durability = sq_durability,
	.maintain = sq_maintain,
	.wait = sq_wait,
	.rate_setup = sq_rate_setup,
	.rate_take = sq_rate_take,
	.activity = sq_activity,
};

static sq_store *sq_new(const evf_options *o, const char *table)
{
	sq_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->base.ops = &sqlite_ops;
	s->base.opts = o;
	s->base.table = table;
	s->extended = -1;
	snprintf(s->qt, sizeof s->qt, "\"%s\"", table); /* validated identifier */
	snprintf(s->qtally, sizeof s->qtally, "\"%s_tally\"", table);
	s->tally = -1;
	return s;
}

int evfi_sqlite_open(evf_store **out, const char *path, const evf_options *o,
                     const char *table)
{
	if (!o->create && strcmp(path, ":memory:") && access(path, F_OK) != 0)
		return evfi_fail(EVF_ENOTFOUND, "database file '%s' does not exist "
		                 "(create it with 'evfctl init')", path);
	sq_store *s = sq_new(o, table);
	if (!s)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	/* NOMUTEX: a connection is only ever used by one thread at a time (the
	 * library's rule, libevf(3)), so its mutex guarded nothing; taking it
	 * around every call was 3% of a drain. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	            (o->create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		rc = evfi_fail(rc == SQLITE_CANTOPEN ? EVF_ENOTFOUND : EVF_ESTORE,
		               "cannot open database '%s': %s", path,
		               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		sq_close(&s->base);
		return rc;
	}
	sqlite3_busy_timeout(s->db, (int)(o->busy_timeout_ms > 0x7fffffff ? 0x7fffffff : o->busy_timeout_ms));
	/* WAL lets readers (evf-top, list) run while workers write;
	 * synchronous=NORMAL is durable against process crashes, and in WAL
	 * mode never corrupts.  temp_store=MEMORY keeps statement journals
	 * (every INSERT ... ON CONFLICT needs one) out of temp files: with
	 * them on disk a 100k-event batch made 1.5M pwrite calls.  The page
	 * cache stays at 2 MB: 16 MB made neither claims, emits of 100k in
	 * one transaction nor the console's queries at 1M rows any faster
	 * (the OS caches the file), and cost every worker 18 MB more. */
	if ((rc = exec_sql(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -2000; PRAGMA temp_store = MEMORY;"))) {
		rc = evfi_wrap(rc, "setting up '%s'", path);
		sq_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}

bool evfi_sqlite_threadsafe(void)
{
	return sqlite3_threadsafe() != 0;
}

int evfi_sqlite_wrap(evf_store **out, struct sqlite3 *conn, const evf_options *o,
                     const char *table)
{
	sq_store *s = sq_new(o, table);
	if (!s)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	s->db = conn;
	s->borrowed = true;
	*out = &s->base;
	return 0;
}
