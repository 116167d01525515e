/*
 * pg.c - the PostgreSQL backend (libpq): many workers on many hosts.
 *
 * Claims use FOR UPDATE SKIP LOCKED so workers never wait on each other's
 * rows; times come from the server's clock (now()) so hosts with skewed
 * clocks still agree on leases.  Every statement is an unnamed
 * PQexecParams, so nothing depends on session state and PgBouncer in
 * transaction mode works; LISTEN is only a wake-up hint on top of polling.
 */
#include "evf_internal.h"

#include <libpq-fe.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXARGS 16
#define PREPARED_MAX 32

typedef struct pg_store {
	evf_store base;
	PGconn *conn;
	char *conninfo;
	bool borrowed;
	bool listening;
	bool listen_wanted;
	bool wake;       /* emits NOTIFY idle workers */
	bool basic_tx;    /* a basic-table batch holds its rows in a transaction */
	unsigned have_ext; /* extended columns present (bits of store/ddl.c) */
	int extended;
	bool copy_binary; /* the COPY columns take binary COPY (copy_types) */
	char qt[64];      /* quoted table name */
	char channel[64]; /* NOTIFY channel: evf_<table> */
	bool prepare;     /* name the pipelines' statements (see pipe_send) */
	char *prepared[PREPARED_MAX]; /* SQL of statement evf_<tag>_<gen>_<i> */
	unsigned prepared_gen; /* bumped whenever the texts are forgotten */
	uint64_t prepared_tag; /* random: no other client's names are ours */
} pg_store;

#define PG(s) ((pg_store *)(s))

/* A statement being built: SQL text plus its $n arguments. */
typedef struct pgq {
	evfi_buf sql;
	char *args[MAXARGS];
	int n;
	bool oom;
} pgq;

static void q_sql(pgq *q, const char *fmt, ...) EVF_PRINTF(2, 3);
static void q_sql(pgq *q, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf) {
		q->oom = true;
		return;
	}
	evfi_buf_puts(&q->sql, buf);
}

/* Append "$n" standing for v (copied; NULL binds SQL NULL). */
static void q_arg(pgq *q, const char *v)
{
	if (q->n >= MAXARGS) {
		q->oom = true;
		return;
	}
	q->args[q->n] = v ? strdup(v) : NULL;
	if (v && !q->args[q->n])
		q->oom = true;
	q->n++;
	evfi_buf_printf(&q->sql, "$%d", q->n);
}

/* An argument the caller built (NULL: it ran out of memory), freed here. */
static void q_arg_take(pgq *q, char *v)
{
	if (!v)
		q->oom = true;
	q_arg(q, v);
	free(v);
}

static void q_int(pgq *q, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)v);
	q_arg(q, buf);
}

static void q_time(pgq *q, evf_time t)
{
	char buf[48];
	if (!t) {
		q_arg(q, NULL);
		return;
	}
	evf_time_format(buf, sizeof buf, t);
	strcat(buf, "+00");
	q_arg(q, buf);
	evfi_buf_puts(&q->sql, "::timestamptz");
}

static void q_free(pgq *q)
{
	for (int i = 0; i < q->n; i++)
		free(q->args[i]);
	evfi_buf_free(&q->sql);
	memset(q, 0, sizeof *q);
}

/* ---- connection -------------------------------------------------------- */

static bool conn_lost(pg_store *s)
{
	return PQstatus(s->conn) != CONNECTION_OK;
}

/* Whether a failed result carries this SQLSTATE. */
static bool sqlstate_is(const PGresult *r, const char *code)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return st && !strcmp(st, code);
}

/* The first line of libpq's message, which never holds a password. */
static int pg_errmsg(pg_store *s, const PGresult *r, const char *what)
{
	const char *m = r ? PQresultErrorMessage(r) : "";
	if (!m || !*m)
		m = PQerrorMessage(s->conn);
	char line[400];
	snprintf(line, sizeof line, "%s", m ? m : "unknown error");
	line[strcspn(line, "\n")] = '\0';
	if (conn_lost(s))
		return evfi_fail(EVF_EUNAVAILABLE, "%s: connection to the server lost: %s", what, line);
	int code = EVF_ESTORE;
	if (sqlstate_is(r, "42P01"))
		code = EVF_ESCHEMA;
	else if (sqlstate_is(r, "40001") || sqlstate_is(r, "40P01") || sqlstate_is(r, "55P03"))
		code = EVF_EBUSY;
	return evfi_fail(code, "%s: %s", what, line);
}

/* Stop using the prepared statements: they are gone (a new session),
 * were prepared for an older shape of the table, or their state is
 * unknown.  The next ones get new names, so no Parse can collide with
 * one left on the server, and nothing is deallocated: behind a pooler
 * that could reach another client's statements. */
static void forget_prepared(pg_store *s)
{
	for (int i = 0; i < PREPARED_MAX; i++) {
		free(s->prepared[i]);
		s->prepared[i] = NULL;
	}
	s->prepared_gen++;
}

/* Reconnect a lost connection; the caller retries the operation. */
static int ensure_conn(pg_store *s)
{
	if (!conn_lost(s))
		return 0;
	if (s->borrowed)
		return evfi_fail(EVF_EUNAVAILABLE, "the caller's PostgreSQL connection is broken");
	PQreset(s->conn);
	if (conn_lost(s)) {
		char line[300];
		snprintf(line, sizeof line, "%s", PQerrorMessage(s->conn));
		line[strcspn(line, "\n")] = '\0';
		return evfi_fail(EVF_EUNAVAILABLE, "cannot reach the PostgreSQL server: %s", line);
	}
	s->listening = false; /* LISTEN does not survive a new session */
	forget_prepared(s);   /* nor do prepared statements */
	return 0;
}

static PGresult *run(pg_store *s, pgq *q, const char *what, int *rc)
{
	*rc = 0;
	if (q->oom || q->sql.oom) {
		*rc = evfi_fail(EVF_ENOMEM, "out of memory building a statement");
		return NULL;
	}
	if ((*rc = ensure_conn(s)))
		return NULL;
	PGresult *r = PQexecParams(s->conn, q->sql.data, q->n, NULL,
	                           (const char *const *)q->args, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		*rc = pg_errmsg(s, r, what);
		PQclear(r);
		return NULL;
	}
	return r;
}

static int run_simple(pg_store *s, const char *sql, const char *what)
{
	pgq q = { 0 };
	int rc;
	evfi_buf_puts(&q.sql, sql);
	PGresult *r = run(s, &q, what, &rc);
	PQclear(r);
	q_free(&q);
	return rc;
}

static int begin(pg_store *s)
{
	return s->basic_tx ? 0 : run_simple(s, "BEGIN", "starting a transaction");
}

static int commit(pg_store *s)
{
	return s->basic_tx ? 0 : run_simple(s, "COMMIT", "committing");
}

static void rollback(pg_store *s)
{
	if (s->basic_tx)
		return; /* end_batch decides */
	char saved[512];
	snprintf(saved, sizeof saved, "%s", evf_error_last());
	if (!conn_lost(s))
		PQclear(PQexec(s->conn, "ROLLBACK"));
	evfi_fail(EVF_ESTORE, "%s", saved);
}

/* Claims and completions commit without waiting for their WAL flush: a
 * crash can lose only the last of them, which at-least-once delivery
 * absorbs (a lost claim is claimed again, a lost completion runs its event
 * again, and the lease check keeps a stale write out).  Emits, and
 * everything on the caller's own connection, stay fully durable. */
static bool relaxed(const pg_store *s)
{
	return !s->borrowed && !s->basic_tx;
}

/* The name of prepared slot `slot`.  Behind a pooler in transaction mode
 * a client's transaction may land on a server session where another
 * client prepared statements: with names of its own a client can only
 * find its statement missing there (and then stops naming them, see
 * names_failed), never run somebody else's under the same name. */
static void statement_name(const pg_store *s, int slot, char *buf, size_t len)
{
	snprintf(buf, len, "evf_%016" PRIx64 "_%u_%d", s->prepared_tag, s->prepared_gen, slot);
}

/* Send one statement of a pipeline; false when libpq refused it.
 *
 * A built statement (claims, completions, failures, emits: the same few
 * texts again and again) is prepared on its first use (statement_name)
 * and then only bound and run: parsing and planning it each time took a
 * quarter of the server's time per drained event.  *parsed is the slot whose
 * Parse went just before it (its answer comes first), or -1.  Not on the
 * caller's connection (its session is theirs), nor with no_listen, for
 * poolers that keep no session state (PgBouncer before 1.21 in
 * transaction mode); beyond PREPARED_MAX texts, unnamed as before. */
static bool pipe_send(pg_store *s, const char *sql, const pgq *q, int *parsed)
{
	const char *const *args = q ? (const char *const *)q->args : NULL;
	int n = q ? q->n : 0, slot = -1, free_slot = -1;
	char name[48];

	*parsed = -1;
	for (int i = 0; q && s->prepare && i < PREPARED_MAX && slot < 0; i++) {
		if (s->prepared[i] && !strcmp(s->prepared[i], sql))
			slot = i;
		else if (!s->prepared[i] && free_slot < 0)
			free_slot = i;
	}
	if (slot < 0 && free_slot >= 0 && (s->prepared[free_slot] = strdup(sql))) {
		statement_name(s, free_slot, name, sizeof name);
		if (!PQsendPrepare(s->conn, name, sql, n, NULL)) {
			free(s->prepared[free_slot]);
			s->prepared[free_slot] = NULL;
			return false;
		}
		slot = *parsed = free_slot;
	}
	if (slot < 0)
		return PQsendQueryParams(s->conn, sql, n, NULL, args, NULL, NULL, 0) == 1;
	statement_name(s, slot, name, sizeof name);
	/* refused after its Parse went: *parsed stays, for that answer */
	return PQsendQueryPrepared(s->conn, name, n, args, NULL, NULL, 0) == 1;
}

/* Read the answer to the Parse of prepared slot `slot`: the slot stays
 * only if the statement now exists.  A failure goes to *err when err is
 * given and holds none yet. */
static void read_parse(pg_store *s, int slot, PGresult **err)
{
	bool prepared = false;
	PGresult *r;
	while ((r = PQgetResult(s->conn))) {
		ExecStatusType st = PQresultStatus(r);
		prepared = st == PGRES_COMMAND_OK;
		if (!prepared && st != PGRES_PIPELINE_ABORTED && err && !*err) {
			*err = r;
			continue;
		}
		PQclear(r);
	}
	if (!prepared) {
		free(s->prepared[slot]);
		s->prepared[slot] = NULL;
	}
}

/* One statement of a pipeline: fixed text or a built query; its result
 * goes to *res when res is set.  An optional step's failure is ignored:
 * only the wake-up after an emit's COMMIT is one. */
typedef struct pipe_step {
	const char *sql;
	const pgq *q;
	PGresult **res;
	bool optional;
} pipe_step;

/* Whether a pipeline failed because its named statements were not what
 * this session holds: gone (26000) or taken (42P05), as behind a pooler
 * in transaction mode that hands each transaction another server session,
 * or prepared for another shape of the table (0A000, "cached plan must
 * not change result type"). */
static bool names_failed(const PGresult *err)
{
	return sqlstate_is(err, "26000") || sqlstate_is(err, "42P05") || sqlstate_is(err, "0A000");
}

/* Run steps[0..n) in one round trip: libpq's pipeline mode sends them all
 * before reading any answer.  On failure no result is kept, and an open
 * transaction is rolled back (nothing in it stands).  *retry is set when
 * the prepared statements failed and the same steps can run again. */
static int pipeline_once(pg_store *s, const pipe_step *steps, size_t n, const char *what,
                         bool *retry)
{
	size_t sent = 0;
	int rc = 0;
	*retry = false;
	for (size_t i = 0; i < n; i++) {
		if (steps[i].res)
			*steps[i].res = NULL;
		if (steps[i].q && (steps[i].q->oom || steps[i].q->sql.oom))
			return evfi_fail(EVF_ENOMEM, "out of memory building a statement");
	}
	if ((rc = ensure_conn(s)))
		return rc;
	int *parsed = malloc((n ? n : 1) * sizeof *parsed);
	if (!parsed)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	if (!PQenterPipelineMode(s->conn)) {
		free(parsed);
		return pg_errmsg(s, NULL, what);
	}
	while (sent < n && pipe_send(s, steps[sent].q ? steps[sent].q->sql.data : steps[sent].sql,
	                             steps[sent].q, &parsed[sent]))
		sent++;
	/* the sync goes even after a refused send: without it the server
	 * never flushes the answers of what was sent, and reading would hang */
	bool failed = !PQpipelineSync(s->conn) || sent < n;
	/* Every sent statement ends with a NULL result; a statement after a
	 * failed one answers PGRES_PIPELINE_ABORTED.  The first error is
	 * judged only after the rest is read: a server shutting down sends
	 * its FATAL error first and closes the connection after, and only
	 * then does the error count as a lost connection. */
	PGresult *err = NULL;
	bool *answered = calloc(n ? n : 1, sizeof *answered);
	if (!answered)
		failed = true;
	for (size_t k = 0; k < sent; k++) {
		PGresult *r;
		if (parsed[k] >= 0) /* the Parse sent before this statement */
			read_parse(s, parsed[k], steps[k].optional ? NULL : &err);
		while ((r = PQgetResult(s->conn))) {
			ExecStatusType st = PQresultStatus(r);
			bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
			if (ok && answered && !answered[k]) {
				answered[k] = true;
				if (steps[k].res) {
					*steps[k].res = r;
					continue;
				}
			} else if (!ok && st != PGRES_PIPELINE_ABORTED && !err && !steps[k].optional) {
				err = r;
				continue;
			}
			PQclear(r);
		}
	}
	if (sent < n && parsed[sent] >= 0) /* the Parse of a refused statement */
		read_parse(s, parsed[sent], NULL);
	PGresult *r;
	while ((r = PQgetResult(s->conn))) { /* the sync's own result */
		bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		if (sync)
			break;
	}
	failed = !PQexitPipelineMode(s->conn) || failed;
	/* no answer and no error: the connection went */
	for (size_t i = 0; i < n && !failed; i++)
		failed = !steps[i].optional && !answered[i];
	free(answered);
	free(parsed);
	if (err || failed)
		rc = pg_errmsg(s, err, what);
	if (names_failed(err) && !conn_lost(s)) {
		if (!sqlstate_is(err, "0A000"))
			s->prepare = false; /* a pooler: unnamed from now on */
		forget_prepared(s);
		*retry = true;
	}
	PQclear(err);
	if (!conn_lost(s) && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
		char saved[512];
		snprintf(saved, sizeof saved, "%s", evf_error_last());
		PQclear(PQexec(s->conn, "ROLLBACK")); /* a failed optional step's */
		if (rc)
			evfi_fail(rc, "%s", saved);
	}
	if (!rc)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (steps[i].res) {
			PQclear(*steps[i].res);
			*steps[i].res = NULL;
		}
	return rc;
}

/* pipeline_once, again once its prepared statements failed: a failed
 * statement aborts the pipeline's transaction, and only optional steps
 * (a wake-up) follow a COMMIT, so nothing of the first run stands. */
static int run_pipeline(pg_store *s, const pipe_step *steps, size_t n, const char *what)
{
	bool retry;
	int rc = pipeline_once(s, steps, n, what, &retry);
	if (rc && retry) {
		evfi_error_clear();
		rc = pipeline_once(s, steps, n, what, &retry);
	}
	return rc;
}

/* Run qs[0..nq) as one transaction (BEGIN, with relaxed_commit SET LOCAL
 * synchronous_commit = off, then `set` when given: settings for this
 * transaction alone, the statements, COMMIT) in one round trip, where one
 * statement at a time cost four round trips for each claim or completion.
 * res[i] receives each statement's result; on failure none. */
static int run_tx(pg_store *s, bool relaxed_commit, const char *set, pgq *qs, size_t nq,
                  PGresult **res, const char *what)
{
	size_t head = 1;
	pipe_step *steps = calloc(nq + 4, sizeof *steps);
	if (!steps)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	steps[0].sql = "BEGIN";
	if (relaxed_commit)
		steps[head++].sql = "SET LOCAL synchronous_commit = off";
	if (set)
		steps[head++].sql = set;
	for (size_t i = 0; i < nq; i++)
		steps[i + head] = (pipe_step){ .q = &qs[i], .res = &res[i] };
	steps[nq + head].sql = "COMMIT";
	int rc = run_pipeline(s, steps, nq + head + 1, what);
	free(steps);
	return rc;
}

static int run_relaxed(pg_store *s, pgq *qs, size_t nq, PGresult **res, const char *what)
{
	return run_tx(s, true, NULL, qs, nq, res, what);
}

/* ---- schema ---------------------------------------------------------------- */

/* The columns a COPY fills, in the order copy_row_text and
 * copy_row_binary write them, with the types whose binary form
 * copy_row_binary writes (text-like columns take varchar too). */
static const struct {
	const char *name, *type, *alt;
} copy_cols[] = {
	{ "id", "int8", NULL },
	{ "type", "text", "varchar" },
	{ "parameters", "jsonb", NULL },
	{ "date", "timestamptz", NULL },
	{ "processed", "bool", NULL },
	{ "error", "bool", NULL },
	{ "error_message", "text", "varchar" },
	{ "correlation_id", "text", "varchar" },
	{ "priority", "int4", NULL },
	{ "not_before", "timestamptz", NULL },
	{ "max_attempts", "int4", NULL },
};
#define COPY_NCOLS (sizeof copy_cols / sizeof copy_cols[0])

static bool copy_type_ok(const char *column, const char *type)
{
	for (size_t i = 0; i < COPY_NCOLS; i++)
		if (!strcmp(column, copy_cols[i].name))
			return !strcmp(type, copy_cols[i].type) ||
			       (copy_cols[i].alt && !strcmp(type, copy_cols[i].alt));
	return false;
}

static int detect_schema(pg_store *s)
{
	pgq q = { 0 };
	int rc;
	q_sql(&q, "SELECT column_name, udt_name FROM information_schema.columns WHERE "
	      "table_schema = current_schema() AND table_name = ");
	q_arg(&q, s->base.table);
	PGresult *r = run(s, &q, "reading the table's columns", &rc);
	q_free(&q);
	if (!r)
		return rc;
	unsigned have_basic = 0, have_ext = 0;
	size_t binary_ok = 0;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		bool basic;
		unsigned bit = evfi_column_bit(PQgetvalue(r, i, 0), &basic);
		if (basic)
			have_basic |= bit;
		else
			have_ext |= bit;
		binary_ok += copy_type_ok(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	}
	PQclear(r);
	s->copy_binary = binary_ok == COPY_NCOLS;
	if ((rc = evfi_schema_verdict(s->base.table, n, have_basic)))
		return rc;
	s->have_ext = have_ext;
	s->extended = have_ext == EVFI_ALL_EXT;
	return 0;
}

static int pg_schema_extended(evf_store *base)
{
	pg_store *s = PG(base);
	if (s->extended < 0) {
		int rc = detect_schema(s);
		if (rc)
			return rc;
	}
	return s->extended;
}

static int need_extended(pg_store *s, const char *what)
{
	int rc = pg_schema_extended(&s->base);
	if (rc < 0)
		return rc;
	return rc == 0 ? evfi_fail_basic(what, s->base.table) : 0;
}

/* init (create) and migrate (add what is missing) share one transaction
 * shape: lock, look at the table, build the DDL, run it, record the
 * version.  PostgreSQL DDL is transactional, so a failure leaves nothing. */
static int schema_change(pg_store *s, bool migrate, bool dry_run, char **sql_out)
{
	const char *t = s->base.table, *q = s->qt;
	evfi_buf b = { 0 };
	int rc;

	if (sql_out)
		*sql_out = NULL;
	if ((rc = ensure_conn(s)) || (rc = run_simple(s, "BEGIN", "starting a transaction")))
		return rc;
	/* Two inits at once must not race on CREATE ... IF NOT EXISTS. */
	if ((rc = run_simple(s, "SELECT pg_advisory_xact_lock(7240291)", "locking the schema")))
		goto fail;
	s->extended = -1;
	rc = detect_schema(s);
	if (migrate && rc)
		goto fail;
	if (!migrate && rc == 0 && !s->extended) {
		rc = evfi_fail(EVF_EBASIC, "table %s exists as a basic table from the "
		               "original package; init never alters it ('evfctl migrate' "
		               "adds the extended columns)", t);
		goto fail;
	}
	evfi_error_clear();
	if (migrate) {
		evfi_ddl_add_columns(&b, q, s->have_ext, true, false, s->base.opts->max_attempts);
	} else {
		/* A claim updates every row of a run of pages, and stays HOT (no
		 * index entries written) only where the new row versions fit on
		 * the same page: at fillfactor 80 about a quarter of a page's
		 * rows did, at 50 all of them.  Drain +30% (w1 b100 24k -> 32k,
		 * w2 b100 33k -> 43k/s), and the table came out smaller after a
		 * drain (21 MB against 24 MB for 100k events: fewer dead
		 * versions), so the space held back pays for itself. */
		evfi_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (id bigint GENERATED BY "
			"DEFAULT AS IDENTITY PRIMARY KEY, type text NOT NULL, parameters jsonb NOT "
			"NULL DEFAULT '{}', date timestamptz NOT NULL DEFAULT now(), processed "
			"boolean NOT NULL DEFAULT false, error boolean NOT NULL DEFAULT false, "
			"error_message text", q);
		evfi_ddl_columns(&b, true, false, s->base.opts->max_attempts);
		evfi_buf_puts(&b, ") WITH (fillfactor = 50);\n");
	}
	evfi_ddl_indexes(&b, t, q, true);
	if (b.oom) {
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
		goto fail;
	}
	if (dry_run) {
		PQclear(PQexec(s->conn, "ROLLBACK"));
		evfi_buf_printf(&b, "INSERT INTO evf_schema (table_name, version, updated_at) "
		                "VALUES ('%s', 1, now()) ON CONFLICT (table_name) DO UPDATE SET "
		                "version = excluded.version, updated_at = excluded.updated_at;\n", t);
		if (b.oom) {
			evfi_buf_free(&b);
			return evfi_fail(EVF_ENOMEM, "out of memory");
		}
		*sql_out = b.data;
		return 0;
	}
	/* Several statements, no parameters: the simple protocol takes them. */
	PGresult *r = PQexec(s->conn, b.data);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = pg_errmsg(s, r, migrate ? "migrating the table" : "creating the table");
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	pgq v = { 0 };
	q_sql(&v, "INSERT INTO evf_schema (table_name, version, updated_at) VALUES (");
	q_arg(&v, t);
	q_sql(&v, ", 1, now()) ON CONFLICT (table_name) DO UPDATE SET version = "
	      "excluded.version, updated_at = excluded.updated_at");
	r = run(s, &v, "recording the schema version", &rc);
	PQclear(r);
	q_free(&v);
	if (rc)
		goto fail;
	if ((rc = run_simple(s, "COMMIT", "committing the schema")))
		goto fail;
	s->extended = -1;
	forget_prepared(s); /* prepared for the old shape */
	if (sql_out)
		*sql_out = b.data;
	else
		evfi_buf_free(&b);
	return 0;
fail:
	evfi_buf_free(&b);
	{
		char saved[512];
		snprintf(saved, sizeof saved, "%s", evf_error_last());
		if (!conn_lost(s))
			PQclear(PQexec(s->conn, "ROLLBACK"));
		evfi_fail(rc, "%s", saved);
	}
	s->extended = -1;
	return rc;
}

static int pg_init(evf_store *base)
{
	return schema_change(PG(base), false, false, NULL);
}

static int pg_migrate(evf_store *base, bool dry_run, char **sql_out)
{
	return schema_change(PG(base), true, dry_run, sql_out);
}

/* ---- rows ------------------------------------------------------------------ */

#define TS(c) "(extract(epoch from " c ") * 1000000)::bigint"
#define EXT_COLS "id, type, parameters::text, " TS("date") ", processed, error, " \
	"error_message, error_code, idempotency_key, correlation_id, priority, " \
	TS("not_before") ", attempts, max_attempts, " TS("last_error_at") ", " \
	TS("processed_at") ", dead, locked_by, " TS("locked_until") ", " TS("now()")
#define BASIC_COLS "id, type, parameters::text, " TS("date") ", processed, error, " \
	"error_message, NULL, NULL, NULL, 0, NULL, 0, 0, NULL, NULL, false, NULL, NULL, " \
	TS("now()")
/* The same list qualified, for UPDATE ... FROM ... RETURNING. */
#define EXT_COLS_T(t) t ".id, " t ".type, " t ".parameters::text, " TS(t ".date") ", " \
	t ".processed, " t ".error, " t ".error_message, " t ".error_code, " \
	t ".idempotency_key, " t ".correlation_id, " t ".priority, " TS(t ".not_before") ", " \
	t ".attempts, " t ".max_attempts, " TS(t ".last_error_at") ", " \
	TS(t ".processed_at") ", " t ".dead, " t ".locked_by, " TS(t ".locked_until") ", " \
	TS("now()")

static char *val(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static int64_t ival(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool bval(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static int read_row(const PGresult *r, int i, evf_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->id = ival(r, i, 0);
	ev->type = val(r, i, 1);
	ev->parameters = val(r, i, 2);
	ev->date = ival(r, i, 3);
	ev->processed = bval(r, i, 4);
	ev->error = bval(r, i, 5);
	ev->error_message = val(r, i, 6);
	ev->error_code = val(r, i, 7);
	ev->idempotency_key = val(r, i, 8);
	ev->correlation_id = val(r, i, 9);
	ev->priority = (int)ival(r, i, 10);
	ev->not_before = ival(r, i, 11);
	ev->attempts = (int)ival(r, i, 12);
	ev->max_attempts = (int)ival(r, i, 13);
	ev->last_error_at = ival(r, i, 14);
	ev->processed_at = ival(r, i, 15);
	ev->dead = bval(r, i, 16);
	ev->locked_by = val(r, i, 17);
	ev->locked_until = ival(r, i, 18);
	if (!ev->type)
		ev->type = strdup("");
	if (!ev->parameters)
		ev->parameters = strdup("null");
	ev->state = evfi_state_of(ev, ival(r, i, 19));
	if (!ev->type || !ev->parameters) {
		evfi_event_clear(ev);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- emit -------------------------------------------------------------------- */

static int find_key(pg_store *s, const char *type, const char *key, int64_t *id)
{
	pgq q = { 0 };
	int rc;
	*id = 0;
	q_sql(&q, "SELECT id FROM %s WHERE type = ", s->qt);
	q_arg(&q, type);
	q_sql(&q, " AND idempotency_key = ");
	q_arg(&q, key);
	PGresult *r = run(s, &q, "looking up a key", &rc);
	q_free(&q);
	if (r && PQntuples(r) > 0)
		*id = ival(r, 0, 0);
	PQclear(r);
	return rc;
}

/* The INSERT of one event, RETURNING its id; a keyed one does nothing on
 * a conflict of its key. */
static int emit_query(pg_store *s, const evf_emit_item *it, pgq *qp)
{
	const evf_emit_options *o = &it->opts;
	pgq q = { 0 };

	if (!s->extended) {
		q_sql(&q, "INSERT INTO %s (type, parameters, date, processed, error, "
		      "error_message) VALUES (", s->qt);
		q_arg(&q, it->type);
		q_sql(&q, ", ");
		q_arg(&q, it->parameters ? it->parameters : "{}");
		q_sql(&q, ", now(), false, false, '') RETURNING id");
	} else {
		/* processed, error and error_message spelled out: migrated
		 * Django tables have them NOT NULL without defaults */
		q_sql(&q, "INSERT INTO %s (type, parameters, date, processed, error, "
		      "error_message, idempotency_key, correlation_id, priority, not_before, "
		      "max_attempts) VALUES (", s->qt);
		q_arg(&q, it->type);
		q_sql(&q, ", ");
		q_arg(&q, it->parameters ? it->parameters : "{}");
		q_sql(&q, "::jsonb, now(), false, false, '', ");
		q_arg(&q, o->key);
		q_sql(&q, ", ");
		q_arg(&q, o->correlation_id);
		q_sql(&q, ", ");
		q_int(&q, o->priority);
		q_sql(&q, ", ");
		if (o->not_before) {
			q_time(&q, o->not_before);
		} else {
			q_sql(&q, "now() + ");
			q_int(&q, o->delay_ms);
			q_sql(&q, " * interval '1 millisecond'");
		}
		q_sql(&q, ", ");
		q_int(&q, o->max_attempts > 0 ? o->max_attempts : s->base.opts->max_attempts);
		q_sql(&q, ") ON CONFLICT (type, idempotency_key) WHERE idempotency_key "
		      "IS NOT NULL DO NOTHING RETURNING id");
	}
	*qp = q;
	return 0;
}

static int emit_one(pg_store *s, const evf_emit_item *it, evf_emit_result *res)
{
	const evf_emit_options *o = &it->opts;
	pgq q;
	int rc;

	/* Look first: a conflicting INSERT would still use up an id. */
	if (s->extended && o->key) {
		if ((rc = find_key(s, it->type, o->key, &res->id)))
			return rc;
		if (res->id) {
			res->duplicate = true;
			return 0;
		}
	}
	if ((rc = emit_query(s, it, &q)))
		return rc;
	PGresult *r = run(s, &q, "inserting an event", &rc);
	q_free(&q);
	if (!r)
		return rc;
	if (PQntuples(r) == 1) {
		res->id = ival(r, 0, 0);
		res->duplicate = false;
		PQclear(r);
		return 0;
	}
	PQclear(r);
	/* Another emitter inserted the same key between the look-up and now. */
	if ((rc = find_key(s, it->type, o->key, &res->id)))
		return rc;
	res->duplicate = true;
	return res->id ? 0 : evfi_fail(EVF_ESTORE, "insert of a %s event was ignored "
	                               "but no duplicate was found", it->type);
}

/* One COPY text-format field: backslash escapes, \N for NULL. */
static void copy_field(evfi_buf *b, const char *v, bool last)
{
	if (!v) {
		evfi_buf_puts(b, "\\N");
	} else {
		for (const char *p = v; *p; p++) {
			switch (*p) {
			case '\\': evfi_buf_puts(b, "\\\\"); break;
			case '\t': evfi_buf_puts(b, "\\t"); break;
			case '\n': evfi_buf_puts(b, "\\n"); break;
			case '\r': evfi_buf_puts(b, "\\r"); break;
			default: evfi_buf_add(b, p, 1);
			}
		}
	}
	evfi_buf_add(b, last ? "\n" : "\t", 1);
}

/* What a COPY row holds beyond its item. */
typedef struct copy_row {
	const evf_emit_item *item;
	int64_t id;
	evf_time now, not_before;
	int max_attempts;
	char date[48]; /* text format: now, formatted once per batch */
} copy_row;

static void copy_row_text(evfi_buf *b, const copy_row *c)
{
	const evf_emit_item *it = c->item;
	char nb[48], num[32], prio[16], max[16];
	snprintf(num, sizeof num, "%lld", (long long)c->id);
	snprintf(prio, sizeof prio, "%d", it->opts.priority);
	snprintf(max, sizeof max, "%d", c->max_attempts);
	evf_time_format(nb, sizeof nb, c->not_before);
	strcat(nb, "+00");
	copy_field(b, num, false);
	copy_field(b, it->type, false);
	copy_field(b, it->parameters ? it->parameters : "{}", false);
	copy_field(b, c->date, false);
	copy_field(b, "f", false);
	copy_field(b, "f", false);
	copy_field(b, "", false);
	copy_field(b, it->opts.correlation_id, false);
	copy_field(b, prio, false);
	copy_field(b, nb, false);
	copy_field(b, max, true);
}

/* An unsigned big-endian integer of `bytes` bytes (binary COPY). */
static void put_be(evfi_buf *b, uint64_t v, int bytes)
{
	char out[8];
	for (int i = 0; i < bytes; i++)
		out[i] = (char)(v >> (8 * (bytes - 1 - i)));
	evfi_buf_add(b, out, (size_t)bytes);
}

/* A fixed-size binary COPY field: its length, then the integer. */
static void put_fixed(evfi_buf *b, uint64_t v, int bytes)
{
	put_be(b, (uint64_t)bytes, 4);
	put_be(b, v, bytes);
}

/* A binary COPY field: its length, then its bytes (NULL: length -1);
 * `prefix` (the jsonb format version) goes before them. */
static void put_field(evfi_buf *b, const char *prefix, const char *v)
{
	size_t pre = prefix ? strlen(prefix) : 0;
	if (!v) {
		put_be(b, (uint32_t)-1, 4);
		return;
	}
	size_t len = strlen(v);
	put_be(b, (uint32_t)(pre + len), 4);
	evfi_buf_add(b, prefix ? prefix : "", pre);
	evfi_buf_add(b, v, len);
}

/* Microseconds since 2000-01-01 UTC, PostgreSQL's timestamp epoch. */
#define PG_EPOCH_US INT64_C(946684800000000)

/* Binary COPY: no number or time to print and the server to parse, about
 * a sixth of a COPY's server time (the columns' types were checked by
 * detect_schema). */
static void copy_row_binary(evfi_buf *b, const copy_row *c)
{
	const evf_emit_item *it = c->item;
	put_be(b, COPY_NCOLS, 2);
	put_fixed(b, (uint64_t)c->id, 8);
	put_field(b, NULL, it->type);
	put_field(b, "\001", it->parameters ? it->parameters : "{}");
	put_fixed(b, (uint64_t)(c->now - PG_EPOCH_US), 8);
	put_fixed(b, 0, 1); /* processed */
	put_fixed(b, 0, 1); /* error */
	put_field(b, NULL, "");
	put_field(b, NULL, it->opts.correlation_id);
	put_fixed(b, (uint32_t)it->opts.priority, 4);
	put_fixed(b, (uint64_t)(c->not_before - PG_EPOCH_US), 8);
	put_fixed(b, (uint32_t)c->max_attempts, 4);
}

/* Send what the buffer holds of a COPY's data, and empty it. */
static int copy_send(pg_store *s, evfi_buf *b)
{
	if (b->oom)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	int rc = PQputCopyData(s->conn, b->data, (int)b->len) == 1
	         ? 0 : pg_errmsg(s, NULL, "sending events");
	b->len = 0;
	return rc;
}

/* Batches without idempotency keys go in with COPY: ids come from the
 * table's sequence first, so each item still learns its id. */
static int emit_copy(pg_store *s, const evf_emit_item *items, size_t n,
                     evf_emit_result *out)
{
	pgq q = { 0 };
	int rc;
	char qt_lit[80];
	snprintf(qt_lit, sizeof qt_lit, "%s", s->qt);
	/* The sequence is looked up once (OFFSET 0 keeps the planner from
	 * pulling the look-up into every row: it was a sixth of a COPY's
	 * server time). */
	q_sql(&q, "SELECT nextval(x.seq), x.now FROM (SELECT pg_get_serial_sequence(");
	q_arg(&q, qt_lit);
	q_sql(&q, ", 'id')::regclass AS seq, " TS("now()") " AS now OFFSET 0) x, "
	      "generate_series(1, ");
	q_int(&q, (int64_t)n);
	q_sql(&q, ")");
	PGresult *r = run(s, &q, "reserving ids", &rc);
	q_free(&q);
	if (!r)
		return rc;
	if ((size_t)PQntuples(r) != n) {
		PQclear(r);
		return evfi_fail(EVF_ESTORE, "reserving ids: the sequence gave too few");
	}
	evf_time now = ival(r, 0, 1);
	int64_t *ids = malloc(n * sizeof *ids);
	if (!ids) {
		PQclear(r);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = ival(r, (int)i, 0);
		if (out)
			out[i] = (evf_emit_result){ ids[i], false };
	}
	PQclear(r);

	char sql[320];
	int len = snprintf(sql, sizeof sql, "COPY %s (", s->qt);
	for (size_t i = 0; i < COPY_NCOLS; i++)
		len += snprintf(sql + len, sizeof sql - (size_t)len, "%s%s", i ? ", " : "",
		                copy_cols[i].name);
	snprintf(sql + len, sizeof sql - (size_t)len, ") FROM STDIN%s",
	         s->copy_binary ? " (FORMAT binary)" : "");
	r = PQexec(s->conn, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = pg_errmsg(s, r, "starting COPY");
		PQclear(r);
		free(ids);
		return rc;
	}
	PQclear(r);
	evfi_buf b = { 0 };
	copy_row rows = { .now = now };
	if (s->copy_binary) {
		/* signature, flags, no header extension */
		evfi_buf_add(&b, "PGCOPY\n\377\r\n\0", 11);
		put_be(&b, 0, 4);
		put_be(&b, 0, 4);
	} else {
		evf_time_format(rows.date, sizeof rows.date, now);
		strcat(rows.date, "+00");
	}
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const evf_emit_options *o = &items[i].opts;
		rows.id = ids[i];
		rows.item = &items[i];
		rows.max_attempts = o->max_attempts > 0 ? o->max_attempts
		                                        : s->base.opts->max_attempts;
		rows.not_before = o->not_before ? o->not_before : now + o->delay_ms * 1000;
		(s->copy_binary ? copy_row_binary : copy_row_text)(&b, &rows);
		if (b.len >= 256 * 1024)
			rc = copy_send(s, &b);
	}
	if (!rc && s->copy_binary)
		put_be(&b, UINT16_MAX, 2); /* end of data: a field count of -1 */
	if (!rc)
		rc = copy_send(s, &b);
	evfi_buf_free(&b);
	free(ids);
	if (PQputCopyEnd(s->conn, rc ? "aborted" : NULL) != 1 && !rc)
		rc = pg_errmsg(s, NULL, "ending COPY");
	while ((r = PQgetResult(s->conn))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !rc)
			rc = pg_errmsg(s, r, "copying events");
		PQclear(r);
	}
	if (rc)
		s->extended = -1; /* a column's type may have changed: read them again */
	return rc;
}

static bool copyable(const pg_store *s, const evf_emit_item *items, size_t n)
{
	if (!s->extended || n < 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (items[i].opts.key)
			return false; /* duplicates need ON CONFLICT, one by one */
	return true;
}

/* The wake-up itself: one NOTIFY on the table's channel.  With async
 * (a wake-up after a commit, in a transaction of its own) the same
 * statement makes that transaction's commit not wait for its WAL flush:
 * set_config(..., true) is SET LOCAL, one statement where there were two.
 * Not in the implicit transaction the pipeline's sync would commit: an
 * error at that commit (a full NOTIFY queue) arrives with no statement to
 * own it, and libpq then leaves the connection in pipeline mode. */
static void notify_query(pg_store *s, pgq *q, bool async)
{
	q_sql(q, async ? "SELECT set_config('synchronous_commit', 'off', true), pg_notify("
	               : "SELECT pg_notify(");
	q_arg(q, s->channel);
	q_sql(q, ", '')");
}

/* Waking idle workers: a NOTIFY holds a database-wide lock from the
 * start of its transaction's commit to the end, so inside an emitting
 * transaction every emitter's durable commit (its WAL flush) took turns:
 * ten clients emitting one event each went at half the rate.  After the
 * commit, in a transaction of its own that does not wait for its flush,
 * the lock is held for a moment.  Should the wake-up be lost (the process
 * dies between the two), idle workers find the events at their next poll.
 * Fills 3 steps. */
static void wake_steps(pg_store *s, pipe_step *st, pgq *q)
{
	notify_query(s, q, true);
	st[0] = (pipe_step){ .sql = "BEGIN", .optional = true };
	st[1] = (pipe_step){ .q = q, .optional = true };
	st[2] = (pipe_step){ .sql = "COMMIT", .optional = true };
}

/* One event without a key, in a transaction of evf's own: BEGIN, INSERT,
 * COMMIT and the wake-up in one round trip instead of four. */
static int emit_single(pg_store *s, const evf_emit_item *it, evf_emit_result *out)
{
	pgq q, wq = { 0 };
	PGresult *r;
	pipe_step st[6] = { { .sql = "BEGIN" }, { .q = &q, .res = &r }, { .sql = "COMMIT" } };
	size_t n = 3;
	int rc = emit_query(s, it, &q);
	if (rc)
		return rc;
	if (s->extended && s->wake) {
		wake_steps(s, &st[3], &wq);
		n = 6;
	}
	rc = run_pipeline(s, st, n, "inserting an event");
	q_free(&q);
	q_free(&wq);
	if (rc)
		return rc;
	if (out)
		*out = (evf_emit_result){ .id = ival(r, 0, 0), .duplicate = false };
	PQclear(r);
	return 0;
}

static void wake_workers(pg_store *s)
{
	pgq q = { 0 };
	pipe_step st[3];
	wake_steps(s, st, &q);
	/* a hint: polling covers a loss, and the emit stands either way */
	if (run_pipeline(s, st, 3, "waking workers"))
		evfi_error_clear();
	q_free(&q);
}

static int pg_emit(evf_store *base, const evf_emit_item *items, size_t n,
                   evf_emit_result *out)
{
	pg_store *s = PG(base);
	int rc;
	if ((rc = ensure_conn(s)))
		return rc;
	if ((rc = pg_schema_extended(base)) < 0 ||
	    (!s->extended && (rc = evfi_emit_check_basic(items, n, base->table))))
		return rc;
	/* Inside the caller's transaction a savepoint keeps the batch
	 * all-or-nothing without ending the caller's transaction. */
	bool own = PQtransactionStatus(s->conn) == PQTRANS_IDLE;
	if (own && n == 1 && !items[0].opts.key)
		return emit_single(s, &items[0], out);
	if ((rc = run_simple(s, own ? "BEGIN" : "SAVEPOINT evf_emit", "emitting")))
		return rc;
	if (copyable(s, items, n))
		rc = emit_copy(s, items, n, out);
	for (size_t i = 0; i < n && !rc && !copyable(s, items, n); i++) {
		evf_emit_result r = { 0, false };
		rc = emit_one(s, &items[i], &r);
		if (!rc && out)
			out[i] = r;
	}
	/* In the caller's transaction the wake-up waits for the caller's
	 * commit: only a NOTIFY there is delivered then. */
	if (!rc && s->extended && s->wake && !own) {
		pgq q = { 0 };
		notify_query(s, &q, false);
		PGresult *r = run(s, &q, "notifying workers", &rc);
		PQclear(r);
		q_free(&q);
	}
	if (rc) {
		char saved[512];
		snprintf(saved, sizeof saved, "%s", evf_error_last());
		if (!conn_lost(s))
			PQclear(PQexec(s->conn, own ? "ROLLBACK"
			                            : "ROLLBACK TO SAVEPOINT evf_emit; RELEASE SAVEPOINT evf_emit"));
		return evfi_fail(rc, "%s", saved);
	}
	if ((rc = run_simple(s, own ? "COMMIT" : "RELEASE SAVEPOINT evf_emit", "committing events")))
		return rc;
	if (own && s->extended && s->wake)
		wake_workers(s);
	return 0;
}

/* ---- claim and outcomes ---------------------------------------------------- */

/* A PostgreSQL array literal of strings: {"a","b\"c"}. */
static char *text_array(const char *const *v, size_t n)
{
	evfi_buf b = { 0 };
	evfi_buf_add(&b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		evfi_buf_puts(&b, i ? ",\"" : "\"");
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				evfi_buf_add(&b, "\\", 1);
			evfi_buf_add(&b, p, 1);
		}
		evfi_buf_add(&b, "\"", 1);
	}
	evfi_buf_add(&b, "}", 1);
	return b.oom ? (evfi_buf_free(&b), NULL) : b.data;
}

static char *int_array(const evf_lease *l, size_t n, bool attempts)
{
	evfi_buf b = { 0 };
	evfi_buf_add(&b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			evfi_buf_add(&b, ",", 1);
		evfi_buf_add_int(&b, attempts ? l[i].attempts : l[i].id);
	}
	evfi_buf_add(&b, "}", 1);
	return b.oom ? (evfi_buf_free(&b), NULL) : b.data;
}

static char *like_of(const char *glob);

static int pg_claim(evf_store *base, const evf_claim *c, evf_event ***out, size_t *n)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ensure_conn(s)))
		return rc;
	if ((rc = pg_schema_extended(base)) < 0)
		return rc;
	bool basic = rc == 0;
	if (basic) {
		/* Basic tables: lock the rows for the whole batch, as the
		 * original package's select_for_update(skip_locked) did. */
		if ((rc = run_simple(s, "BEGIN", "starting a batch")))
			return rc;
		s->basic_tx = true;
		q_sql(&q, "SELECT " BASIC_COLS " FROM %s WHERE processed = false", s->qt);
	} else {
		/* The ids go through an array, not a join: joined, a claim of
		 * 1000 rows looked cheaper to the planner as a hash join over a
		 * scan of the whole table (300 ms at 100k rows) than as 1000
		 * primary-key look-ups. */
		q_sql(&q, "UPDATE %s AS t SET locked_by = ", s->qt);
		q_arg(&q, c->worker_id);
		q_sql(&q, ", locked_until = now() + ");
		q_int(&q, c->lock_ms);
		q_sql(&q, " * interval '1 millisecond', attempts = t.attempts + 1 WHERE t.id = "
		      "ANY(ARRAY(SELECT id FROM %s WHERE processed = false AND dead = false "
		      "AND (not_before IS NULL OR not_before <= now()) "
		      "AND (locked_until IS NULL OR locked_until <= now())", s->qt);
	}
	if (c->types) {
		q_sql(&q, " AND type = ANY(");
		q_arg_take(&q, text_array(c->types, c->ntypes));
		q_sql(&q, "::text[])");
	}
	if (c->older_than) {
		q_sql(&q, " AND date <= ");
		q_time(&q, c->older_than);
	}
	if (c->only_errors)
		q_sql(&q, " AND error = true");
	if (c->max_attempts > 0 && !basic) {
		q_sql(&q, " AND attempts < ");
		q_int(&q, c->max_attempts);
	}
	if (c->nskip) { /* types a rate limit holds back */
		q_sql(&q, " AND NOT (type LIKE ANY(");
		q_arg_take(&q, evfi_strings_mapped(c->skip, c->nskip, like_of, text_array));
		q_sql(&q, "::text[]))");
	}
	if (basic) {
		q_sql(&q, " ORDER BY id LIMIT ");
		q_int(&q, c->limit > 0 ? c->limit : 1);
		q_sql(&q, " FOR UPDATE SKIP LOCKED");
	} else {
		q_sql(&q, " ORDER BY priority, not_before, id LIMIT ");
		q_int(&q, c->limit > 0 ? c->limit : 1);
		q_sql(&q, " FOR UPDATE SKIP LOCKED)) RETURNING " EXT_COLS_T("t"));
	}
	PGresult *r;
	/* On the caller's connection too, when no transaction of theirs is
	 * open (the settings must not outlive the claim's own). */
	bool own_tx = relaxed(s) || (s->borrowed && s->conn &&
	                             PQtransactionStatus(s->conn) == PQTRANS_IDLE);
	if (!basic && own_tx) {
		/* The claim must walk the ready index in claim order.  With
		 * statistics from when the queue was small (or none yet, on a new
		 * table) the planner took the (processed, type) index for a
		 * worker's types and sorted every pending row of them in each
		 * claim: 34,000 rows and 30 ms per claim of 100 here, a drain of
		 * 100k events at 2.9k/s instead of 24k/s.  Without sorts the
		 * ready index is the only way to that order.  And no JIT: past
		 * a million rows the claim's estimated cost crosses jit_above_cost
		 * and every claim compiled its expressions again (tens of ms). */
		rc = run_tx(s, relaxed(s), "SELECT set_config('enable_sort', 'off', true), "
		            "set_config('jit', 'off', true)", &q, 1, &r, "claiming events");
	} else {
		r = run(s, &q, "claiming events", &rc);
	}
	q_free(&q);
	if (!r) {
		if (basic) {
			s->basic_tx = false;
			if (!conn_lost(s))
				PQclear(PQexec(s->conn, "ROLLBACK"));
		}
		return rc;
	}
	int rows = PQntuples(r);
	evf_event **evs = calloc(rows ? (size_t)rows : 1, sizeof *evs);
	if (!evs) {
		PQclear(r);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	for (int i = 0; i < rows; i++) {
		evs[i] = malloc(sizeof *evs[i]);
		if (evs[i] && !read_row(r, i, evs[i]) && basic) {
			evs[i]->attempts = 1; /* the batch's transaction is its lease */
			evs[i]->state = EVF_STATE_RUNNING;
			continue;
		}
		if (!evs[i] || evs[i]->type == NULL) {
			/* the claims stand; their leases expire and they come back */
			free(evs[i]);
			for (int k = 0; k < i; k++)
				evf_event_free(evs[k]);
			free(evs);
			PQclear(r);
			return evfi_fail(EVF_ENOMEM, "out of memory reading claimed events");
		}
	}
	PQclear(r);
	evfi_sort_claimed(evs, (size_t)rows);
	*out = evs;
	*n = (size_t)rows;
	return 0;
}

/* One lease-guarded UPDATE over a batch, built into q. */
static int lease_query(pg_store *s, pgq *q, const char *set, int64_t lock_ms,
                       const char *worker_id, const evf_lease *l, size_t n)
{
	char *ids = int_array(l, n, false), *att = int_array(l, n, true);
	if (!ids || !att) {
		free(ids);
		free(att);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	q_sql(q, "UPDATE %s AS t SET %s", s->qt, set);
	if (lock_ms) {
		q_sql(q, ", locked_until = now() + ");
		q_int(q, lock_ms);
		q_sql(q, " * interval '1 millisecond'");
	}
	q_sql(q, " FROM unnest(");
	q_arg(q, ids);
	q_sql(q, "::bigint[], ");
	q_arg(q, att);
	if (worker_id) {
		q_sql(q, "::int[]) AS l(id, att) WHERE t.id = l.id AND t.attempts = l.att "
		      "AND t.locked_by = ");
		q_arg(q, worker_id);
	} else { /* a basic batch: its transaction holds the rows */
		q_sql(q, "::int[]) AS l(id, att) WHERE t.id = l.id");
	}
	q_sql(q, " RETURNING t.id");
	free(ids);
	free(att);
	return 0;
}

/* Mark (applied, optional) the leases whose ids the UPDATE returned. */
static void lease_applied(const PGresult *r, const evf_lease *l, size_t n, bool *applied)
{
	if (!applied)
		return;
	memset(applied, 0, n * sizeof *applied);
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t id = ival(r, i, 0);
		for (size_t k = 0; k < n; k++)
			if (l[k].id == id)
				applied[k] = true;
	}
}

/* A lease-guarded UPDATE over a batch in its own statement; applied
 * (optional) marks the leases that were still held. */
static int lease_update(pg_store *s, const char *set, int64_t lock_ms,
                        const char *worker_id, const evf_lease *l, size_t n,
                        bool *applied, const char *what)
{
	pgq q = { 0 };
	int rc;
	if (n == 0)
		return 0;
	if ((rc = lease_query(s, &q, set, lock_ms, worker_id, l, n))) {
		q_free(&q);
		return rc;
	}
	PGresult *r = run(s, &q, what, &rc);
	q_free(&q);
	if (!r)
		return rc;
	lease_applied(r, l, n, applied);
	PQclear(r);
	return 0;
}

#define COMPLETE_SET "processed = true, error = false, processed_at = now(), " \
	"locked_by = NULL, locked_until = NULL"

static int pg_complete(evf_store *base, const char *worker_id, const evf_lease *l,
                       size_t n, bool *applied)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int rc;
	if (s->basic_tx)
		return lease_update(s, "processed = true, error = false", 0, NULL, l, n,
		                    applied, "completing events");
	if (!relaxed(s))
		return lease_update(s, COMPLETE_SET, 0, worker_id, l, n, applied,
		                    "completing events");
	if (n == 0)
		return 0;
	PGresult *r;
	if (!(rc = lease_query(s, &q, COMPLETE_SET, 0, worker_id, l, n)) &&
	    !(rc = run_relaxed(s, &q, 1, &r, "completing events"))) {
		lease_applied(r, l, n, applied);
		PQclear(r);
	}
	q_free(&q);
	return rc;
}

static int pg_extend(evf_store *base, const char *worker_id, const evf_lease *l,
                     size_t n, int64_t lock_ms)
{
	if (PG(base)->basic_tx)
		return 0; /* the batch's transaction holds the rows */
	return lease_update(PG(base), "locked_by = t.locked_by", lock_ms, worker_id, l, n,
	                    NULL, "extending leases");
}

static int pg_end_batch(evf_store *base, bool ok)
{
	pg_store *s = PG(base);
	if (!s->basic_tx)
		return 0;
	s->basic_tx = false;
	if (ok)
		return commit(s);
	rollback(s);
	return 0;
}

static int pg_release(evf_store *base, const char *worker_id, const evf_lease *l, size_t n)
{
	if (PG(base)->basic_tx)
		return 0; /* untouched rows are simply not updated */
	return lease_update(PG(base), "locked_by = NULL, locked_until = NULL, "
	                    "attempts = greatest(t.attempts - 1, 0)", 0, worker_id, l, n,
	                    NULL, "releasing events");
}

/* The UPDATE that records one failure. */
static void failure_query(pg_store *s, pgq *q, const char *worker_id, const evf_failure_rec *f)
{
	if (s->basic_tx) { /* final, as the original package recorded failures */
		q_sql(q, "UPDATE %s SET processed = true, error = true, error_message = ", s->qt);
		q_arg(q, f->message ? f->message : "handler failed");
		q_sql(q, " WHERE id = ");
		q_int(q, f->lease.id);
		return;
	}
	q_sql(q, "UPDATE %s SET error = true, error_message = ", s->qt);
	q_arg(q, f->message ? f->message : "handler failed");
	q_sql(q, ", error_code = ");
	q_arg(q, f->code);
	q_sql(q, ", last_error_at = now(), locked_by = NULL, locked_until = NULL, dead = ");
	q_arg(q, f->dead ? "true" : "false");
	q_sql(q, "::boolean, not_before = now()");
	if (!f->dead) {
		q_sql(q, " + ");
		q_int(q, f->retry_ms);
		q_sql(q, " * interval '1 millisecond'");
	}
	q_sql(q, " WHERE id = ");
	q_int(q, f->lease.id);
	q_sql(q, " AND attempts = ");
	q_int(q, f->lease.attempts);
	q_sql(q, " AND locked_by = ");
	q_arg(q, worker_id);
}

static int pg_fail(evf_store *base, const char *worker_id, const evf_failure_rec *recs,
                   size_t n, bool *applied)
{
	pg_store *s = PG(base);
	int rc = 0;
	if (n == 0)
		return 0;
	pgq *qs = calloc(n, sizeof *qs);
	PGresult **res = calloc(n, sizeof *res);
	if (!qs || !res) {
		free(qs);
		free(res);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		failure_query(s, &qs[i], worker_id, &recs[i]);
	if (relaxed(s)) {
		rc = run_relaxed(s, qs, n, res, "recording a failure");
	} else if (!(rc = ensure_conn(s)) && !(rc = begin(s))) {
		/* a basic batch's transaction, or the caller's connection */
		for (size_t i = 0; i < n && !rc; i++)
			res[i] = run(s, &qs[i], "recording a failure", &rc);
		if (rc && !s->basic_tx)
			rollback(s);
		else if (!rc)
			rc = commit(s);
	}
	for (size_t i = 0; i < n; i++) {
		if (!rc && applied)
			applied[i] = !strcmp(PQcmdTuples(res[i]), "1");
		PQclear(res[i]);
		q_free(&qs[i]);
	}
	free(qs);
	free(res);
	return rc;
}

/* ---- queries ------------------------------------------------------------------ */

/* LIKE pattern for a '*' glob: escape LIKE's own wildcards. */
static char *like_of(const char *glob)
{
	evfi_buf b = { 0 };
	for (const char *p = glob; *p; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			evfi_buf_add(&b, "\\", 1);
		evfi_buf_add(&b, *p == '*' ? "%" : p, 1);
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
		return ext ? "priority::bigint" : "0::bigint";
	case EVF_ORDER_ATTEMPTS:
		return ext ? "attempts::bigint" : "0::bigint";
	default:
		return "id";
	}
}

static void where_clause(pg_store *s, pgq *q, const evf_filter *f, bool ext, bool paging)
{
	q_sql(q, " WHERE true");
	evfi_sql_states(&q->sql, f->states, ext, true, "now()");
	evfi_sql_state_hints(&q->sql, f->states, ext, true, s->base.table, s->qt);
	if (f->type && *f->type) {
		if (strchr(f->type, '*')) {
			q_sql(q, " AND type LIKE ");
			q_arg_take(q, like_of(f->type));
		} else {
			q_sql(q, " AND type = ");
			q_arg(q, f->type);
		}
	}
	if (f->nids) {
		evfi_buf b = { 0 };
		evfi_buf_add(&b, "{", 1);
		for (size_t i = 0; i < f->nids; i++)
			evfi_buf_printf(&b, "%s%lld", i ? "," : "", (long long)f->ids[i]);
		evfi_buf_add(&b, "}", 1);
		if (b.oom)
			q->oom = true;
		q_sql(q, " AND id = ANY(");
		q_arg(q, b.data);
		q_sql(q, "::bigint[])");
		evfi_buf_free(&b);
	}
	if (f->since) {
		q_sql(q, " AND date >= ");
		q_time(q, f->since);
	}
	if (f->until) {
		q_sql(q, " AND date < ");
		q_time(q, f->until);
	}
	if (f->errors)
		q_sql(q, " AND error");
	if (f->correlation_id) {
		if (ext) {
			q_sql(q, " AND correlation_id = ");
			q_arg(q, f->correlation_id);
		} else {
			q_sql(q, " AND false");
		}
	}
	if (f->text && *f->text) {
		q_sql(q, " AND (strpos(error_message, ");
		q_arg(q, f->text);
		q_sql(q, ") > 0 OR strpos(parameters::text, ");
		q_arg(q, f->text);
		q_sql(q, ") > 0)");
	}
	if (paging && f->after_id) {
		if (f->order == EVF_ORDER_ID) {
			q_sql(q, f->descending ? " AND id < " : " AND id > ");
		} else {
			q_sql(q, " AND (%s, id) %s (", order_column(f->order, ext),
			      f->descending ? "<" : ">");
			if (f->order == EVF_ORDER_DATE) {
				q_time(q, f->after_key);
			} else {
				q_int(q, f->after_key);
				q_sql(q, "::bigint");
			}
			q_sql(q, ", ");
		}
		q_int(q, f->after_id);
		if (f->order != EVF_ORDER_ID)
			q_sql(q, ")");
	}
}

/* Wait until a result can be read without blocking, or the deadline
 * passes: then ask the server to cancel, read what is left and report
 * EVF_ETIMEDOUT.  A sort without an index sends its first row only after
 * reading the whole table; a console must not freeze on it. */
static int await_result(pg_store *s, int64_t deadline, int64_t budget_ms)
{
	while (PQisBusy(s->conn)) {
		int64_t left = deadline - evfi_mono_ms();
		if (left <= 0) {
			char why[256];
			PGcancel *c = PQgetCancel(s->conn);
			if (c) {
				PQcancel(c, why, sizeof why);
				PQfreeCancel(c);
			}
			PGresult *r;
			while ((r = PQgetResult(s->conn)))
				PQclear(r);
			return evfi_fail(EVF_ETIMEDOUT, "listing events took over %" PRId64 " ms",
			                 budget_ms);
		}
		struct pollfd p = { PQsocket(s->conn), POLLIN, 0 };
		if (poll(&p, 1, (int)(left < 1000 ? left : 1000)) < 0 && errno != EINTR)
			return 0; /* PQgetResult reports what went wrong */
		if (!PQconsumeInput(s->conn))
			return 0;
	}
	return 0;
}

static int pg_query(evf_store *base, const evf_filter *f, evf_row_cb cb, void *user)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	q_sql(&q, "SELECT %s FROM %s", ext ? EXT_COLS : BASIC_COLS, s->qt);
	where_clause(s, &q, f, ext, true);
	if (f->order != EVF_ORDER_ID)
		q_sql(&q, " ORDER BY %s %s,", order_column(f->order, ext),
		      f->descending ? "DESC" : "ASC");
	else
		q_sql(&q, " ORDER BY");
	q_sql(&q, " id %s", f->descending ? "DESC" : "ASC");
	if (f->limit > 0) {
		q_sql(&q, " LIMIT ");
		q_int(&q, f->limit);
	}
	/* Unbounded walks (archive, list --limit 0) stream in single-row mode
	 * instead of holding the whole result in memory. */
	if (q.oom || q.sql.oom) {
		q_free(&q);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if ((rc = ensure_conn(s))) {
		q_free(&q);
		return rc;
	}
	if (!PQsendQueryParams(s->conn, q.sql.data, q.n, NULL, (const char *const *)q.args,
	                       NULL, NULL, 0)) {
		q_free(&q);
		return pg_errmsg(s, NULL, "listing events");
	}
	q_free(&q);
	PQsetSingleRowMode(s->conn);
	PGresult *r;
	int stop = 0;
	int64_t deadline = evfi_mono_ms() + f->budget_ms;
	rc = 0;
	for (;;) {
		if (f->budget_ms > 0 && !rc && !stop) {
			int late = await_result(s, deadline, f->budget_ms);
			if (late)
				return late;
		}
		if (!(r = PQgetResult(s->conn)))
			break;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE && !stop && !rc) {
			evf_event ev;
			if ((rc = read_row(r, 0, &ev)) == 0) {
				stop = cb(&ev, user);
				evfi_event_clear(&ev);
			}
		} else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !rc) {
			rc = pg_errmsg(s, r, "listing events");
		}
		PQclear(r);
	}
	return rc ? rc : stop;
}

static int pg_get(evf_store *base, int64_t id, evf_event **out)
{
	evf_filter f = EVF_FILTER_INIT;
	evf_event *found = NULL;
	f.ids = &id;
	f.nids = 1;
	int rc = pg_query(base, &f, evfi_keep_first, &found);
	if (rc < 0)
		return rc;
	if (!found)
		return evfi_fail(EVF_ENOTFOUND, "no event with id %lld", (long long)id);
	*out = found;
	return 0;
}

static int pg_count(evf_store *base, const evf_filter *f, int64_t *out)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	/* a limit caps the count (see sqlite.c) */
	q_sql(&q, "SELECT count(*) FROM %s%s", f->limit > 0 ? "(SELECT 1 FROM " : "", s->qt);
	where_clause(s, &q, f, ext, false);
	if (f->limit > 0) {
		q_sql(&q, " LIMIT ");
		q_int(&q, f->limit);
		q_sql(&q, ") capped");
	}
	PGresult *r = run(s, &q, "counting events", &rc);
	q_free(&q);
	if (!r)
		return rc;
	*out = ival(r, 0, 0);
	PQclear(r);
	return 0;
}

static int pg_act(evf_store *base, evf_action a, const evf_filter *f, int arg,
                  bool dry_run, int64_t *affected)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	if (dry_run)
		return pg_count(base, f, affected);
	if (evfi_action_needs_ext(a) && !ext)
		return need_extended(s, evf_action_name(a));
	q_sql(&q, "UPDATE %s SET ", s->qt);
	evfi_sql_action_set(&q.sql, a, ext, true, "now()");
	if (a == EVF_ACTION_SET_MAX_ATTEMPTS)
		q_int(&q, arg);
	where_clause(s, &q, f, ext, false);
	PGresult *r = run(s, &q, evf_action_name(a), &rc);
	q_free(&q);
	if (!r)
		return rc;
	*affected = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

/* ---- retention: purge, archive, restore ------------------------------------ */

static int one_row(pg_store *s, pgq *q, int64_t *v, int nv, const char *what);

/* Add up the states of a result: one per row, or (counted) state and count. */
static void sum_states(const PGresult *r, bool counted, int64_t counts[EVF_STATE__COUNT])
{
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t state = ival(r, i, 0);
		if (state >= 0 && state < EVF_STATE__COUNT)
			counts[state] += counted ? ival(r, i, 1) : 1;
	}
}

static int run_states(pg_store *s, pgq *q, bool counted, int64_t counts[EVF_STATE__COUNT],
                      const char *what)
{
	int rc;
	PGresult *r = run(s, q, what, &rc);
	q_free(q);
	if (!r)
		return rc;
	sum_states(r, counted, counts);
	PQclear(r);
	return 0;
}

static int pg_count_states(evf_store *base, const evf_filter *f,
                           int64_t counts[EVF_STATE__COUNT])
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base);
	if (ext < 0)
		return ext;
	q_sql(&q, "SELECT ");
	evfi_sql_state_case(&q.sql, ext, true, "now()");
	q_sql(&q, " AS st, count(*) FROM %s", s->qt);
	where_clause(s, &q, f, ext, false);
	q_sql(&q, " GROUP BY 1");
	return run_states(s, &q, true, counts, "counting events");
}

/* "SELECT id FROM t WHERE <f> ORDER BY id LIMIT n FOR UPDATE [SKIP LOCKED]":
 * the rows of one chunk, locked so that nobody changes them under us. */
static void chunk_ids(pg_store *s, pgq *q, const evf_filter *f, bool ext, bool skip_locked)
{
	q_sql(q, "SELECT id FROM %s", s->qt);
	where_clause(s, q, f, ext, true);
	q_sql(q, " ORDER BY id");
	if (f->limit > 0) {
		q_sql(q, " LIMIT ");
		q_int(q, f->limit);
	}
	q_sql(q, skip_locked ? " FOR UPDATE SKIP LOCKED" : " FOR UPDATE");
}

static int pg_delete_chunk(evf_store *base, const evf_filter *f,
                           int64_t counts[EVF_STATE__COUNT])
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base);
	if (ext < 0)
		return ext;
	/* rows a worker holds locked (a basic-table batch) wait for the next
	 * run instead of blocking this one */
	q_sql(&q, "DELETE FROM %s WHERE id IN (", s->qt);
	chunk_ids(s, &q, f, ext, true);
	q_sql(&q, ") RETURNING ");
	evfi_sql_state_case(&q.sql, ext, true, "now()");
	return run_states(s, &q, false, counts, "deleting events");
}

static int pg_archive_table_create(evf_store *base, const char *qarch)
{
	pg_store *s = PG(base);
	evfi_buf sql = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	evfi_ddl_archive_table(&sql, qarch, true, false, ext);
	if (sql.oom) {
		evfi_buf_free(&sql);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	rc = run_simple(s, sql.data, "creating the archive table");
	evfi_buf_free(&sql);
	return rc;
}

static int pg_archive_chunk(evf_store *base, const evf_filter *f, const char *qarch,
                            bool purge, int64_t *last_id, int64_t counts[EVF_STATE__COUNT])
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	evfi_buf cols = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	*last_id = 0;
	evfi_sql_columns(&cols, ext);
	if (cols.oom)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	/* one statement: lock the chunk, (delete it and) copy it; the
	 * RETURNING of the copy source gives the states and the last id */
	q_sql(&q, "WITH chunk AS (");
	chunk_ids(s, &q, f, ext, false);
	if (purge)
		q_sql(&q, "), src AS (DELETE FROM %s WHERE id IN (SELECT id FROM chunk) RETURNING *",
		      s->qt);
	else
		q_sql(&q, "), src AS (SELECT * FROM %s WHERE id IN (SELECT id FROM chunk)", s->qt);
	q_sql(&q, "), copied AS (INSERT INTO %s (", qarch);
	evfi_buf_puts(&q.sql, cols.data);
	q_sql(&q, ") SELECT ");
	evfi_buf_puts(&q.sql, cols.data);
	/* archived before (without purge): the row as it is now wins */
	q_sql(&q, " FROM src ON CONFLICT (id) DO UPDATE SET ");
	evfi_sql_excluded_set(&q.sql, ext);
	q_sql(&q, ") SELECT ");
	evfi_sql_state_case(&q.sql, ext, true, "now()");
	q_sql(&q, ", id FROM src");
	evfi_buf_free(&cols);
	PGresult *r = run(s, &q, "archiving", &rc);
	q_free(&q);
	if (!r)
		return rc;
	sum_states(r, false, counts);
	for (int i = 0; i < PQntuples(r); i++)
		if (ival(r, i, 1) > *last_id)
			*last_id = ival(r, i, 1);
	PQclear(r);
	return 0;
}

static void json_time(cJSON *o, const char *key, evf_time t)
{
	char buf[48];
	if (!t) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	evf_time_format(buf, sizeof buf, t);
	strcat(buf, "+00");
	cJSON_AddStringToObject(o, key, buf);
}

static void json_text(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

/* One row of the restore payload; the parameters go in as they are, so
 * that numbers keep every digit (cJSON would round them to doubles). */
static void restore_row(evfi_buf *b, const evf_event *e, bool ext, int max_attempts)
{
	cJSON *o = cJSON_CreateObject();
	char *text;
	if (!o) {
		b->oom = true;
		return;
	}
	cJSON_AddNumberToObject(o, "id", (double)e->id);
	json_text(o, "type", e->type);
	json_time(o, "date", e->date);
	cJSON_AddBoolToObject(o, "processed", e->processed || (!ext && e->dead));
	cJSON_AddBoolToObject(o, "error", e->error || (!ext && e->dead));
	/* Django declared error_message NOT NULL */
	json_text(o, "error_message", e->error_message || ext ? e->error_message : "");
	json_text(o, "idempotency_key", e->idempotency_key);
	json_text(o, "correlation_id", e->correlation_id);
	cJSON_AddNumberToObject(o, "priority", e->priority);
	json_time(o, "not_before", e->not_before);
	cJSON_AddNumberToObject(o, "attempts", e->attempts);
	cJSON_AddNumberToObject(o, "max_attempts", e->max_attempts > 0 ? e->max_attempts : max_attempts);
	json_time(o, "last_error_at", e->last_error_at);
	json_time(o, "processed_at", e->processed_at);
	json_text(o, "error_code", e->error_code);
	cJSON_AddBoolToObject(o, "dead", e->dead);
	json_text(o, "locked_by", e->locked_by);
	json_time(o, "locked_until", e->locked_until);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text) {
		b->oom = true;
		return;
	}
	evfi_buf_add(b, text, strlen(text) - 1); /* without the closing brace */
	evfi_buf_puts(b, ",\"parameters\":");
	cJSON *check = e->parameters ? cJSON_ParseWithOpts(e->parameters, NULL, true) : NULL;
	if (check) {
		evfi_buf_puts(b, e->parameters);
	} else {
		/* not JSON (from an old SQLite table): jsonb takes it as a string */
		cJSON *str = cJSON_CreateString(e->parameters ? e->parameters : "");
		char *quoted = str ? cJSON_PrintUnformatted(str) : NULL;
		if (!quoted)
			b->oom = true;
		else
			evfi_buf_puts(b, quoted);
		free(quoted);
		cJSON_Delete(str);
	}
	cJSON_Delete(check);
	evfi_buf_puts(b, "}");
	free(text);
}

static int pg_restore(evf_store *base, const evf_event *evs, size_t n, int64_t *inserted)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	evfi_buf payload = { 0 }, cols = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	*inserted = 0;
	evfi_buf_puts(&payload, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			evfi_buf_puts(&payload, ",");
		restore_row(&payload, &evs[i], ext, s->base.opts->max_attempts);
	}
	evfi_buf_puts(&payload, "]");
	evfi_sql_columns(&cols, ext);
	if (payload.oom || cols.oom) {
		evfi_buf_free(&payload);
		evfi_buf_free(&cols);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	q_sql(&q, "WITH ins AS (INSERT INTO %s (", s->qt);
	evfi_buf_puts(&q.sql, cols.data);
	q_sql(&q, ") SELECT ");
	evfi_buf_puts(&q.sql, cols.data);
	q_sql(&q, " FROM jsonb_to_recordset(");
	q_arg(&q, payload.data);
	q_sql(&q, "::jsonb) AS x(id bigint, type text, date timestamptz, parameters jsonb, "
	      "processed boolean, error boolean, error_message text, idempotency_key text, "
	      "correlation_id text, priority integer, not_before timestamptz, attempts integer, "
	      "max_attempts integer, last_error_at timestamptz, processed_at timestamptz, "
	      "error_code text, dead boolean, locked_by text, locked_until timestamptz) "
	      "ON CONFLICT DO NOTHING RETURNING id), ");
	/* ids given explicitly do not move the table's sequence: move it past
	 * them, or the next emit would collide */
	q_sql(&q, "seq AS (SELECT setval(x.seq, x.m) FROM (SELECT pg_get_serial_sequence(");
	q_arg(&q, s->qt);
	q_sql(&q, ", 'id') AS seq, (SELECT max(id) FROM ins) AS m) x WHERE x.seq IS NOT NULL "
	      "AND x.m > coalesce(pg_sequence_last_value(x.seq::regclass), 0)) "
	      "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM seq)");
	evfi_buf_free(&payload);
	evfi_buf_free(&cols);
	int64_t v[2];
	if ((rc = one_row(s, &q, v, 2, "restoring")))
		return rc;
	*inserted = v[0];
	return 0;
}

/* ---- scratch tables and reports ---------------------------------------------- */

static int pg_drop(evf_store *base)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int64_t exists = 0;
	int rc;
	/* only an event table (or none): never somebody else's table */
	q_sql(&q, "SELECT (to_regclass(");
	q_arg(&q, s->qt);
	q_sql(&q, ") IS NOT NULL)::int");
	if ((rc = one_row(s, &q, &exists, 1, "looking for the table")))
		return rc;
	s->extended = -1;
	if (exists && (rc = pg_schema_extended(base)) < 0)
		return evfi_wrap(rc, "not dropped");
	if ((rc = begin(s)))
		return rc;
	q_sql(&q, "DROP TABLE IF EXISTS %s", s->qt);
	PGresult *r = run(s, &q, "dropping the table", &rc);
	PQclear(r);
	q_free(&q);
	if (!rc) {
		q_sql(&q, "DELETE FROM evf_schema WHERE table_name = ");
		q_arg(&q, base->table);
		/* a missing evf_schema table is fine: a savepoint keeps the
		 * transaction usable after that error */
		run_simple(s, "SAVEPOINT evf_forget", "forgetting the table");
		r = run(s, &q, "forgetting the table", &rc);
		PQclear(r);
		q_free(&q);
		rc = run_simple(s, rc ? "ROLLBACK TO SAVEPOINT evf_forget" :
		                "RELEASE SAVEPOINT evf_forget", "forgetting the table");
	}
	if (rc) {
		rollback(s);
		return rc;
	}
	s->extended = -1;
	forget_prepared(s); /* their plans named the table */
	return commit(s);
}

/* After a purge or a bulk change the indexes hold an entry for every dead
 * row version until VACUUM: a claim walks the ready index past all of
 * them (a million marked done at once: 5,000 index pages, 70 ms a claim).
 * Autovacuum gets there in its own time; this is now. */
static int pg_maintain(evf_store *base)
{
	pg_store *s = PG(base);
	char sql[96];
	int rc;
	if ((rc = ensure_conn(s)))
		return rc;
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		return evfi_fail(EVF_EINVAL, "VACUUM cannot run inside a transaction");
	snprintf(sql, sizeof sql, "VACUUM (ANALYZE) %s", s->qt); /* validated identifier */
	return run_simple(s, sql, "vacuuming the table");
}

static int pg_durability(evf_store *base, char *buf, size_t len)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int rc;
	q_sql(&q, "SELECT current_setting('server_version'), current_setting('fsync'), "
	      "current_setting('synchronous_commit'), current_setting('wal_level')");
	PGresult *r = run(s, &q, "reading the server settings", &rc);
	q_free(&q);
	if (!r)
		return rc;
	snprintf(buf, len, "PostgreSQL %s, fsync=%s, synchronous_commit=%s, wal_level=%s",
	         PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
	PQclear(r);
	return 0;
}

static int pg_activity(evf_store *base, evf_time since, evf_activity *out)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int rc;

	/* $1 twice: the statement is built around its single argument */
	evfi_sql_activity(&q.sql, true, s->qt, "$1::timestamptz", NULL);
	char buf[48];
	evf_time_format(buf, sizeof buf, since);
	strcat(buf, "+00");
	q.args[0] = strdup(buf);
	q.n = 1;
	if (!q.args[0])
		q.oom = true;
	PGresult *r = run(s, &q, "counting recent activity", &rc);
	q_free(&q);
	if (!r)
		return rc;
	for (int i = 0; !rc && i < PQntuples(r); i++)
		rc = evfi_activity_add(out, PQgetvalue(r, i, 0), ival(r, i, 1), ival(r, i, 2),
		                       ival(r, i, 3));
	PQclear(r);
	return rc;
}

/* ---- the console's header -------------------------------------------------- */

static int one_row(pg_store *s, pgq *q, int64_t *v, int nv, const char *what)
{
	int rc;
	PGresult *r = run(s, q, what, &rc);
	q_free(q);
	if (!r)
		return rc;
	for (int i = 0; i < nv; i++)
		v[i] = PQntuples(r) ? ival(r, 0, i) : 0;
	PQclear(r);
	return 0;
}

/* The table's size by the planner's estimate (no scan). */
static int64_t planner_rows(pg_store *s, int *rc)
{
	pgq q = { 0 };
	int64_t v = 0;
	q_sql(&q, "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = ");
	q_arg(&q, s->qt);
	q_sql(&q, "::regclass");
	*rc = one_row(s, &q, &v, 1, "sizing the table");
	return v;
}

static int pg_overview(evf_store *base, evf_overview *out)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base), rc;
	int64_t v[8] = { 0 };
	if (ext < 0)
		return ext;
	if (ext) {
		q_sql(&q, "SELECT "
			"count(*) FILTER (WHERE locked_until IS NULL AND NOT error AND (not_before IS NULL OR not_before <= now())), "
			"count(*) FILTER (WHERE locked_until IS NULL AND NOT error AND not_before > now()), "
			"count(*) FILTER (WHERE locked_until > now()), "
			"count(*) FILTER (WHERE locked_until IS NULL AND error), "
			"count(*) FILTER (WHERE locked_until <= now()), "
			TS("min(coalesce(not_before, date)) FILTER (WHERE (locked_until IS NULL OR "
			"locked_until <= now()) AND (not_before IS NULL OR not_before <= now()))") ", "
			"count(DISTINCT locked_by) FILTER (WHERE locked_until > now()), " TS("now()")
			" FROM %s WHERE processed = false AND dead = false", s->qt);
		if ((rc = one_row(s, &q, v, 8, "counting the queue")))
			return rc;
		out->counts[EVF_STATE_PENDING] = v[0];
		out->counts[EVF_STATE_SCHEDULED] = v[1];
		out->counts[EVF_STATE_RUNNING] = v[2];
		out->counts[EVF_STATE_FAILED] = v[3];
		out->counts[EVF_STATE_STUCK] = v[4];
		out->oldest_ready = v[5];
		out->workers = v[6];
		out->now = v[7];
		q_sql(&q, "SELECT count(*) FROM %s WHERE error AND (dead OR processed)", s->qt);
	} else {
		q_sql(&q, "SELECT count(*) FILTER (WHERE NOT error), count(*) FILTER (WHERE error), "
		      TS("min(date) FILTER (WHERE NOT error)") ", " TS("now()")
		      " FROM %s WHERE NOT processed", s->qt);
		if ((rc = one_row(s, &q, v, 4, "counting the queue")))
			return rc;
		out->counts[EVF_STATE_PENDING] = v[0];
		out->counts[EVF_STATE_FAILED] = v[1];
		out->oldest_ready = v[2];
		out->now = v[3];
		q_sql(&q, "SELECT count(*) FROM %s WHERE error AND processed", s->qt);
	}
	if ((rc = one_row(s, &q, v, 1, "counting dead events")))
		return rc;
	out->counts[EVF_STATE_DEAD] = v[0];
	int64_t total = planner_rows(s, &rc);
	if (rc)
		return rc;
	if (total <= EVFI_EXACT_LIMIT) {
		q_sql(&q, "SELECT count(*) FROM %s", s->qt);
		if ((rc = one_row(s, &q, v, 1, "counting events")))
			return rc;
		total = v[0];
	} else {
		out->estimated = true;
	}
	evfi_overview_finish(out, total, out->estimated);
	return 0;
}

/* Rows of (type, state, count) into out. */
static int stats_rows(pg_store *s, pgq *q, evf_stats *out)
{
	int rc;
	PGresult *r = run(s, q, "counting events", &rc);
	q_free(q);
	if (!r)
		return rc;
	for (int i = 0; !rc && i < PQntuples(r); i++)
		rc = evfi_stats_add(out, PQgetvalue(r, i, 0), (int)ival(r, i, 1), ival(r, i, 2));
	PQclear(r);
	return rc;
}

static int pg_stats(evf_store *base, evf_stats *out)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	char from[160];
	int64_t v[2];
	int ext = pg_schema_extended(base), rc = 0;
	if (ext < 0)
		return ext;
	if (!ext || planner_rows(s, &rc) <= EVFI_EXACT_LIMIT) {
		if (rc)
			return rc;
		evfi_sql_stats(&q.sql, ext, true, "now()", s->qt, NULL);
		return stats_rows(s, &q, out);
	}
	/* as on SQLite (sqlite.c, sq_stats): done from ids drawn at random,
	 * the live and the dead exactly, through the partial indexes */
	q_sql(&q, "SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM %s", s->qt);
	if ((rc = one_row(s, &q, v, 2, "sizing the table")))
		return rc;
	int64_t span = v[1] - v[0] + 1;
	evf_stats *sample = calloc(1, sizeof *sample);
	if (!sample)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	q_sql(&q, "WITH g AS (SELECT ");
	q_int(&q, v[0]);
	q_sql(&q, "::bigint + floor(random() * ");
	q_int(&q, span);
	q_sql(&q, "::bigint)::bigint AS i FROM generate_series(1, %d)) ", EVFI_STATS_SAMPLE);
	snprintf(from, sizeof from, "g JOIN %s ON id = g.i", s->qt);
	evfi_sql_stats(&q.sql, ext, true, "now()", from, NULL);
	if ((rc = stats_rows(s, &q, sample))) {
		evf_stats_free(sample);
		return rc;
	}
	if (!evfi_stats_sampled(sample, span)) { /* fewer rows than the planner thought */
		evf_stats_free(sample);
		evfi_sql_stats(&q.sql, ext, true, "now()", s->qt, NULL);
		return stats_rows(s, &q, out);
	}
	evfi_sql_stats(&q.sql, ext, true, "now()", s->qt, "processed = false AND dead = false");
	if (!(rc = stats_rows(s, &q, out))) {
		evfi_sql_stats(&q.sql, ext, true, "now()", s->qt, "error AND (dead OR processed)");
		rc = stats_rows(s, &q, out);
	}
	if (!rc)
		rc = evfi_stats_add_done(out, sample, span);
	evf_stats_free(sample);
	return rc;
}

static int pg_error_groups(evf_store *base, size_t limit, evf_error_group **out, size_t *n)
{
	pg_store *s = PG(base);
	pgq q = { 0 };
	int ext = pg_schema_extended(base), rc;
	if (ext < 0)
		return ext;
	q_sql(&q, "SELECT type, left(split_part(coalesce(error_message, ''), E'\\n', 1), 200) AS line, "
	      "count(*), " TS("max(%s)") " FROM %s WHERE error GROUP BY 1, 2 ORDER BY 3 DESC, 4 DESC "
	      "LIMIT ", ext ? "last_error_at" : "date", s->qt);
	q_int(&q, (int64_t)limit);
	PGresult *r = run(s, &q, "grouping errors", &rc);
	q_free(&q);
	if (!r)
		return rc;
	size_t rows = (size_t)PQntuples(r);
	evf_error_group *g = calloc(rows ? rows : 1, sizeof *g);
	if (!g) {
		PQclear(r);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < rows; i++) {
		g[i].type = val(r, (int)i, 0);
		g[i].message = val(r, (int)i, 1);
		g[i].count = ival(r, (int)i, 2);
		g[i].last_at = ival(r, (int)i, 3);
	}
	PQclear(r);
	*out = g;
	*n = rows;
	return 0;
}

/* ---- waiting for work ------------------------------------------------------ */

/* Sleep until a NOTIFY for our channel, the timeout or a stop request.
 * LISTEN is re-issued after a reconnect; when it cannot be had (a pooler
 * in transaction mode) this degrades to a plain sleep. */
static int pg_wait(evf_store *base, int64_t ms, volatile sig_atomic_t *stop)
{
	pg_store *s = PG(base);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (s->listen_wanted && !s->listening && !ensure_conn(s)) {
		pgq q = { 0 };
		int rc;
		q_sql(&q, "LISTEN \"%s\"", s->channel);
		PGresult *r = run(s, &q, "listening", &rc);
		PQclear(r);
		q_free(&q);
		s->listening = rc == 0;
	}
	for (;;) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int64_t left = ms - ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || (stop && *stop))
			return 0;
		if (!s->listening || conn_lost(s)) {
			struct timespec ts = { 0, (left < 50 ? left : 50) * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		struct pollfd p = { PQsocket(s->conn), POLLIN, 0 };
		int r = poll(&p, 1, left < 50 ? (int)left : 50);
		if (r < 0 && errno != EINTR)
			return 0;
		if (r > 0) {
			if (!PQconsumeInput(s->conn)) {
				s->listening = false;
				continue;
			}
			PGnotify *nt;
			bool woke = false;
			while ((nt = PQnotifies(s->conn))) {
				woke = true;
				PQfreemem(nt);
			}
			if (woke)
				return 1;
		}
	}
}

/* ---- open and close ------------------------------------------------------------ */

static void pg_close(evf_store *base)
{
	pg_store *s = PG(base);
	if (!s->borrowed)
		PQfinish(s->conn);
	forget_prepared(s);
	free(s->conninfo);
	free(s);
}

/* ---- global rate limits ------------------------------------------------------ */

/* One bucket per (event table, rule), on the server's clock. */
static int pg_rate_setup(evf_store *base, const char *rule, double burst)
{
	pg_store *s = PG(base);
	char b[64];
	int rc = 0;
	/* workers starting together can race on CREATE TABLE IF NOT EXISTS
	 * (a unique violation in the catalog): the loser tries again */
	for (int i = 0; i < 3; i++)
		if (!(rc = run_simple(s, "CREATE TABLE IF NOT EXISTS evf_rate (table_name text "
		                      "NOT NULL, rule text NOT NULL, tokens double precision NOT NULL, "
		                      "taken double precision NOT NULL DEFAULT 0, refilled_at "
		                      "timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, rule))",
		                      "creating evf_rate")))
			break;
	if (rc)
		return rc;
	pgq q = { 0 };
	snprintf(b, sizeof b, "%.17g", burst);
	q_sql(&q, "INSERT INTO evf_rate (table_name, rule, tokens) VALUES (");
	q_arg(&q, s->base.table);
	q_sql(&q, ", ");
	q_arg(&q, rule);
	q_sql(&q, ", ");
	q_arg(&q, b);
	q_sql(&q, "::float8) ON CONFLICT DO NOTHING");
	PGresult *r = run(s, &q, "setting up a rate limit", &rc);
	PQclear(r);
	q_free(&q);
	return rc;
}

static int pg_rate_take(evf_store *base, const char *rule, double per_second,
                        double burst, int64_t want, int64_t *granted, double *left)
{
	pg_store *s = PG(base);
	char rate[64], b[64];
	int rc;
	pgq q = { 0 };

	*granted = 0;
	*left = 0;
	snprintf(rate, sizeof rate, "%.17g", per_second);
	snprintf(b, sizeof b, "%.17g", burst);
	/* the arguments first, then the statement that names them by number */
	q_arg(&q, s->base.table);
	q_arg(&q, rule);
	q_int(&q, want);
	q_arg(&q, b);
	q_arg(&q, rate);
	q.sql.len = 0;
	/* SET sees the row as it was, so taken and tokens agree; the row lock
	 * makes the workers take turns */
#define PG_AVAIL "least($4::float8, tokens + $5::float8 * greatest(0, " \
	"extract(epoch FROM now() - refilled_at)))"
	q_sql(&q, "UPDATE evf_rate SET taken = least($3::float8, floor(" PG_AVAIL ")), "
	      "tokens = " PG_AVAIL " - least($3::float8, floor(" PG_AVAIL ")), "
	      "refilled_at = greatest(refilled_at, now()) "
	      "WHERE table_name = $1 AND rule = $2 RETURNING taken, tokens");
#undef PG_AVAIL
	PGresult *r = run(s, &q, "taking rate tokens", &rc);
	q_free(&q);
	if (!r)
		return rc;
	if (PQntuples(r) == 1) {
		*granted = (int64_t)strtod(PQgetvalue(r, 0, 0), NULL);
		*left = strtod(PQgetvalue(r, 0, 1), NULL);
	}
	PQclear(r);
	return 0;
}

static const evf_store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.init = pg_init,
	.schema_extended = pg_schema_extended,
	.emit = pg_emit,
	.claim = pg_claim,
	.complete = pg_complete,
	.fail_batch = pg_fail,
	.extend = pg_extend,
	.release = pg_release,
	.get = pg_get,
	.query = pg_query,
	.count = pg_count,
	.stats = pg_stats,
	.act = pg_act,
	.wait = pg_wait,
	.end_batch = pg_end_batch,
	.migrate = pg_migrate,
	.overview = pg_overview,
	.error_groups = pg_error_groups,
	.count_states = pg_count_states,
	.delete_chunk = pg_delete_chunk,
	.archive_table_create = pg_archive_table_create,
	.archive_chunk = pg_archive_chunk,
	.restore = pg_restore,
	.drop = pg_drop,
	.durability = pg_durability,
	.maintain = pg_maintain,
	.activity = pg_activity,
	.rate_setup = pg_rate_setup,
	.rate_take = pg_rate_take,
};

static pg_store *pg_new(const evf_options *o, const char *table)
{
	pg_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->base.ops = &pg_ops;
	s->base.opts = o;
	s->base.table = table;
	s->extended = -1;
	s->listen_wanted = !o->no_listen;
	s->wake = !o->no_wake;
	s->prepare = !o->no_listen;
	s->prepared_tag = evfi_seed(s);
	snprintf(s->qt, sizeof s->qt, "\"%s\"", table);
	snprintf(s->channel, sizeof s->channel, "evf_%s", table);
	return s;
}

static void quiet_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "relation already exists, skipping" and friends */
}

int evfi_pg_open(evf_store **out, const char *conninfo, const evf_options *o,
                 const char *table)
{
	pg_store *s = pg_new(o, table);
	if (!s || !(s->conninfo = strdup(conninfo))) {
		free(s);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	s->conn = PQconnectdb(conninfo);
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
		char line[400];
		snprintf(line, sizeof line, "%s", s->conn ? PQerrorMessage(s->conn) : "out of memory");
		line[strcspn(line, "\n")] = '\0';
		pg_close(&s->base);
		return evfi_fail(EVF_EUNAVAILABLE, "cannot connect to PostgreSQL: %s", line);
	}
	PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
	*out = &s->base;
	return 0;
}

int evfi_pg_wrap(evf_store **out, struct pg_conn *conn, const evf_options *o,
                 const char *table)
{
	pg_store *s = pg_new(o, table);
	if (!s)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	s->conn = conn;
	s->borrowed = true;
	s->listen_wanted = false; /* never change the caller's session */
	s->prepare = false;
	*out = &s->base;
	return 0;
}
