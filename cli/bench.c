/*
 * bench.c - the phases of `evfctl bench`.
 *
 * Every phase starts on a fresh scratch table.  Clients and workers are
 * processes (fork), each with its own connection, started together through
 * a pipe that the parent closes: the clock runs from that moment until the
 * last of them exits.  Handlers do nothing, so the figures are the queue's
 * own cost.
 */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evf.h"

/* Workers register the type by name, as real ones do: a claim then
 * filters by type, which is what once led PostgreSQL's planner astray. */
#define BENCH_TYPE "bench.e"
#define FILL_BATCH 1000
#define LATENCY_SAMPLES 100
#define SCALE_PENDING 1000
#define SCALE_STEPS 20

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int open_scratch_waking(const bench_config *c, evf_db **db, bool wake)
{
	evf_options o = EVF_OPTIONS_INIT;
	o.table = c->table;
	o.create = true;
	o.poll_interval_ms = c->poll_ms;
	o.no_wake = !wake;
	return evf_open(db, c->url, &o);
}

static int open_scratch(const bench_config *c, evf_db **db)
{
	return open_scratch_waking(c, db, true);
}

static int recreate(const bench_config *c)
{
	evf_db *db;
	int rc = open_scratch(c, &db);
	if (rc)
		return rc;
	if (!(rc = evf_drop(db)))
		rc = evf_init(db);
	evf_close(db);
	return rc;
}

/* Dropping a big SQLite table has SQLite allocate tens of megabytes at
 * once; the C library keeps that heap, and every child forked afterwards
 * would count it in the resident set bench reports for workers.  So the
 * drop runs in a process of its own. */
static int fresh_table(const bench_config *c)
{
	int status;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return recreate(c);
	if (pid == 0) {
		int rc = recreate(c);
		if (rc)
			fprintf(stderr, "evfctl: bench: %s\n", evf_error_last());
		_exit(rc ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EVF_ERROR;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EVF_ERROR;
}

/* Emit n events in batches (COPY on PostgreSQL: they have no keys). */
static int fill(const bench_config *c, int64_t n)
{
	evf_emit_item items[FILL_BATCH];
	evf_db *db;
	int rc = open_scratch(c, &db);
	if (rc)
		return rc;
	for (int i = 0; i < FILL_BATCH; i++)
		items[i] = (evf_emit_item){ BENCH_TYPE, "{}", EVF_EMIT_OPTIONS_INIT };
	for (int64_t done = 0; !rc && done < n; done += FILL_BATCH)
		rc = evf_emit_batch(db, items, (size_t)(n - done < FILL_BATCH ? n - done : FILL_BATCH),
		                    NULL);
	evf_close(db);
	return rc;
}

static int64_t count_states(const bench_config *c, unsigned states)
{
	evf_filter f = EVF_FILTER_INIT;
	evf_db *db;
	int64_t n = -1;
	f.states = states;
	if (open_scratch(c, &db) == 0) {
		if (evf_count(db, &f, &n))
			n = -1;
		evf_close(db);
	}
	return n;
}

/* ---- processes ---------------------------------------------------------------- */

typedef int (*child_fn)(const bench_config *c, int index, void *arg);

static evf_worker *volatile child_worker;
static volatile sig_atomic_t child_stopping;

/* SIGTERM may come before the worker exists (its open can wait on a busy
 * database): the flag catches that case. */
static void stop_child_worker(int sig)
{
	(void)sig;
	child_stopping = 1;
	if (child_worker)
		evf_worker_stop(child_worker);
}

static int run_worker(evf_worker *w)
{
	child_worker = w;
	if (child_stopping)
		evf_worker_stop(w);
	int rc = evf_worker_run(w);
	child_worker = NULL;
	return rc;
}

static int reap(pid_t *pids, int n);

/* Fork n children that wait at the gate; returns their pids.  On failure
 * none is left behind. */
static int spawn(const bench_config *c, int n, child_fn fn, void *arg, pid_t *pids, int *gate)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			for (int k = 0; k < i; k++)
				kill(pids[k], SIGKILL);
			reap(pids, i);
			close(p[0]);
			close(p[1]);
			return -1;
		}
		if (pids[i] == 0) {
			char b;
			close(p[1]);
			signal(SIGTERM, stop_child_worker);
			while (read(p[0], &b, 1) < 0 && errno == EINTR)
				;
			int rc = fn(c, i, arg);
			if (rc)
				fprintf(stderr, "evfctl: bench: %s\n", evf_error_last());
			_exit(rc ? 1 : 0);
		}
	}
	close(p[0]);
	*gate = p[1];
	return 0;
}

/* Wait for n children; *max_rss_kb (may be NULL) gets the largest peak
 * resident set among them. */
static int reap_rss(pid_t *pids, int n, long *max_rss_kb)
{
	int failed = 0, status;
	for (int i = 0; i < n; i++) {
		struct rusage ru;
		if (wait4(pids[i], &status, 0, &ru) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			failed++;
			continue;
		}
		if (max_rss_kb && ru.ru_maxrss > *max_rss_kb)
			*max_rss_kb = ru.ru_maxrss;
	}
	return failed;
}

static int reap(pid_t *pids, int n)
{
	return reap_rss(pids, n, NULL);
}

/* Run n children from one start; *elapsed_ms is until the last exits,
 * *max_rss_kb (may be NULL) the largest child's peak resident set. */
static int run_all(const bench_config *c, int n, child_fn fn, void *arg, double *elapsed_ms,
                   long *max_rss_kb)
{
	pid_t pids[256];
	int gate;
	if (n > 256 || spawn(c, n, fn, arg, pids, &gate))
		return -1;
	double t0 = now_ms();
	close(gate);
	int failed = reap_rss(pids, n, max_rss_kb);
	*elapsed_ms = now_ms() - t0;
	return failed ? -1 : 0;
}

static int noop(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	(void)user;
	return 0;
}

/* A worker on the scratch table: no-op handlers, or `command` for each. */
static int work(const bench_config *c, bool once, const char *command)
{
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	evf_worker *w;
	evf_db *db;
	int rc = open_scratch(c, &db);
	if (rc)
		return rc;
	wo.batch_size = c->batch_size;
	wo.once = once;
	wo.poll_interval_ms = c->poll_ms;
	if ((rc = evf_worker_new(&w, db, &wo)) == 0) {
		rc = command ? evf_register_exec(w, BENCH_TYPE, command, 0)
		             : evf_register(w, BENCH_TYPE, noop, NULL);
		if (!rc)
			rc = run_worker(w);
		evf_worker_free(w);
	}
	evf_close(db);
	return rc;
}

static int drain_child(const bench_config *c, int index, void *arg)
{
	(void)index;
	return work(c, true, arg);
}

static int worker_child(const bench_config *c, int index, void *arg)
{
	(void)index;
	(void)arg;
	return work(c, false, NULL);
}

typedef struct emit_plan {
	int64_t per_client;  /* events each, or */
	double seconds;      /* emit until this long after the start */
	bool no_wake;        /* send idle workers no NOTIFY */
} emit_plan;

static int emit_child(const bench_config *c, int index, void *arg)
{
	const emit_plan *plan = arg;
	double until = now_ms() + plan->seconds * 1e3;
	char params[64];
	evf_db *db;
	int rc = open_scratch_waking(c, &db, !plan->no_wake);
	if (rc)
		return rc;
	for (int64_t i = 0; !rc && (plan->per_client ? i < plan->per_client : now_ms() < until); i++) {
		snprintf(params, sizeof params, "{\"client\":%d,\"i\":%" PRId64 "}", index, i);
		rc = evf_emit(db, BENCH_TYPE, params, NULL, NULL);
	}
	evf_close(db);
	return rc;
}

static int child_failed(const char *what)
{
	fprintf(stderr, "evfctl: bench: %s failed\n", what);
	return EVF_ERROR;
}

/* ---- the phases ------------------------------------------------------------------- */

/* One event per transaction from C clients at once. */
static int emit_singles(const bench_config *c, bool wake, double *rate)
{
	int64_t single = c->events < 20000 ? c->events : 20000;
	emit_plan plan = { single / c->concurrency > 0 ? single / c->concurrency : 1, 0, !wake };
	double ms;
	int rc;
	if ((rc = fresh_table(c)))
		return rc;
	if (run_all(c, c->concurrency, emit_child, &plan, &ms, NULL))
		return child_failed("an emitting client");
	*rate = plan.per_client * c->concurrency / (ms / 1e3);
	return 0;
}

static int phase_emit(const bench_config *c, bench_results *out)
{
	int rc;
	if ((rc = emit_singles(c, true, &out->emit_single_per_s)))
		return rc;
	/* what the wake-up costs: only PostgreSQL sends one (NOTIFY) */
	if (out->pg && (rc = emit_singles(c, false, &out->emit_single_no_wake_per_s)))
		return rc;
	if ((rc = fresh_table(c)))
		return rc;
	double t0 = now_ms();
	if ((rc = fill(c, c->events)))
		return rc;
	out->emit_per_s = c->events / ((now_ms() - t0) / 1e3);
	return 0;
}

static int drain(const bench_config *c, int64_t n, const char *command, double *rate,
                 long *max_rss_kb)
{
	double ms;
	int rc;
	if ((rc = fresh_table(c)) || (rc = fill(c, n)))
		return rc;
	if (run_all(c, c->workers, drain_child, (void *)command, &ms, max_rss_kb))
		return child_failed("a worker");
	int64_t done = count_states(c, 1u << EVF_STATE_DONE);
	if (done != n) {
		fprintf(stderr, "evfctl: bench: %" PRId64 " of %" PRId64 " events done\n", done, n);
		return EVF_ERROR;
	}
	*rate = n / (ms / 1e3);
	return 0;
}

static int phase_drain(const bench_config *c, bench_results *out)
{
	int rc = drain(c, c->events, NULL, &out->drain_per_s, &out->worker_max_rss_kb);
	if (rc)
		return rc;
	/* a process per event: far fewer events, the same per-event figure */
	out->exec_events = c->events / 100 < 20 ? 20 : c->events / 100 > 2000 ? 2000 : c->events / 100;
	return drain(c, out->exec_events, "/bin/true", &out->drain_exec_per_s, NULL);
}

/* The latency worker reports, per event, the time since the emit began. */
static int latency_fd = -1;

static int report_latency(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)user;
	const char *t = strstr(ev->parameters, "\"t\":");
	int64_t sent = t ? strtoll(t + 4, NULL, 10) : 0, waited = evf_now() - sent;
	return write(latency_fd, &waited, sizeof waited) == sizeof waited ? 0 : -1;
}

static int latency_worker(const bench_config *c, int index, void *arg)
{
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	evf_worker *w;
	evf_db *db;
	int rc = open_scratch(c, &db);
	(void)index;
	latency_fd = *(int *)arg;
	if (rc)
		return rc;
	wo.poll_interval_ms = c->poll_ms;
	if ((rc = evf_worker_new(&w, db, &wo)) == 0) {
		if (!(rc = evf_register(w, "bench.latency", report_latency, NULL)))
			rc = run_worker(w);
		evf_worker_free(w);
	}
	evf_close(db);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static int phase_latency(const bench_config *c, bench_results *out)
{
	int64_t k = c->events < LATENCY_SAMPLES ? c->events : LATENCY_SAMPLES;
	double samples[LATENCY_SAMPLES];
	int p[2], gate, rc;
	pid_t pid;
	evf_db *db;

	if ((rc = fresh_table(c)))
		return rc;
	if (pipe(p) != 0)
		return EVF_ERROR;
	if (spawn(c, 1, latency_worker, &p[1], &pid, &gate)) {
		close(p[0]);
		close(p[1]);
		return EVF_ERROR;
	}
	close(p[1]);
	close(gate);
	if ((rc = open_scratch(c, &db)) == 0) {
		usleep(300000); /* let the worker reach its idle wait */
		for (int64_t i = 0; !rc && i < k; i++) {
			char params[64];
			struct pollfd pfd = { p[0], POLLIN, 0 };
			int64_t waited;
			snprintf(params, sizeof params, "{\"t\":%" PRId64 "}", evf_now());
			if ((rc = evf_emit(db, "bench.latency", params, NULL, NULL)))
				break;
			if (poll(&pfd, 1, 10000) != 1 || read(p[0], &waited, sizeof waited) != sizeof waited) {
				fprintf(stderr, "evfctl: bench: the idle worker did not run an event within 10 s\n");
				rc = EVF_ERROR;
				break;
			}
			samples[i] = waited / 1e3;
			usleep(2000);
		}
		evf_close(db);
	}
	kill(pid, SIGTERM);
	reap(&pid, 1);
	close(p[0]);
	if (rc)
		return rc;
	qsort(samples, (size_t)k, sizeof *samples, cmp_double);
	out->latency_samples = k;
	out->latency_p50 = percentile(samples, (size_t)k, 0.50);
	out->latency_p95 = percentile(samples, (size_t)k, 0.95);
	out->latency_p99 = percentile(samples, (size_t)k, 0.99);
	return 0;
}

static int phase_mixed(const bench_config *c, bench_results *out)
{
	emit_plan plan = { 0, c->duration_ms / 1e3, false };
	pid_t workers[256], emitters[256];
	int wgate, egate, rc;
	if ((rc = fresh_table(c)))
		return rc;
	if (spawn(c, c->workers, worker_child, NULL, workers, &wgate))
		return EVF_ERROR;
	/* the workers' gate opens first: an emitter forked while it is still
	 * open would hold it, and the workers would wait for the emitters */
	close(wgate);
	if (spawn(c, c->concurrency, emit_child, &plan, emitters, &egate)) {
		for (int i = 0; i < c->workers; i++)
			kill(workers[i], SIGTERM);
		reap(workers, c->workers);
		return EVF_ERROR;
	}
	close(egate);
	int failed = reap(emitters, c->concurrency);
	for (int i = 0; i < c->workers; i++)
		kill(workers[i], SIGTERM);
	failed += reap(workers, c->workers);
	if (failed)
		return child_failed("a client or a worker of the mixed phase");
	int64_t total = count_states(c, 0), done = count_states(c, 1u << EVF_STATE_DONE);
	out->mixed_emit_per_s = total / (c->duration_ms / 1e3);
	out->mixed_drain_per_s = done / (c->duration_ms / 1e3);
	return 0;
}

static int scale_point(const bench_config *c, bench_scale_point *pt)
{
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	evf_worker *w;
	evf_db *db;
	evf_overview ov;
	evf_stats *st;
	int rc = open_scratch(c, &db);
	if (rc)
		return rc;
	wo.batch_size = c->batch_size;
	if ((rc = evf_worker_new(&w, db, &wo)) == 0) {
		if (!(rc = evf_register(w, BENCH_TYPE, noop, NULL))) {
			double t0 = now_ms();
			for (int i = 0; !rc && i < SCALE_STEPS; i++)
				rc = evf_worker_step(w, NULL);
			pt->claim_ms = (now_ms() - t0) / SCALE_STEPS;
		}
		evf_worker_free(w);
	}
	double t0 = now_ms();
	for (int i = 0; !rc && i < 5; i++)
		rc = evf_overview_get(db, &ov);
	pt->overview_ms = (now_ms() - t0) / 5;
	t0 = now_ms();
	if (!rc && !(rc = evf_stats_get(db, &st)))
		evf_stats_free(st);
	pt->stats_ms = now_ms() - t0;
	evf_close(db);
	return rc;
}

/* Mark everything done, then let the database clean up as it would have
 * while a real history built up slowly (autovacuum on PostgreSQL): the
 * scale phase measures a big table, not one big update's dead rows. */
static int finish_all(const bench_config *c)
{
	evf_filter f = EVF_FILTER_INIT;
	evf_db *db;
	int64_t n;
	int rc = open_scratch(c, &db);
	if (rc)
		return rc;
	f.all = true;
	if (!(rc = evf_act(db, EVF_ACTION_MARK_PROCESSED, &f, 0, false, &n)))
		rc = evf_maintain(db);
	evf_close(db);
	return rc;
}

static int phase_scale(const bench_config *c, bench_results *out)
{
	static const int64_t levels[] = { 1000, 100000, 1000000, 10000000 };
	int64_t rows = 0;
	int rc;
	if ((rc = fresh_table(c)))
		return rc;
	for (size_t i = 0; i < 4 && levels[i] <= c->max_rows; i++) {
		/* history up to the level, then a ready backlog on top of it */
		if ((rc = fill(c, levels[i] - rows)) || (rc = finish_all(c)) ||
		    (rc = fill(c, SCALE_PENDING)))
			return rc;
		rows = levels[i] + SCALE_PENDING;
		bench_scale_point *pt = &out->scale[out->nscale++];
		pt->rows = rows;
		if ((rc = scale_point(c, pt)))
			return rc;
		if ((rc = finish_all(c)))
			return rc;
	}
	return 0;
}

int bench_run(const bench_config *c, bench_results *out)
{
	static const struct {
		unsigned bit;
		int (*fn)(const bench_config *, bench_results *);
	} phases[] = {
		{ BENCH_EMIT, phase_emit }, { BENCH_DRAIN, phase_drain },
		{ BENCH_LATENCY, phase_latency }, { BENCH_MIXED, phase_mixed },
		{ BENCH_SCALE, phase_scale },
	};
	evf_db *db;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = open_scratch(c, &db)))
		return rc;
	rc = evf_db_durability(db, out->durability, sizeof out->durability);
	out->pg = !strcmp(evf_db_backend(db), "postgresql");
	evf_close(db);
	for (size_t i = 0; !rc && i < sizeof phases / sizeof *phases; i++)
		if (c->phases & phases[i].bit)
			rc = phases[i].fn(c, out);
	return rc;
}
