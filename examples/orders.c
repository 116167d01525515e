/*
 * orders.c - an order pipeline on libevf, the example application.
 *
 *   orders [--db URL] [--table NAME] place [N]
 *   orders [--db URL] [--table NAME] work [--until-idle] [--slow]
 *          [--metrics FILE] [--mail-command CMD]
 *   orders [--db URL] [--table NAME] report
 *
 * `place` records N orders in the application's own table, each together
 * with its order.placed event in one transaction of the application's own
 * connection (the outbox pattern): evf_open_sqlite() or evf_open_pg() wrap
 * that connection and evf_emit() joins the transaction.
 *
 * `work` runs a worker for the chain every order goes through:
 *
 *   order.placed --> payment.charge --> order.ship --> email.send
 *
 *  - order.placed skips test orders with a `when` predicate, then emits
 *    the payment; every follow-up inherits the correlation id "order-N"
 *    that `place` gave the first event, so `evfctl list --correlation-id
 *    order-N` shows the whole chain.
 *  - payment.charge fails transiently (the gateway "times out") on the
 *    first attempt of every fourth order, which is retried after the
 *    backoff, and fails permanently for amounts over 1000.00 (the card is
 *    declined): that event is dead-lettered at once.
 *  - order.ship is a batch handler: one courier manifest per claimed batch.
 *  - email.send is a C handler, or with --mail-command a command run by
 *    /bin/sh for each event (evf_register_exec).
 *  - Metrics: a Prometheus text file (--metrics, or [metrics] textfile of
 *    evf.conf), rewritten every interval and at the end.
 *
 * With --until-idle the worker stops once no event is pending, scheduled,
 * failed, running or stuck (retries included); without it, it runs until
 * SIGINT or SIGTERM.  `report` prints each order's chain.
 *
 * Settings come from evf.conf and EVF_* variables like evfctl's
 * (evf_settings_load), so EVF_BACKOFF_BASE=50ms makes retries quick.
 *
 * Build it against an installed libevf with
 *   cc -o orders orders.c $(pkg-config --cflags --libs libevf sqlite3)
 * and add -DORDERS_WITH_LIBPQ plus libpq to pkg-config's list for
 * PostgreSQL.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, nanosleep */

#include <evf.h>

#include <getopt.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef ORDERS_WITH_LIBPQ
#include <libpq-fe.h>
#endif

#define PROG "orders"

static evf_worker *worker;  /* for the signal handler */
static bool slow;           /* handlers take a while (the live demo) */

static void die_evf(const char *what)
{
	fprintf(stderr, PROG ": %s: %s\n", what, evf_error_last());
	exit(1);
}

/* ---- the application's data ---------------------------------------------- */

static const char *const customers[] = {
	"ada", "grace", "linus", "margaret", "ken", "dennis", "barbara", "edsger",
};

/* The made-up order number n: who, how much (cents), and whether it is a
 * test order.  A function of n, so that the test's output is fixed. */
static void order_of(long long n, const char **who, long long *cents, bool *test)
{
	*who = customers[n % 8];
	*cents = (n % 10 == 5) ? 150000 + n : 1000 + (n * 7919) % 90000;
	*test = n % 7 == 0;
}

/* Where the value of `key` starts in a flat JSON object, or NULL.  Enough
 * for our own events, and tolerant of the spaces PostgreSQL's jsonb puts
 * after colons: it hands parameters back as `{"cents": 1000, "order": 1}`,
 * not as they were emitted. */
static const char *json_value(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\"", key);
	if (!(p = strstr(json, pat)))
		return NULL;
	p += strlen(pat);
	p += strspn(p, " \t\n");
	if (*p++ != ':')
		return NULL;
	return p + strspn(p, " \t\n");
}

static long long json_number(const char *json, const char *key)
{
	const char *v = json_value(json, key);
	return v ? strtoll(v, NULL, 10) : -1;
}

static void pause_a_little(void)
{
	if (slow) {
		struct timespec ts = { 0, (10 + rand() % 140) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* ---- handlers ----------------------------------------------------------------- */

/* `when` predicate: test orders are marked processed without running. */
static bool is_real_order(const evf_event *ev, void *user)
{
	const char *test = json_value(ev->parameters, "test");

	(void)user;
	return !test || strncmp(test, "true", 4) != 0;
}

static int order_placed(evf_job *job, const evf_event *ev, void *user)
{
	long long order = json_number(ev->parameters, "order");
	long long cents = json_number(ev->parameters, "cents");
	char params[96];

	(void)user;
	pause_a_little();
	if (order < 0 || cents < 0) {
		/* Retrying cannot fix a malformed event: dead-letter it. */
		evf_job_fail(job, 0, "bad_order", false, "event %lld is not an order",
		             (long long)ev->id);
		return -1;
	}
	snprintf(params, sizeof params, "{\"order\":%lld,\"cents\":%lld}", order, cents);
	/* The follow-up inherits ev's correlation id. */
	return evf_job_emit(job, "payment.charge", params, NULL, NULL);
}

static int payment_charge(evf_job *job, const evf_event *ev, void *user)
{
	long long order = json_number(ev->parameters, "order");
	long long cents = json_number(ev->parameters, "cents");
	char params[64];

	(void)user;
	pause_a_little();
	if (cents > 100000) {
		evf_job_fail(job, 0, "card_declined", false,
		             "order %lld: card declined for %lld.%02lld", order,
		             cents / 100, cents % 100);
		return -1;
	}
	if (order % 4 == 0 && ev->attempts == 1) {
		evf_job_fail(job, 0, "gateway_timeout", true,
		             "order %lld: payment gateway timed out", order);
		return -1;
	}
	snprintf(params, sizeof params, "{\"order\":%lld}", order);
	return evf_job_emit(job, "order.ship", params, NULL, NULL);
}

/* A batch handler: every order.ship event of the claim in one manifest. */
static int order_ship(evf_job *job, const evf_event *const *evs, size_t n, void *user)
{
	(void)user;
	pause_a_little();
	for (size_t i = 0; i < n; i++) {
		long long order = json_number(evs[i]->parameters, "order");
		char params[64];
		evf_emit_options eo = EVF_EMIT_OPTIONS_INIT;

		/* evf_job_emit() inherits the correlation id of the event being
		 * handled; in a batch name it, since there are several. */
		eo.correlation_id = evs[i]->correlation_id;
		snprintf(params, sizeof params, "{\"order\":%lld}", order);
		if (evf_job_emit(job, "email.send", params, &eo, NULL) != 0)
			evf_job_fail(job, i, "emit_failed", true, "%s", evf_error_last());
	}
	return 0; /* the events not marked failed succeeded */
}

static int email_send(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	(void)user;
	pause_a_little();
	return 0;
}

/* ---- opening the application's own connection ----------------------------------- */

/* "postgresql://...", "postgres://..." or a "keyword=value ..." string;
 * the rest is SQLite, as evf_open() reads URLs. */
static bool is_pg_url(const char *url)
{
	size_t k = strspn(url, "abcdefghijklmnopqrstuvwxyz_");
	return !strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11) ||
	       (k > 0 && url[k] == '=');
}

static const char *sqlite_path(const char *url)
{
	if (!strncmp(url, "sqlite://", 9))
		return url + 9;
	if (!strncmp(url, "sqlite:", 7))
		return url + 7;
	return url;
}

/* The application's connection, one of the two. */
typedef struct app {
	sqlite3 *lite;
#ifdef ORDERS_WITH_LIBPQ
	PGconn *pg;
#endif
	char table[80]; /* the application's own table of orders */
} app;

static int app_sql(app *a, const char *sql)
{
	if (a->lite) {
		char *msg = NULL;
		if (sqlite3_exec(a->lite, sql, NULL, NULL, &msg) != SQLITE_OK) {
			fprintf(stderr, PROG ": %s\n", msg ? msg : sqlite3_errmsg(a->lite));
			sqlite3_free(msg);
			return -1;
		}
		return 0;
	}
#ifdef ORDERS_WITH_LIBPQ
	PGresult *r = PQexec(a->pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
	         PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, PROG ": %s", PQerrorMessage(a->pg));
	PQclear(r);
	return ok ? 0 : -1;
#else
	return -1;
#endif
}

/* The number of the next order: inside the transaction that inserts it
 * (on SQLite, BEGIN IMMEDIATE holds the write lock, so nobody else can
 * take it; on PostgreSQL a second placer would fail on the primary key). */
static long long app_next_order(app *a)
{
	char sql[128];
	long long n = -1;

	snprintf(sql, sizeof sql, "SELECT COALESCE(MAX(id), 0) + 1 FROM %s", a->table);
	if (a->lite) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(a->lite, sql, -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		else
			fprintf(stderr, PROG ": %s\n", sqlite3_errmsg(a->lite));
		sqlite3_finalize(st);
		return n;
	}
#ifdef ORDERS_WITH_LIBPQ
	PGresult *r = PQexec(a->pg, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, PROG ": %s", PQerrorMessage(a->pg));
	PQclear(r);
#endif
	return n;
}

static int app_open(app *a, evf_db **db, const char *url, const evf_options *o)
{
	memset(a, 0, sizeof *a);
	snprintf(a->table, sizeof a->table, "%s_order", o->table ? o->table : "evf_event");
	if (is_pg_url(url)) {
#ifdef ORDERS_WITH_LIBPQ
		a->pg = PQconnectdb(url);
		if (PQstatus(a->pg) != CONNECTION_OK) {
			fprintf(stderr, PROG ": %s", PQerrorMessage(a->pg));
			return -1;
		}
		if (evf_open_pg(db, a->pg, o) != 0)
			die_evf("opening the event table");
		return app_sql(a, "SET client_min_messages = warning");
#else
		fprintf(stderr, PROG ": built without libpq: no PostgreSQL\n");
		return -1;
#endif
	}
	if (sqlite3_open(sqlite_path(url), &a->lite) != SQLITE_OK) {
		fprintf(stderr, PROG ": %s: %s\n", url, sqlite3_errmsg(a->lite));
		return -1;
	}
	/* A borrowed connection is the caller's to set up: evf changes nothing
	 * on it, so wait for the worker's locks instead of failing at once. */
	sqlite3_busy_timeout(a->lite, 10000);
	if (evf_open_sqlite(db, a->lite, o) != 0)
		die_evf("opening the event table");
	return 0;
}

static void app_close(app *a)
{
	if (a->lite)
		sqlite3_close(a->lite);
#ifdef ORDERS_WITH_LIBPQ
	if (a->pg)
		PQfinish(a->pg);
#endif
}

/* ---- commands ------------------------------------------------------------------- */

static int cmd_place(const char *url, const evf_options *o, long long count)
{
	app a;
	evf_db *db = NULL;
	char sql[256];
	int status = 1;

	if (app_open(&a, &db, url, o) != 0)
		goto out;
	if (evf_init(db) != 0) /* idempotent */
		die_evf("creating the event table");
	snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s (id BIGINT PRIMARY KEY,"
	         " customer TEXT NOT NULL, cents BIGINT NOT NULL)", a.table);
	if (app_sql(&a, sql) != 0)
		goto out;

	for (long long i = 0; i < count; i++) {
		const char *who;
		long long cents, id;
		bool test;
		char params[160], corr[32];
		evf_emit_options eo = EVF_EMIT_OPTIONS_INIT;
		evf_emit_result res;

		/* IMMEDIATE: take SQLite's write lock now, not halfway through. */
		if (app_sql(&a, a.lite ? "BEGIN IMMEDIATE" : "BEGIN") != 0)
			goto out;
		if ((id = app_next_order(&a)) < 0)
			goto rollback;
		order_of(id, &who, &cents, &test);
		snprintf(sql, sizeof sql, "INSERT INTO %s (id, customer, cents)"
		         " VALUES (%lld, '%s', %lld)", a.table, id, who, cents);
		if (app_sql(&a, sql) != 0) /* who is one of our constants */
			goto rollback;
		snprintf(params, sizeof params,
		         "{\"order\":%lld,\"customer\":\"%s\",\"cents\":%lld,\"test\":%s}",
		         id, who, cents, test ? "true" : "false");
		snprintf(corr, sizeof corr, "order-%lld", id);
		eo.key = corr;            /* placing the same order twice: one event */
		eo.correlation_id = corr; /* carried by every follow-up */
		if (evf_emit(db, "order.placed", params, &eo, &res) != 0) {
			fprintf(stderr, PROG ": %s\n", evf_error_last());
			goto rollback;
		}
		/* The event becomes visible to workers with this commit. */
		if (app_sql(&a, "COMMIT") != 0)
			goto rollback;
		printf("placed order %lld (event %lld)\n", id, (long long)res.id);
		continue;
rollback:
		app_sql(&a, "ROLLBACK");
		goto out;
	}
	status = 0;
out:
	evf_close(db);
	app_close(&a);
	return status;
}

static void stop_worker(int sig)
{
	(void)sig;
	evf_worker_stop(worker); /* async-signal-safe */
}

static void log_line(void *user, const char *line)
{
	(void)user;
	fprintf(stderr, "%s\n", line);
}

/* Events that still have a future: anything but done and dead. */
static int64_t live_events(evf_db *db)
{
	evf_filter f = EVF_FILTER_INIT;
	int64_t n = 0;

	f.states = (1u << EVF_STATE_PENDING) | (1u << EVF_STATE_SCHEDULED) |
	           (1u << EVF_STATE_RUNNING) | (1u << EVF_STATE_FAILED) |
	           (1u << EVF_STATE_STUCK);
	if (evf_count(db, &f, &n) != 0)
		die_evf("counting events");
	return n;
}

static int cmd_work(const char *url, const evf_options *o, evf_worker_options *wo,
                    bool until_idle, const char *mail_command)
{
	evf_db *db = NULL;
	evf_handler_options real = EVF_HANDLER_OPTIONS_INIT;
	evf_worker_counters c;
	int rc;

	if (evf_open(&db, url, o) != 0)
		die_evf("opening the database");
	wo->log = log_line;
	wo->once = until_idle;
	if (evf_worker_new(&worker, db, wo) != 0)
		die_evf("starting the worker");

	real.when = is_real_order;
	if (evf_register(worker, "order.placed", order_placed, &real) != 0 ||
	    evf_register(worker, "payment.charge", payment_charge, NULL) != 0 ||
	    evf_register_batch(worker, "order.ship", order_ship, NULL) != 0 ||
	    (mail_command ? evf_register_exec(worker, "email.send", mail_command, 30000)
	                  : evf_register(worker, "email.send", email_send, NULL)) != 0)
		die_evf("registering handlers");

	signal(SIGINT, stop_worker);
	signal(SIGTERM, stop_worker);
	for (;;) {
		if ((rc = evf_worker_run(worker)) != 0)
			die_evf("working");
		if (!until_idle || live_events(db) == 0)
			break;
		/* Retries wait out their backoff: look again in a moment. */
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	evf_worker_counters_get(worker, &c);
	printf("processed %lld, failed %lld (retried %lld, dead %lld), skipped %lld\n",
	       (long long)c.processed, (long long)c.failed, (long long)c.retried,
	       (long long)c.dead, (long long)c.skipped);
	evf_worker_free(worker);
	evf_close(db);
	return 0;
}

/* report: one line per correlation id, the chain in id order. */
typedef struct chain {
	char *corr;
	char line[512];
} chain;
typedef struct chains {
	chain *v;
	size_t n, cap;
} chains;

static int add_to_chain(const evf_event *ev, void *user)
{
	chains *cs = user;
	chain *c = NULL;
	char step[160];
	const char *corr = ev->correlation_id ? ev->correlation_id : "(none)";

	for (size_t i = 0; i < cs->n && !c; i++)
		if (!strcmp(cs->v[i].corr, corr))
			c = &cs->v[i];
	if (!c) {
		if (cs->n == cs->cap) {
			size_t cap = cs->cap ? cs->cap * 2 : 16;
			chain *v = realloc(cs->v, cap * sizeof *v);
			if (!v)
				return -1;
			cs->v = v;
			cs->cap = cap;
		}
		c = &cs->v[cs->n++];
		if (!(c->corr = strdup(corr)))
			return -1;
		c->line[0] = '\0';
	}
	snprintf(step, sizeof step, "%s%s %s", c->line[0] ? " -> " : "", ev->type,
	         evf_state_name(ev->state));
	if (ev->attempts > 1)
		snprintf(step + strlen(step), sizeof step - strlen(step), " after %d attempts",
		         ev->attempts);
	if (ev->error_code && ev->state == EVF_STATE_DEAD)
		snprintf(step + strlen(step), sizeof step - strlen(step), " (%s)", ev->error_code);
	strncat(c->line, step, sizeof c->line - strlen(c->line) - 1);
	return 0;
}

static int by_order(const void *a, const void *b)
{
	const chain *x = a, *y = b;
	long long i = strtoll(x->corr + strcspn(x->corr, "0123456789"), NULL, 10);
	long long j = strtoll(y->corr + strcspn(y->corr, "0123456789"), NULL, 10);
	return (i > j) - (i < j);
}

static int cmd_report(const char *url, const evf_options *o)
{
	evf_db *db = NULL;
	evf_filter f = EVF_FILTER_INIT;
	chains cs = { NULL, 0, 0 };

	if (evf_open(&db, url, o) != 0)
		die_evf("opening the database");
	f.all = true;
	if (evf_query(db, &f, add_to_chain, &cs) != 0)
		die_evf("reading events");
	qsort(cs.v, cs.n, sizeof *cs.v, by_order);
	for (size_t i = 0; i < cs.n; i++) {
		printf("%s: %s\n", cs.v[i].corr, cs.v[i].line);
		free(cs.v[i].corr);
	}
	free(cs.v);
	evf_close(db);
	return 0;
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [--db URL] [--table NAME] place [N]\n"
	        "       " PROG " [--db URL] [--table NAME] work [--until-idle] [--slow]\n"
	        "              [--metrics FILE] [--mail-command CMD]\n"
	        "       " PROG " [--db URL] [--table NAME] report\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "table", required_argument, NULL, 't' },
		{ "until-idle", no_argument, NULL, 'u' },
		{ "slow", no_argument, NULL, 's' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "mail-command", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	evf_settings *s = NULL;
	evf_options o = EVF_OPTIONS_INIT;
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	const char *mail_command = NULL;
	bool until_idle = false;
	int ch;

	/* evf.conf and EVF_* variables first, then our flags over them. */
	if (evf_settings_new(&s) != 0 || evf_settings_load(s, NULL) != 0)
		die_evf("reading the settings");
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			if (evf_settings_set(s, "evf.database", optarg, "--db") != 0)
				die_evf("--db");
			break;
		case 't':
			if (evf_settings_set(s, "evf.table", optarg, "--table") != 0)
				die_evf("--table");
			break;
		case 'u':
			until_idle = true;
			break;
		case 's':
			slow = true;
			break;
		case 'm':
			if (evf_settings_set(s, "metrics.textfile", optarg, "--metrics") != 0)
				die_evf("--metrics");
			break;
		case 'c':
			mail_command = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || !s->evf.database) {
		usage(stderr);
		return 2;
	}
	evf_settings_options(s, &o);
	evf_settings_worker_options(s, &wo);
	wo.metrics_textfile = s->metrics.textfile;
	wo.statsd = s->metrics.statsd;
	wo.metrics_interval_ms = s->metrics.interval_ms;
	srand((unsigned)getpid());

	const char *cmd = argv[optind];
	int status;
	if (!strcmp(cmd, "place") && argc - optind <= 2)
		status = cmd_place(s->evf.database, &o,
		                   argc - optind == 2 ? atoll(argv[optind + 1]) : 1);
	else if (!strcmp(cmd, "work") && argc - optind == 1)
		status = cmd_work(s->evf.database, &o, &wo, until_idle, mail_command);
	else if (!strcmp(cmd, "report") && argc - optind == 1)
		status = cmd_report(s->evf.database, &o);
	else {
		usage(stderr);
		status = 2;
	}
	evf_settings_free(s);
	return status;
}
