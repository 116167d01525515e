/*
 * worker.c - the claim / run / record loop.
 *
 * One step: claim a batch under a lease, run each event's handler (batch
 * handlers get all events of their type at once), then record successes in
 * one statement and failures in one transaction.  Every write is guarded by
 * the lease, so an outcome from a worker that lost its lease is dropped and
 * reported as "lease_lost" instead of overwriting the new holder's row.
 */
#include "evf_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_next(evfi_lane *l)
{
	/* xorshift64*: jitter only needs to differ between workers */
	l->rng ^= l->rng >> 12;
	l->rng ^= l->rng << 25;
	l->rng ^= l->rng >> 27;
	return l->rng * 2685821657736338717ULL;
}

static double rng_unit(evfi_lane *l)
{
	return (double)(rng_next(l) >> 11) / 9007199254740992.0;
}

/* How much of the caller's options a struct of this version holds. */
static size_t options_size(unsigned version)
{
	switch (version) {
	case 1: return offsetof(evf_worker_options, metrics_textfile);
	case 2: return offsetof(evf_worker_options, concurrency);
	default: return sizeof(evf_worker_options);
	}
}

int evf_worker_new(evf_worker **out, evf_db *db, const evf_worker_options *opts)
{
	evf_worker *w;
	char host[128] = "evf";

	*out = NULL;
	if (!db)
		return evfi_fail(EVF_EINVAL, "no database given to the worker");
	if (opts && (opts->version < 1 || opts->version > EVF_WORKER_OPTIONS_VERSION))
		return evfi_fail(EVF_EINVAL, "worker options version %u is not supported",
		                 opts->version);
	if (!(w = calloc(1, sizeof *w)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		free(w);
		return evfi_fail(EVF_ERROR, "cannot create the worker's lock");
	}
	w->db = db;
	w->o = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	if (opts) /* never past the fields the caller's version has */
		memcpy(&w->o, opts, options_size(opts->version));
	w->o.version = EVF_WORKER_OPTIONS_VERSION;
	if (w->o.concurrency <= 0)
		w->o.concurrency = 1;
	if (w->o.batch_size <= 0)
		w->o.batch_size = 100;
	if (w->o.batch_size > 10000 || w->o.concurrency > EVFI_MAX_CONCURRENCY) {
		if (w->o.batch_size > 10000)
			evfi_fail(EVF_EINVAL, "batch size %d is too large (at most 10000)",
			          w->o.batch_size);
		else
			evfi_fail(EVF_EINVAL, "concurrency %d is too large (at most %d)",
			          w->o.concurrency, EVFI_MAX_CONCURRENCY);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return EVF_EINVAL;
	}
	if (w->o.limit < 0 || w->o.older_than_ms < 0 || w->o.max_attempts < 0 ||
	    w->o.lock_timeout_ms < 0 || w->o.poll_interval_ms < 0 ||
	    w->o.metrics_interval_ms < 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return evfi_fail(EVF_EINVAL, "worker options must not be negative");
	}
	w->lock_ms = w->o.lock_timeout_ms ? w->o.lock_timeout_ms : db->opts.lock_timeout_ms;
	w->poll_ms = w->o.poll_interval_ms ? w->o.poll_interval_ms : db->opts.poll_interval_ms;
	w->lane.w = w;
	w->lane.db = db;
	w->lane.rng = evfi_seed(w);
	if (!w->o.name) {
		if (gethostname(host, sizeof host) != 0)
			strcpy(host, "evf");
		host[sizeof host - 1] = '\0';
	}
	/* pid and a random tag make the id unique per process, which the
	 * lease checks rely on. */
	evfi_buf b = { 0 };
	evfi_buf_printf(&b, "%s:%ld:%04x", w->o.name ? w->o.name : host, (long)getpid(),
	                (unsigned)(rng_next(&w->lane) & 0xffff));
	w->id = b.data;
	if (w->id) {
		int rc = evfi_metrics_new(&w->metrics, &w->o, w->o.name ? w->o.name : host, w->id);
		if (rc) {
			free(w->id);
			pthread_mutex_destroy(&w->mu);
			free(w);
			return rc;
		}
	}
	w->o.name = NULL;
	w->o.metrics_textfile = w->o.statsd = NULL; /* the caller's strings */
	if (w->o.ntypes && w->o.types) {
		w->types = calloc(w->o.ntypes, sizeof *w->types);
		for (size_t i = 0; w->types && i < w->o.ntypes; i++)
			w->types[i] = evfi_strdup(w->o.types[i]);
		w->ntypes = w->types ? w->o.ntypes : 0;
	}
	w->o.types = NULL;
	int rrc = evfi_rate_new(&w->rate, w->o.rates, w->o.nrates);
	w->o.rates = NULL; /* copied */
	if (rrc) {
		evf_worker_free(w);
		return rrc;
	}
	if (!w->id || (w->o.ntypes && !w->types)) {
		evf_worker_free(w);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < w->ntypes; i++)
		if (!w->types[i] || !*w->types[i]) {
			evf_worker_free(w);
			return evfi_fail(EVF_EINVAL, "empty type in the worker's type list");
		}
	*out = w;
	return 0;
}


void evf_worker_free(evf_worker *w)
{
	if (!w)
		return;
	evfi_metrics_flush(w->metrics, true);
	evfi_metrics_free(w->metrics);
	evfi_handlers_free(w);
	evfi_plugins_close(w);
	evfi_rate_free(w->rate);
	for (size_t i = 0; i < w->ntypes; i++)
		free(w->types[i]);
	free(w->types);
	free(w->handler_types);
	free(w->id);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void evf_worker_stop(evf_worker *w)
{
	w->stop = 1;
}

const char *evf_worker_id(const evf_worker *w)
{
	return w->id;
}

void evf_worker_counters_get(const evf_worker *w, evf_worker_counters *out)
{
	/* the lock, not the counters, changes: another thread may be counting */
	pthread_mutex_t *mu = (pthread_mutex_t *)&w->mu;
	pthread_mutex_lock(mu);
	*out = w->counters;
	pthread_mutex_unlock(mu);
}

int64_t evfi_worker_outcomes(evf_worker *w)
{
	pthread_mutex_lock(&w->mu);
	const evf_worker_counters *c = &w->counters;
	int64_t n = c->processed + c->failed + c->skipped + c->lost;
	pthread_mutex_unlock(&w->mu);
	return n;
}

static bool has_catch_all(const evf_worker *w)
{
	for (size_t i = 0; i < w->nhandlers; i++)
		if (!strcmp(w->handlers[i].type, "*"))
			return true;
	return false;
}

/* The types this worker claims: --types, else every registered type, or
 * all types (NULL) when a "*" handler catches the rest. */
static int claim_types(evf_worker *w, const char *const **types, size_t *n)
{
	if (w->nhandlers == 0)
		return evfi_fail(EVF_EINVAL, "no handlers registered");
	if (w->ntypes) {
		for (size_t i = 0; i < w->ntypes; i++)
			if (!evfi_handler_find(w, w->types[i]))
				return evfi_fail(EVF_EINVAL, "no handler for type %s", w->types[i]);
		*types = (const char *const *)w->types;
		*n = w->ntypes;
		return 0;
	}
	*types = NULL;
	*n = 0;
	if (has_catch_all(w))
		return 0;
	/* Rebuilt when handlers were added since the last claim. */
	if (w->nhandler_types != w->nhandlers) {
		const char **t = realloc(w->handler_types, w->nhandlers * sizeof *t);
		if (!t)
			return evfi_fail(EVF_ENOMEM, "out of memory");
		for (size_t i = 0; i < w->nhandlers; i++)
			t[i] = w->handlers[i].type;
		w->handler_types = t;
		w->nhandler_types = w->nhandlers;
	}
	*types = w->handler_types;
	*n = w->nhandler_types;
	return 0;
}

/* Run the handler of evs[i] (and, for a batch handler, every later event of
 * the same type not yet run).  Marks what ran in `ran`. */
static void run_handler(evfi_lane *l, evf_event **evs, size_t n, size_t i,
                        evfi_result *res, bool *ran, bool *skipped, double *dur)
{
	evf_worker *w = l->w;
	const evfi_handler *h = evfi_handler_find(w, evs[i]->type);
	struct timespec t0;

	if (!h) {
		/* claimed by type list, so only a race with unregistering gets here */
		res[i].failed = true;
		res[i].retryable = true;
		res[i].message = strdup("no handler for this type");
		ran[i] = true;
		return;
	}
	if (h->batch) {
		const evf_event **group = calloc(n, sizeof *group);
		size_t *where = calloc(n, sizeof *where);
		evfi_result *gres = calloc(n, sizeof *gres);
		size_t g = 0;
		if (!group || !where || !gres) {
			free(group);
			free(where);
			free(gres);
			res[i].failed = true;
			res[i].retryable = true;
			res[i].message = strdup("out of memory");
			ran[i] = true;
			return;
		}
		for (size_t k = i; k < n; k++) {
			if (ran[k] || evfi_handler_find(w, evs[k]->type) != h)
				continue;
			ran[k] = true;
			if (h->opts.when && !h->opts.when(evs[k], h->opts.user)) {
				skipped[k] = true;
				continue;
			}
			group[g] = evs[k];
			where[g++] = k;
		}
		if (g) {
			evf_job job = { l, group, gres, g };
			clock_gettime(CLOCK_MONOTONIC, &t0);
			int rc = h->batch(&job, group, g, h->opts.user);
			double d = evfi_ms_since(&t0) / (double)g;
			for (size_t k = 0; k < g; k++) {
				if (rc && !gres[k].failed) {
					gres[k].failed = true;
					gres[k].retryable = true;
				}
				res[where[k]] = gres[k];
				dur[where[k]] = d;
			}
		}
		free(group);
		free(where);
		free(gres);
		return;
	}
	ran[i] = true;
	if (h->opts.when && !h->opts.when(evs[i], h->opts.user)) {
		skipped[i] = true;
		return;
	}
	const evf_event *one[1] = { evs[i] };
	evf_job job = { l, one, &res[i], 1 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = h->fn(&job, evs[i], h->opts.user);
	dur[i] = evfi_ms_since(&t0);
	if (rc && !res[i].failed) {
		res[i].failed = true;
		res[i].retryable = true;
	}
}

/* Count, log, measure and call back one outcome; the caller holds w->mu. */
static void report(evf_worker *w, const evf_outcome *o)
{
	evf_worker_counters *c = &w->counters;
	if (!o->applied)
		c->lost++;
	else if (o->skipped)
		c->skipped++;
	else if (o->ok)
		c->processed++;
	else {
		c->failed++;
		if (o->dead)
			c->dead++;
		else
			c->retried++;
	}
	if (w->o.log) {
		char *line = evfi_log_line(w->o.log_format, w->id, o);
		if (line)
			w->o.log(w->o.log_user, line);
		free(line);
	}
	evfi_metrics_outcome(w->metrics, o);
	if (o->ok || o->skipped) {
		if (w->o.on_processed)
			w->o.on_processed(o, w->o.callback_user);
	} else if (w->o.on_failed) {
		w->o.on_failed(o, w->o.callback_user);
	}
}

int evfi_worker_claim(evfi_lane *l, int64_t want, evf_event ***evs, size_t *n,
                      int64_t *wait_ms)
{
	evf_worker *w = l->w;
	evf_store *s = l->db->store;
	const char *const *types, *const *skip = NULL;
	size_t ntypes, nskip = 0;
	int rc = claim_types(w, &types, &ntypes);
	*evs = NULL;
	*n = 0;
	*wait_ms = 0;
	if (rc || want <= 0)
		return rc;
	if (w->rate) {
		/* releasing what a limit holds back needs leases */
		if ((rc = s->ops->schema_extended(s)) <= 0)
			return rc < 0 ? rc : evfi_fail(EVF_EBASIC, "rate limits need the lease "
			                 "columns, which table %s lacks (evfctl migrate adds them)",
			                 l->db->table);
		if ((rc = evfi_rate_before(w->rate, s, &want, &skip, &nskip, wait_ms)) || !want)
			return rc;
	}
	evf_claim c = {
		.worker_id = w->id, .types = types, .ntypes = ntypes, .limit = (int)want,
		.lock_ms = w->lock_ms, .only_errors = w->o.only_errors,
		.max_attempts = w->o.max_attempts,
		.older_than = w->o.older_than_ms ? evf_now() - w->o.older_than_ms * 1000 : 0,
		.skip = skip, .nskip = nskip,
	};
	if ((rc = s->ops->claim(s, &c, evs, n)) || !w->rate || !*n)
		return rc;
	return evfi_rate_admit(w->rate, s, w->id, *evs, n, wait_ms);
}

/* A batch's worth, or what the limit leaves. */
static int claim_batch(evfi_lane *l, evf_event ***evs, size_t *n, int64_t *wait_ms)
{
	evf_worker *w = l->w;
	int64_t want = w->o.batch_size;
	if (w->o.limit) {
		int64_t done = evfi_worker_outcomes(w);
		if (w->o.limit - done < want)
			want = w->o.limit - done;
	}
	return evfi_worker_claim(l, want, evs, n, wait_ms);
}

/* Sleep up to ms, waking early when asked to stop (or, where the store
 * can announce new work, when some arrives). */
void evfi_worker_idle(evfi_lane *l, int64_t ms)
{
	evf_worker *w = l->w;
	evf_store *s = l->db->store;
	if (s->ops->wait) {
		s->ops->wait(s, ms, &w->stop);
		return;
	}
	while (ms > 0 && !w->stop) {
		int64_t slice = ms < 50 ? ms : 50;
		struct timespec ts = { (time_t)(slice / 1000), (long)(slice % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !w->stop)
			;
		ms -= slice;
	}
}

/* After an empty claim: wait for the poll, or less when a rate limit
 * (rate_wait_ms > 0) will have tokens sooner. */
void evfi_worker_rest(evfi_lane *l, int64_t rate_wait_ms)
{
	int64_t poll = l->w->poll_ms;
	evfi_worker_idle(l, rate_wait_ms && rate_wait_ms < poll ? rate_wait_ms : poll);
}

/* After an error that passes: say so and wait, backing off from 10 ms to
 * 5 s (*pause holds the last wait, 0 after a success).  Whatever was
 * claimed comes back when its lease expires, and the lease check keeps a
 * late write from doing harm. */
void evfi_back_off(evfi_lane *l, int64_t *pause)
{
	*pause = *pause ? (*pause * 2 > 5000 ? 5000 : *pause * 2) : 10;
	evfi_log_retry(l->w, *pause);
	evfi_worker_idle(l, *pause);
}

/* Errors that pass: a lock held past the busy timeout, a server restart. */
bool evfi_transient(int rc)
{
	return rc == EVF_EBUSY || rc == EVF_EUNAVAILABLE;
}

/* Say that the database is unreachable and when the worker tries again. */
void evfi_log_retry(evf_worker *w, int64_t pause)
{
	if (!w->o.log)
		return;
	evfi_buf b = { 0 };
	if (w->o.log_format == EVF_LOG_JSON) {
		evfi_buf_printf(&b, "{\"level\":\"warn\",\"msg\":\"retrying\",\"worker\":\"%s\","
		                "\"retry_in_ms\":%lld}", w->id, (long long)pause);
	} else {
		evfi_buf_printf(&b, "level=warn msg=retrying worker=%s retry_in_ms=%lld error=\"",
		                w->id, (long long)pause);
		for (const char *p = evf_error_last(); *p; p++)
			evfi_buf_add(&b, *p == '"' ? "'" : p, 1);
		evfi_buf_add(&b, "\"", 1);
	}
	if (b.data && !b.oom) {
		pthread_mutex_lock(&w->mu);
		w->o.log(w->o.log_user, b.data);
		pthread_mutex_unlock(&w->mu);
	}
	evfi_buf_free(&b);
}

/* A warning line with the last error, for what the worker lets pass. */
void evfi_log_warn(evf_worker *w, const char *msg)
{
	if (!w->o.log)
		return;
	char *line = evfi_log_warning(w->o.log_format, w->id, msg, evf_error_last());
	if (line) {
		pthread_mutex_lock(&w->mu);
		w->o.log(w->o.log_user, line);
		pthread_mutex_unlock(&w->mu);
	}
	free(line);
}

/* One claimed batch on its way through the worker. */
typedef struct batch {
	evf_event **evs;
	size_t n;
	evfi_result *res;     /* what each handler said */
	bool *ran, *skipped, *applied;
	double *dur;
	evf_failure_rec *fails;
	size_t nfail;
	ssize_t *fail_of;     /* index into fails, or -1 */
	evf_time judged;      /* when the failures were judged: their log's
	                         retry_at counts the backoff from there */
} batch;

static int batch_alloc(batch *b)
{
	size_t n = b->n;
	b->res = calloc(n, sizeof *b->res);
	b->ran = calloc(n, sizeof *b->ran);
	b->skipped = calloc(n, sizeof *b->skipped);
	b->applied = calloc(n, sizeof *b->applied);
	b->dur = calloc(n, sizeof *b->dur);
	b->fails = calloc(n, sizeof *b->fails);
	b->fail_of = calloc(n, sizeof *b->fail_of);
	if (!b->res || !b->ran || !b->skipped || !b->applied || !b->dur || !b->fails ||
	    !b->fail_of)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	return 0;
}

static void batch_free(batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->res)
			evfi_result_clear(&b->res[i]);
		evf_event_free(b->evs[i]);
	}
	free(b->evs);
	free(b->res);
	free(b->ran);
	free(b->skipped);
	free(b->applied);
	free(b->dur);
	free(b->fails);
	free(b->fail_of);
}

/* The attempts an event is allowed: the worker's override, the event's
 * own, or the database default. */
static int max_attempts_of(const evfi_lane *l, const evf_event *ev)
{
	int max = l->w->o.max_attempts ? l->w->o.max_attempts : ev->max_attempts;
	return max > 0 ? max : l->db->opts.max_attempts;
}

/* A claim beyond the allowed attempts means earlier ones ended with no
 * outcome: the worker died (or was killed) inside the handler and the
 * lease ran out.  Running such an event again could kill the next worker
 * too, so it goes dead without running, saying why. */
static bool exhausted_by_lost_attempts(const evfi_lane *l, const evf_event *ev,
                                       evfi_result *res)
{
	int max = max_attempts_of(l, ev);
	if (ev->attempts <= max)
		return false;
	char msg[200];
	snprintf(msg, sizeof msg, "attempt %d of %d not run: an earlier attempt's lease expired "
	         "with no outcome (did its worker crash?)", ev->attempts, max);
	res->failed = true;
	res->retryable = false;
	res->code = strdup("lease_expired");
	res->message = strdup(msg);
	return true;
}

/* Run the handlers in claim order.  On stop, what has not started goes
 * back untouched; past half the lease the whole batch is renewed, so that
 * events waiting their turn are not taken over (a worker that hangs stops
 * renewing, and its events come back). */
static int batch_run(evfi_lane *l, batch *b)
{
	evf_worker *w = l->w;
	evf_store *s = l->db->store;
	evf_lease *rel = calloc(b->n, sizeof *rel);
	size_t nrel = 0;
	struct timespec renewed;
	int rc = 0;

	/* a basic table has no attempts column: every claim is the first */
	bool basic = s->ops->schema_extended(s) == 0;

	if (!rel)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	clock_gettime(CLOCK_MONOTONIC, &renewed);
	for (size_t i = 0; i < b->n && !rc; i++) {
		if (b->ran[i])
			continue;
		if (w->stop) {
			rel[nrel++] = l->leases[i];
			continue;
		}
		if (evfi_ms_since(&renewed) * 2 >= (double)w->lock_ms) {
			rc = s->ops->extend(s, w->id, l->leases, l->nleases, w->lock_ms);
			if (evfi_transient(rc)) {
				/* the outcomes may still land; the lease check decides */
				evfi_log_warn(w, "lease renewal failed");
				rc = 0;
			}
			clock_gettime(CLOCK_MONOTONIC, &renewed);
		}
		if (!rc && !basic && exhausted_by_lost_attempts(l, b->evs[i], &b->res[i]))
			b->ran[i] = true;
		else if (!rc)
			run_handler(l, b->evs, b->n, i, b->res, b->ran, b->skipped, b->dur);
	}
	if (!rc && nrel)
		rc = s->ops->release(s, w->id, rel, nrel);
	free(rel);
	return rc;
}

/* Turn handler results into failure records: retry with backoff, or dead
 * when not retryable, exhausted, or on a basic table (no retries there). */
static void batch_judge(evfi_lane *l, batch *b)
{
	evf_db *db = l->db;
	bool basic = db->store->ops->schema_extended(db->store) == 0;
	b->judged = evf_now();
	for (size_t i = 0; i < b->n; i++) {
		b->fail_of[i] = -1;
		if (!b->ran[i] || !b->res[i].failed)
			continue;
		const evf_event *ev = b->evs[i];
		int max = max_attempts_of(l, ev);
		evf_failure_rec *f = &b->fails[b->nfail];
		f->lease = l->leases[i];
		f->message = b->res[i].message;
		f->code = b->res[i].code;
		f->dead = basic || !b->res[i].retryable || ev->attempts >= max;
		if (!f->dead)
			f->retry_ms = evf_backoff_ms(ev->attempts, db->opts.backoff_base_ms,
				db->opts.backoff_max_ms, rng_unit(l));
		b->fail_of[i] = (ssize_t)b->nfail++;
	}
}

/* Record successes (and skips) in one statement and failures in one
 * transaction.  Outcomes are worth waiting for: while the lease lasts a
 * write after a reconnect still lands, and saves running handlers again. */
static int batch_record(evfi_lane *l, batch *b)
{
	evf_worker *w = l->w;
	evf_store *s = l->db->store;
	evf_lease *ok = calloc(b->n, sizeof *ok);
	bool *ok_applied = calloc(b->n, sizeof *ok_applied);
	bool *fail_applied = calloc(b->n, sizeof *fail_applied);
	size_t nok = 0;
	int rc;

	if (!ok || !ok_applied || !fail_applied) {
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->ran[i] && !b->res[i].failed)
			ok[nok++] = l->leases[i];
	int64_t pause = 10, waited = 0;
	bool completed = false;
	for (;;) {
		rc = completed ? 0 : s->ops->complete(s, w->id, ok, nok, ok_applied);
		completed = completed || rc == 0;
		if (!rc)
			rc = s->ops->fail_batch(s, w->id, b->fails, b->nfail, fail_applied);
		if (!evfi_transient(rc) || waited >= w->lock_ms)
			break;
		evfi_log_retry(w, pause);
		evfi_worker_idle(l, pause);
		waited += pause;
		pause = pause * 2 > 2000 ? 2000 : pause * 2;
	}
	for (size_t i = 0, k = 0; !rc && i < b->n; i++) {
		if (!b->ran[i])
			continue;
		b->applied[i] = b->res[i].failed ? fail_applied[b->fail_of[i]] : ok_applied[k++];
	}
out:
	free(ok);
	free(ok_applied);
	free(fail_applied);
	return rc;
}

static void batch_report(evf_worker *w, const batch *b)
{
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < b->n; i++) {
		if (!b->ran[i])
			continue;
		const evfi_result *r = &b->res[i];
		evf_outcome o = {
			.event = b->evs[i], .ok = !r->failed, .skipped = b->skipped[i],
			.applied = b->applied[i], .error_code = r->code,
			.error_message = r->failed ? (r->message ? r->message : "handler failed") : NULL,
			.duration_ms = b->dur[i],
		};
		if (b->fail_of[i] >= 0) {
			const evf_failure_rec *f = &b->fails[b->fail_of[i]];
			o.dead = f->dead;
			o.retry_at = f->dead ? 0 : b->judged + 1000 * f->retry_ms;
		}
		report(w, &o);
	}
	pthread_mutex_unlock(&w->mu);
}

/* Write and send the metrics that are due (all of them when forced). */
static void metrics_flush(evf_worker *w, bool force)
{
	pthread_mutex_lock(&w->mu);
	evfi_metrics_flush(w->metrics, force);
	pthread_mutex_unlock(&w->mu);
}

/* Run, record and report a claimed batch on a lane, which takes evs. */
int evfi_batch_process(evfi_lane *l, evf_event **evs, size_t n)
{
	evf_worker *w = l->w;
	evf_store *s = l->db->store;
	batch b = { .evs = evs, .n = n };
	int rc;

	if (!(rc = batch_alloc(&b)) && !(l->leases = calloc(b.n, sizeof *l->leases)))
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
	if (!rc) {
		for (size_t i = 0; i < b.n; i++)
			l->leases[i] = (evf_lease){ b.evs[i]->id, b.evs[i]->attempts, b.evs[i]->type,
			                            !b.evs[i]->error };
		l->nleases = b.n;
		rc = batch_run(l, &b);
	}
	if (!rc) {
		batch_judge(l, &b);
		rc = batch_record(l, &b);
	}
	/* Outcomes are reported once they are durable. */
	if (!rc && s->ops->end_batch)
		rc = s->ops->end_batch(s, true);
	if (!rc)
		batch_report(w, &b);
	else if (s->ops->end_batch)
		s->ops->end_batch(s, false); /* a basic batch stays unprocessed */
	batch_free(&b);
	free(l->leases);
	l->leases = NULL;
	l->nleases = 0;
	metrics_flush(w, false);
	return rc;
}

int evf_worker_step(evf_worker *w, size_t *out_n)
{
	evf_store *s = w->lane.db->store;
	evf_event **evs;
	size_t n;
	int rc;

	if (out_n)
		*out_n = 0;
	if ((rc = claim_batch(&w->lane, &evs, &n, &w->rate_wait_ms)))
		return rc;
	if (n == 0) {
		free(evs);
		metrics_flush(w, false); /* what the last batches did */
		return s->ops->end_batch ? s->ops->end_batch(s, true) : 0;
	}
	if (!(rc = evfi_batch_process(&w->lane, evs, n)) && out_n)
		*out_n = n;
	return rc;
}

static int requeue_errors(evf_worker *w)
{
	const char *const *types;
	size_t ntypes;
	int rc = claim_types(w, &types, &ntypes);
	if (rc)
		return rc;
	evf_filter f = EVF_FILTER_INIT;
	f.states = (1u << EVF_STATE_FAILED) | (1u << EVF_STATE_DEAD);
	f.all = true;
	int64_t n;
	if (!types)
		return evf_act(w->db, EVF_ACTION_REQUEUE, &f, 0, false, &n);
	for (size_t i = 0; i < ntypes; i++) {
		if (!strcmp(types[i], "*"))
			continue;
		f.type = types[i];
		if ((rc = evf_act(w->db, EVF_ACTION_REQUEUE, &f, 0, false, &n)))
			return rc;
	}
	return 0;
}

static int run_loop(evf_worker *w);

/* The loop, then the metrics of the whole run written once more. */
int evf_worker_run(evf_worker *w)
{
	int rc = 0;
	if (w->o.requeue_errors && (rc = requeue_errors(w)))
		rc = evfi_wrap(rc, "requeueing errors");
	else
		rc = w->o.concurrency > 1 ? evfi_pool_run(w) : run_loop(w);
	metrics_flush(w, true);
	return rc;
}

static int run_loop(evf_worker *w)
{
	int rc;
	int64_t pause = 0;
	while (!w->stop) {
		size_t n;
		rc = evf_worker_step(w, &n);
		if (evfi_transient(rc)) {
			evfi_back_off(&w->lane, &pause);
			continue;
		}
		if (rc)
			return rc;
		pause = 0;
		if (w->o.limit && evfi_worker_outcomes(w) >= w->o.limit)
			break;
		if (n == 0) {
			/* a rate limit held events back: not "nothing ready" */
			if (w->o.once && !w->rate_wait_ms)
				break;
			evfi_worker_rest(&w->lane, w->rate_wait_ms);
		}
	}
	return 0;
}
