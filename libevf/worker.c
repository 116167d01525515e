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
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_next(evf_worker *w)
{
	/* xorshift64*: jitter only needs to differ between workers */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ULL;
}

static double rng_unit(evf_worker *w)
{
	return (double)(rng_next(w) >> 11) / 9007199254740992.0;
}

int evf_worker_new(evf_worker **out, evf_db *db, const evf_worker_options *opts)
{
	evf_worker *w;
	char host[128] = "evf";

	*out = NULL;
	if (!db)
		return evfi_fail(EVF_EINVAL, "no database given to the worker");
	if (opts && opts->version != EVF_WORKER_OPTIONS_VERSION)
		return evfi_fail(EVF_EINVAL, "worker options version %u is not supported",
		                 opts->version);
	if (!(w = calloc(1, sizeof *w)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	w->db = db;
	if (opts)
		w->o = *opts;
	else
		w->o = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	if (w->o.batch_size <= 0)
		w->o.batch_size = 100;
	if (w->o.batch_size > 10000) {
		evfi_fail(EVF_EINVAL, "batch size %d is too large (at most 10000)",
		          w->o.batch_size);
		free(w);
		return EVF_EINVAL;
	}
	if (w->o.limit < 0 || w->o.older_than_ms < 0 || w->o.max_attempts < 0 ||
	    w->o.lock_timeout_ms < 0 || w->o.poll_interval_ms < 0) {
		free(w);
		return evfi_fail(EVF_EINVAL, "worker options must not be negative");
	}
	w->lock_ms = w->o.lock_timeout_ms ? w->o.lock_timeout_ms : db->opts.lock_timeout_ms;
	w->poll_ms = w->o.poll_interval_ms ? w->o.poll_interval_ms : db->opts.poll_interval_ms;
	w->rng = (uint64_t)evf_now() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)w;
	if (!w->rng)
		w->rng = 1;
	if (!w->o.name) {
		if (gethostname(host, sizeof host) != 0)
			strcpy(host, "evf");
		host[sizeof host - 1] = '\0';
	}
	/* pid and a random tag make the id unique per process, which the
	 * lease checks rely on. */
	evfi_buf b = { 0 };
	evfi_buf_printf(&b, "%s:%ld:%04x", w->o.name ? w->o.name : host, (long)getpid(),
	                (unsigned)(rng_next(w) & 0xffff));
	w->id = b.data;
	w->o.name = NULL;
	if (w->o.ntypes && w->o.types) {
		w->types = calloc(w->o.ntypes, sizeof *w->types);
		for (size_t i = 0; w->types && i < w->o.ntypes; i++)
			w->types[i] = evfi_strdup(w->o.types[i]);
		w->ntypes = w->types ? w->o.ntypes : 0;
	}
	w->o.types = NULL;
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
	evfi_handlers_free(w);
	evfi_plugins_close(w);
	for (size_t i = 0; i < w->ntypes; i++)
		free(w->types[i]);
	free(w->types);
	free(w->handler_types);
	free(w->leases);
	free(w->id);
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
	*out = w->counters;
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

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Run the handler of evs[i] (and, for a batch handler, every later event of
 * the same type not yet run).  Marks what ran in `ran`. */
static void run_handler(evf_worker *w, evf_event **evs, size_t n, size_t i,
                        evfi_result *res, bool *ran, bool *skipped, double *dur)
{
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
			evf_job job = { w, group, gres, g };
			clock_gettime(CLOCK_MONOTONIC, &t0);
			int rc = h->batch(&job, group, g, h->opts.user);
			double d = ms_since(&t0) / (double)g;
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
	evf_job job = { w, one, &res[i], 1 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = h->fn(&job, evs[i], h->opts.user);
	dur[i] = ms_since(&t0);
	if (rc && !res[i].failed) {
		res[i].failed = true;
		res[i].retryable = true;
	}
}

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
	if (o->ok || o->skipped) {
		if (w->o.on_processed)
			w->o.on_processed(o, w->o.callback_user);
	} else if (w->o.on_failed) {
		w->o.on_failed(o, w->o.callback_user);
	}
}

static int claim_batch(evf_worker *w, evf_event ***evs, size_t *n)
{
	const char *const *types;
	size_t ntypes;
	int rc = claim_types(w, &types, &ntypes);
	if (rc)
		return rc;
	int64_t want = w->o.batch_size;
	if (w->o.limit) {
		const evf_worker_counters *c = &w->counters;
		int64_t done = c->processed + c->failed + c->skipped + c->lost;
		if (done >= w->o.limit) {
			*evs = NULL;
			*n = 0;
			return 0;
		}
		if (w->o.limit - done < want)
			want = w->o.limit - done;
	}
	evf_claim c = {
		.worker_id = w->id, .types = types, .ntypes = ntypes, .limit = (int)want,
		.lock_ms = w->lock_ms, .only_errors = w->o.only_errors,
		.max_attempts = w->o.max_attempts,
		.older_than = w->o.older_than_ms ? evf_now() - w->o.older_than_ms * 1000 : 0,
	};
	evf_store *s = w->db->store;
	return s->ops->claim(s, &c, evs, n);
}

/* Sleep up to ms, waking early when asked to stop (or, where the store
 * can announce new work, when some arrives). */
static void idle(evf_worker *w, int64_t ms)
{
	evf_store *s = w->db->store;
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

/* Errors that pass: a lock held past the busy timeout, a server restart. */
static bool transient(int rc)
{
	return rc == EVF_EBUSY || rc == EVF_EUNAVAILABLE;
}

/* Say that the database is unreachable and when the worker tries again. */
static void log_retry(evf_worker *w, int64_t pause)
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
	if (b.data && !b.oom)
		w->o.log(w->o.log_user, b.data);
	evfi_buf_free(&b);
}

int evf_worker_step(evf_worker *w, size_t *out_n)
{
	evf_store *s = w->db->store;
	evf_event **evs = NULL;
	size_t n = 0;
	int rc;

	if (out_n)
		*out_n = 0;
	if ((rc = claim_batch(w, &evs, &n)))
		return rc;
	if (n == 0) {
		free(evs);
		if (s->ops->end_batch)
			s->ops->end_batch(s, true);
		return 0;
	}
	/* Basic tables cannot schedule a retry: every failure is final. */
	bool basic = s->ops->schema_extended(s) == 0;
	evfi_result *res = calloc(n, sizeof *res);
	bool *ran = calloc(n, sizeof *ran), *skipped = calloc(n, sizeof *skipped);
	bool *applied = calloc(n, sizeof *applied);
	double *dur = calloc(n, sizeof *dur);
	evf_lease *leases = calloc(n, sizeof *leases), *ok = calloc(n, sizeof *ok);
	evf_failure_rec *fails = calloc(n, sizeof *fails);
	size_t *fail_at = calloc(n, sizeof *fail_at);
	if (!res || !ran || !skipped || !applied || !dur || !leases || !ok || !fails || !fail_at) {
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		leases[i] = (evf_lease){ evs[i]->id, evs[i]->attempts };
	free(w->leases);
	w->leases = leases;
	w->nleases = n;
	leases = NULL;

	/* Run; on stop, what has not started goes back untouched. */
	size_t nrel = 0;
	evf_lease *rel = calloc(n, sizeof *rel);
	if (!rel) {
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
		goto out;
	}
	struct timespec renewed;
	clock_gettime(CLOCK_MONOTONIC, &renewed);
	for (size_t i = 0; i < n; i++) {
		if (ran[i])
			continue;
		if (w->stop) {
			rel[nrel++] = w->leases[i];
			ran[i] = false;
			continue;
		}
		/* Events waiting their turn must not lose their lease to a slow
		 * batch: past half the lease, renew the whole batch.  (A worker
		 * that hangs stops renewing, and its events come back.) */
		if (ms_since(&renewed) * 2 >= (double)w->lock_ms) {
			int erc = s->ops->extend(s, w->id, w->leases, w->nleases, w->lock_ms);
			if (erc && !transient(erc)) {
				rc = erc;
				free(rel);
				goto out;
			}
			clock_gettime(CLOCK_MONOTONIC, &renewed);
		}
		run_handler(w, evs, n, i, res, ran, skipped, dur);
	}
	if (nrel) {
		rc = s->ops->release(s, w->id, rel, nrel);
		if (rc) {
			free(rel);
			goto out;
		}
	}
	free(rel);

	/* Record: successes (and skips) in one statement, failures in one
	 * transaction. */
	size_t nok = 0, nfail = 0;
	evf_time now = evf_now();
	for (size_t i = 0; i < n; i++) {
		if (!ran[i])
			continue;
		if (!res[i].failed) {
			ok[nok++] = w->leases[i];
			continue;
		}
		int max = w->o.max_attempts ? w->o.max_attempts : evs[i]->max_attempts;
		if (max <= 0)
			max = w->db->opts.max_attempts;
		evf_failure_rec *f = &fails[nfail];
		f->lease = w->leases[i];
		f->message = res[i].message;
		f->code = res[i].code;
		f->dead = basic || !res[i].retryable || evs[i]->attempts >= max;
		if (!f->dead)
			f->retry_at = now + 1000 * evf_backoff_ms(evs[i]->attempts,
				w->db->opts.backoff_base_ms, w->db->opts.backoff_max_ms, rng_unit(w));
		fail_at[nfail++] = i;
	}
	bool *ok_applied = calloc(nok ? nok : 1, sizeof *ok_applied);
	bool *fail_applied = calloc(nfail ? nfail : 1, sizeof *fail_applied);
	if (!ok_applied || !fail_applied) {
		free(ok_applied);
		free(fail_applied);
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
		goto out;
	}
	/* Outcomes are worth waiting for: while the lease lasts a write after
	 * a reconnect still lands, and saves running the handlers again. */
	int64_t pause = 10, waited = 0;
	bool completed = false;
	for (;;) {
		rc = completed ? 0 : s->ops->complete(s, w->id, ok, nok, ok_applied);
		completed = completed || rc == 0;
		if (!rc)
			rc = s->ops->fail_batch(s, w->id, fails, nfail, fail_applied);
		if (!transient(rc) || waited >= w->lock_ms)
			break;
		log_retry(w, pause);
		idle(w, pause);
		waited += pause;
		pause = pause * 2 > 2000 ? 2000 : pause * 2;
	}
	for (size_t i = 0, k = 0; !rc && i < n; i++)
		if (ran[i] && !res[i].failed)
			applied[i] = ok_applied[k++];
	for (size_t k = 0; !rc && k < nfail; k++)
		applied[fail_at[k]] = fail_applied[k];
	free(ok_applied);
	free(fail_applied);
	if (rc)
		goto out;

	/* Outcomes are reported once they are durable. */
	if (s->ops->end_batch && (rc = s->ops->end_batch(s, true)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!ran[i])
			continue;
		evf_outcome o = {
			.event = evs[i], .ok = !res[i].failed, .skipped = skipped[i],
			.applied = applied[i], .error_code = res[i].code,
			.error_message = res[i].failed ? (res[i].message ? res[i].message : "handler failed") : NULL,
			.duration_ms = dur[i],
		};
		for (size_t k = 0; k < nfail; k++)
			if (fail_at[k] == i) {
				o.dead = fails[k].dead;
				o.retry_at = fails[k].retry_at;
			}
		report(w, &o);
	}
	if (out_n)
		*out_n = n;
out:
	if (rc && s->ops->end_batch)
		s->ops->end_batch(s, false); /* a basic batch stays unprocessed */
	for (size_t i = 0; i < n; i++) {
		if (res)
			evfi_result_clear(&res[i]);
		evf_event_free(evs[i]);
	}
	free(evs);
	free(res);
	free(ran);
	free(skipped);
	free(applied);
	free(dur);
	free(leases);
	free(ok);
	free(fails);
	free(fail_at);
	free(w->leases);
	w->leases = NULL;
	w->nleases = 0;
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

int evf_worker_run(evf_worker *w)
{
	int rc;
	if (w->o.requeue_errors && (rc = requeue_errors(w)))
		return evfi_wrap(rc, "requeueing errors");
	int64_t pause = 0;
	while (!w->stop) {
		size_t n;
		rc = evf_worker_step(w, &n);
		if (transient(rc)) {
			/* Wait it out, backing off to 5 s: whatever this worker had
			 * claimed comes back when its lease expires, and the lease
			 * check keeps a late write from doing harm. */
			pause = pause ? (pause * 2 > 5000 ? 5000 : pause * 2) : 10;
			log_retry(w, pause);
			idle(w, pause);
			continue;
		}
		if (rc)
			return rc;
		pause = 0;
		if (w->o.limit) {
			const evf_worker_counters *c = &w->counters;
			if (c->processed + c->failed + c->skipped + c->lost >= w->o.limit)
				break;
		}
		if (n == 0) {
			if (w->o.once)
				break;
			idle(w, w->poll_ms);
		}
	}
	return 0;
}
