/*
 * minimal-loop.c - the naive queue loop evf's drain is measured against
 * (evfctl(1), BENCHMARKS): no queue around it, only what a worker must do.
 *
 * A six-column table with one partial index on the ready rows, filled
 * with N rows; each client claims B rows in one transaction, marks them
 * processed in another and keeps them, until none is left.  SQLite: one
 * UPDATE ... RETURNING claims (WAL, synchronous=NORMAL, as evf opens its
 * files).  PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED in an UPDATE's
 * subquery, W client processes at once.
 *
 *   cc -O2 -o /tmp/minimal-loop docs/peers/minimal-loop.c -lsqlite3 -lpq
 *   /tmp/minimal-loop sqlite /tmp/loop.db 100000 100
 *   /tmp/minimal-loop pg 'postgresql:///bench?host=/tmp/pgd' 100000 100 2
 *
 * It prints rows/s of the drain alone (the fill is not timed).  The table
 * (minimal_loop) is dropped and made again at each run.  Not part of the
 * build.
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "minimal-loop: %s: %s\n", what, msg);
	exit(1);
}

/* ---- SQLite ---------------------------------------------------------------- */

static void sq_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "failed");
}

static sqlite3_stmt *sq_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	return st;
}

static double sqlite_loop(const char *path, long n, int batch)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	sq_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
	        "DROP TABLE IF EXISTS minimal_loop; CREATE TABLE minimal_loop (id INTEGER "
	        "PRIMARY KEY, type TEXT NOT NULL, params TEXT NOT NULL, processed INTEGER NOT "
	        "NULL DEFAULT 0, locked_until INTEGER, attempts INTEGER NOT NULL DEFAULT 0); "
	        "CREATE INDEX minimal_loop_ready ON minimal_loop (id) WHERE processed = 0");
	sqlite3_stmt *ins = sq_prepare(db, "INSERT INTO minimal_loop (type, params) "
	                               "VALUES ('bench', ?)");
	sq_exec(db, "BEGIN");
	for (long i = 0; i < n; i++) {
		char p[48];
		snprintf(p, sizeof p, "{\"i\":%ld}", i);
		sqlite3_bind_text(ins, 1, p, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(ins) != SQLITE_DONE)
			die("filling", sqlite3_errmsg(db));
		sqlite3_reset(ins);
	}
	sq_exec(db, "COMMIT");
	sqlite3_finalize(ins);

	sqlite3_stmt *claim = sq_prepare(db, "UPDATE minimal_loop SET locked_until = ?1, "
		"attempts = attempts + 1 WHERE id IN (SELECT id FROM minimal_loop WHERE "
		"processed = 0 AND (locked_until IS NULL OR locked_until < ?2) ORDER BY id "
		"LIMIT ?3) RETURNING id, type, params");
	sqlite3_stmt *done = sq_prepare(db, "UPDATE minimal_loop SET processed = 1, "
	                                "locked_until = NULL WHERE id = ?");
	sqlite3_int64 *ids = malloc(batch * sizeof *ids);
	long drained = 0;
	double t0 = now_s();
	for (;;) {
		int k = 0, rc;
		sqlite3_int64 t = time(NULL);
		sq_exec(db, "BEGIN IMMEDIATE");
		sqlite3_bind_int64(claim, 1, t + 60);
		sqlite3_bind_int64(claim, 2, t);
		sqlite3_bind_int(claim, 3, batch);
		while ((rc = sqlite3_step(claim)) == SQLITE_ROW) {
			ids[k++] = sqlite3_column_int64(claim, 0);
			(void)sqlite3_column_text(claim, 2); /* a worker reads its event */
		}
		if (rc != SQLITE_DONE)
			die("claiming", sqlite3_errmsg(db));
		sqlite3_reset(claim);
		sq_exec(db, "COMMIT");
		if (!k)
			break;
		sq_exec(db, "BEGIN IMMEDIATE");
		for (int i = 0; i < k; i++) {
			sqlite3_bind_int64(done, 1, ids[i]);
			if (sqlite3_step(done) != SQLITE_DONE)
				die("completing", sqlite3_errmsg(db));
			sqlite3_reset(done);
		}
		sq_exec(db, "COMMIT");
		drained += k;
	}
	double rate = drained / (now_s() - t0);
	if (drained != n)
		die("draining", "not every row was processed");
	free(ids);
	sqlite3_finalize(claim);
	sqlite3_finalize(done);
	sq_exec(db, "DROP TABLE minimal_loop");
	sqlite3_close(db);
	return rate;
}

/* ---- PostgreSQL --------------------------------------------------------------- */

static void pg_ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		die(what, PQerrorMessage(c));
}

static PGconn *pg_connect(const char *url)
{
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK)
		die(url, PQerrorMessage(c));
	return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	pg_ok(c, r, sql);
	PQclear(r);
}

/* One client: claim, then complete, until a claim comes back empty. */
static void pg_client(const char *url, int batch)
{
	PGconn *c = pg_connect(url);
	char lim[16];
	const char *claim_args[1] = { lim };
	snprintf(lim, sizeof lim, "%d", batch);
	PGresult *p = PQprepare(c, "claim", "UPDATE minimal_loop SET locked_until = now() + "
		"interval '60 seconds', attempts = attempts + 1 WHERE id IN (SELECT id FROM "
		"minimal_loop WHERE NOT processed AND (locked_until IS NULL OR locked_until < "
		"now()) ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id, type, params",
		1, NULL);
	pg_ok(c, p, "preparing the claim");
	PQclear(p);
	p = PQprepare(c, "done", "UPDATE minimal_loop SET processed = true, locked_until = "
	              "NULL WHERE id = ANY($1::bigint[])", 1, NULL);
	pg_ok(c, p, "preparing the completion");
	PQclear(p);
	size_t cap = (size_t)batch * 21 + 3;
	char *list = malloc(cap);
	for (;;) {
		PGresult *r = PQexecPrepared(c, "claim", 1, claim_args, NULL, NULL, 0);
		pg_ok(c, r, "claiming");
		int k = PQntuples(r);
		if (!k) {
			PQclear(r);
			break;
		}
		size_t len = 0;
		list[len++] = '{';
		for (int i = 0; i < k; i++)
			len += (size_t)snprintf(list + len, cap - len, "%s%s", i ? "," : "",
			                        PQgetvalue(r, i, 0));
		snprintf(list + len, cap - len, "}");
		PQclear(r);
		const char *done_args[1] = { list };
		r = PQexecPrepared(c, "done", 1, done_args, NULL, NULL, 0);
		pg_ok(c, r, "completing");
		PQclear(r);
	}
	free(list);
	PQfinish(c);
}

static double pg_loop(const char *url, long n, int batch, int clients)
{
	PGconn *c = pg_connect(url);
	char sql[256];
	pg_exec(c, "SET client_min_messages = warning");
	pg_exec(c, "DROP TABLE IF EXISTS minimal_loop");
	pg_exec(c, "CREATE TABLE minimal_loop (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY "
	        "KEY, type text NOT NULL, params jsonb NOT NULL, processed boolean NOT NULL "
	        "DEFAULT false, locked_until timestamptz, attempts integer NOT NULL DEFAULT 0)");
	pg_exec(c, "CREATE INDEX minimal_loop_ready ON minimal_loop (id) WHERE NOT processed");
	snprintf(sql, sizeof sql, "INSERT INTO minimal_loop (type, params) SELECT 'bench', "
	         "jsonb_build_object('i', i) FROM generate_series(1, %ld) i", n);
	pg_exec(c, sql);
	pg_exec(c, "VACUUM ANALYZE minimal_loop");
	fflush(NULL);
	double t0 = now_s();
	for (int i = 0; i < clients; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork", "failed");
		if (pid == 0) {
			pg_client(url, batch);
			_exit(0);
		}
	}
	int status, failed = 0;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status);
	double rate = n / (now_s() - t0);
	PGresult *r = PQexec(c, "SELECT count(*) FROM minimal_loop WHERE NOT processed");
	pg_ok(c, r, "counting");
	if (failed || strcmp(PQgetvalue(r, 0, 0), "0"))
		die("draining", "not every row was processed");
	PQclear(r);
	pg_exec(c, "DROP TABLE minimal_loop");
	PQfinish(c);
	return rate;
}

int main(int argc, char **argv)
{
	if (argc < 5 || (strcmp(argv[1], "sqlite") && strcmp(argv[1], "pg"))) {
		fprintf(stderr, "usage: minimal-loop sqlite FILE N BATCH\n"
		                "       minimal-loop pg URL N BATCH [CLIENTS]\n");
		return 2;
	}
	long n = atol(argv[3]);
	int batch = atoi(argv[4]), clients = argc > 5 ? atoi(argv[5]) : 1;
	if (n < 1 || batch < 1 || clients < 1)
		die("arguments", "N, BATCH and CLIENTS must be positive");
	int sqlite = !strcmp(argv[1], "sqlite");
	if (sqlite)
		clients = 1; /* one writer at a time anyway */
	double rate = sqlite ? sqlite_loop(argv[2], n, batch) : pg_loop(argv[2], n, batch, clients);
	printf("minimal loop, %s, %ld rows, batch %d, %d client%s: %.0f rows/s\n", argv[1], n,
	       batch, clients, clients > 1 ? "s" : "", rate);
	return 0;
}
