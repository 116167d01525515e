/*
 * pool.c - a worker with concurrency: one claimer feeding N handler
 * threads.
 *
 * The thread that called evf_worker_run claims on the worker's own
 * connection and keeps at most twice as many events claimed as there are
 * threads: enough that a thread that finishes finds the next event
 * waiting, few enough that no event sits behind a slow handler while
 * another worker could run it.  Each handler thread has a connection of
 * its own (one evf_db per thread is the library's rule) on which it runs,
 * records and reports what it takes from the queue, exactly as the
 * single-threaded worker does a batch.  The claimer renews the leases of
 * queued events; on stop it releases them, their attempt not counted.
 */
#include "evf_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One event, or the events of one batch handler from one claim. */
typedef struct item {
	evf_event **evs;
	size_t n;
	struct timespec renewed;
} item;

typedef struct pool pool;

typedef struct runner {
	pool *p;
	evfi_lane lane;
	pthread_t thread;
	bool started;
} runner;

struct pool {
	evf_worker *w;
	pthread_mutex_t mu;
	pthread_cond_t changed;  /* the queue or the number held changed */
	item *q;                 /* a ring of cap items */
	size_t cap, head, count;
	int64_t held;            /* claimed and not yet finished (or released) */
	bool closing;            /* nothing more will be queued */
	int rc;                  /* the first error, which stops everything */
	char msg[512];
	runner *runners;
	size_t nrunners;
};

/* Wait on `changed` for at most 50 ms: a signal handler can only set the
 * stop flag, never wake a condition variable, so waiters look again. */
static void wait_a_little(pool *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += 50 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&p->changed, &p->mu, &ts);
}

/* Remember the first error (its message is thread-local) and stop. */
static void pool_fail(pool *p, int rc)
{
	pthread_mutex_lock(&p->mu);
	if (!p->rc) {
		p->rc = rc;
		snprintf(p->msg, sizeof p->msg, "%s", evf_error_last());
	}
	p->w->stop = 1;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
}

static void free_events(evf_event **evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		evf_event_free(evs[i]);
	free(evs);
}

/* Give claimed events back untouched (their attempt not counted). */
static void release_events(pool *p, evf_event **evs, size_t n)
{
	evf_worker *w = p->w;
	evf_store *s = w->lane.db->store;
	evf_lease *l = calloc(n ? n : 1, sizeof *l);
	if (l) {
		for (size_t i = 0; i < n; i++)
			l[i] = (evf_lease){ .id = evs[i]->id, .attempts = evs[i]->attempts };
		/* a failure leaves them to come back when the lease expires */
		s->ops->release(s, w->id, l, n);
		free(l);
	}
	free_events(evs, n);
}

static void *run_thread(void *arg)
{
	runner *r = arg;
	pool *p = r->p;
	evf_worker *w = p->w;
	int64_t pause = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->count && !p->closing && !w->stop)
			wait_a_little(p);
		if (w->stop || !p->count)
			break; /* the claimer releases what is still queued */
		item it = p->q[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->mu);

		int rc = evfi_batch_process(&r->lane, it.evs, it.n);
		if (evfi_transient(rc)) {
			/* its outcomes could not be written while the lease
			 * lasted: the events come back, and this thread waits
			 * for the database as a single worker does */
			evfi_back_off(&r->lane, &pause);
		} else {
			pause = 0;
			if (rc)
				pool_fail(p, rc);
		}
		pthread_mutex_lock(&p->mu);
		p->held -= (int64_t)it.n;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Queue a claimed batch: one item per event, except that the events of a
 * batch handler stay together as the single-threaded worker keeps them.
 * Takes evs. */
static int enqueue(pool *p, evf_event **evs, size_t n)
{
	evf_worker *w = p->w;
	item *items = calloc(n, sizeof *items);
	bool *taken = calloc(n, sizeof *taken);
	size_t ni = 0;
	struct timespec now;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; items && taken && i < n && !rc; i++) {
		if (taken[i])
			continue;
		const evfi_handler *h = evfi_handler_find(w, evs[i]->type);
		item *it = &items[ni];
		if (!(it->evs = calloc(n - i, sizeof *it->evs))) {
			rc = evfi_fail(EVF_ENOMEM, "out of memory");
			break;
		}
		for (size_t j = i; j < n; j++)
			if (!taken[j] && (j == i || (h && h->batch && evfi_handler_find(w, evs[j]->type) == h))) {
				it->evs[it->n++] = evs[j];
				taken[j] = true;
			}
		it->renewed = now;
		ni++;
	}
	if (!items || !taken || rc) {
		for (size_t i = 0; items && i < ni; i++)
			free(items[i].evs);
		free(items);
		free(taken);
		release_events(p, evs, n);
		return rc ? rc : evfi_fail(EVF_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&p->mu);
	/* held never passes cap, so neither do the items */
	for (size_t i = 0; i < ni; i++)
		p->q[(p->head + p->count++) % p->cap] = items[i];
	p->held += (int64_t)n;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
	free(items);
	free(taken);
	free(evs);
	return 0;
}

/* Past half the lease, renew the leases of the events still queued, as
 * the single-threaded worker renews the rest of its batch. */
static void renew_queued(pool *p)
{
	evf_worker *w = p->w;
	evf_lease *l = NULL;
	size_t n = 0, cap = 0;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->count; i++) {
		item *it = &p->q[(p->head + i) % p->cap];
		if (evfi_ms_since(&it->renewed) * 2 < (double)w->lock_ms)
			continue;
		if (n + it->n > cap) {
			size_t nc = (n + it->n) * 2;
			evf_lease *nl = realloc(l, nc * sizeof *nl);
			if (!nl)
				break;
			l = nl;
			cap = nc;
		}
		for (size_t k = 0; k < it->n; k++)
			l[n++] = (evf_lease){ .id = it->evs[k]->id, .attempts = it->evs[k]->attempts };
		it->renewed = now;
	}
	pthread_mutex_unlock(&p->mu);
	if (n) {
		evf_store *s = w->lane.db->store;
		/* a failed renewal is not fatal: the lease check decides later */
		if (s->ops->extend(s, w->id, l, n, w->lock_ms))
			evfi_log_warn(w, "lease renewal failed");
	}
	free(l);
}

/* How many more events may be claimed now; -1 when the limit is reached
 * and nothing is in flight any more. */
static int64_t room(pool *p)
{
	evf_worker *w = p->w;
	int64_t r = (int64_t)p->cap - p->held;
	if (w->o.limit) {
		int64_t left = w->o.limit - evfi_worker_outcomes(w) - p->held;
		if (left <= 0 && p->held == 0)
			return -1;
		if (left < r)
			r = left;
	}
	return r;
}

/* The claimer's loop, on the caller's thread and connection. */
static void claim_loop(pool *p)
{
	evf_worker *w = p->w;
	int64_t pause = 0;

	for (;;) {
		renew_queued(p);
		pthread_mutex_lock(&p->mu);
		int64_t r = room(p);
		if (w->stop || p->rc || r < 0) {
			pthread_mutex_unlock(&p->mu);
			return;
		}
		if (r == 0) {
			wait_a_little(p);
			pthread_mutex_unlock(&p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);

		evf_event **evs;
		size_t n;
		int64_t wait;
		int rc = evfi_worker_claim(&w->lane, r < w->o.batch_size ? r : w->o.batch_size,
		                           &evs, &n, &wait);
		if (evfi_transient(rc)) {
			evfi_back_off(&w->lane, &pause);
			continue;
		}
		pause = 0;
		if (rc) {
			pool_fail(p, rc);
			return;
		}
		if (n == 0) {
			free(evs);
			/* a rate limit that held events back is not "nothing ready" */
			if (w->o.once && !wait)
				return; /* the threads finish what is queued */
			evfi_worker_rest(&w->lane, wait);
			continue;
		}
		if ((rc = enqueue(p, evs, n))) {
			pool_fail(p, rc);
			return;
		}
	}
}

/* Threads of the library take no asynchronous signals, so that a signal
 * for the process reaches a thread of the application (the one in
 * evf_worker_run, unless it blocks them), whose handler can stop us. */
static int start_runner(runner *r)
{
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&r->thread, NULL, run_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return evfi_fail(EVF_ERROR, "cannot start a worker thread: %s", strerror(e));
	r->started = true;
	return 0;
}

static int pool_init(pool *p, evf_worker *w)
{
	pthread_condattr_t ca;

	memset(p, 0, sizeof *p);
	p->w = w;
	p->nrunners = (size_t)w->o.concurrency;
	p->cap = 2 * p->nrunners;
	p->q = calloc(p->cap, sizeof *p->q);
	p->runners = calloc(p->nrunners, sizeof *p->runners);
	if (!p->q || !p->runners) {
		free(p->q);
		free(p->runners);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->changed, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

/* Join the threads, release what is still queued, close the connections. */
static void pool_finish(pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->closing = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nrunners; i++)
		if (p->runners[i].started)
			pthread_join(p->runners[i].thread, NULL);
	while (p->count) {
		item *it = &p->q[p->head];
		release_events(p, it->evs, it->n);
		p->head = (p->head + 1) % p->cap;
		p->count--;
	}
	for (size_t i = 0; i < p->nrunners; i++)
		evf_close(p->runners[i].lane.db);
	free(p->runners);
	free(p->q);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->mu);
}

int evfi_pool_run(evf_worker *w)
{
	evf_store *s = w->lane.db->store;
	pool p;
	int rc = s->ops->schema_extended(s);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return evfi_fail(EVF_EBASIC, "concurrency needs the lease columns, which table "
		                 "%s lacks (evfctl migrate adds them)", w->lane.db->table);
	if (!strcmp(evf_db_backend(w->lane.db), "sqlite") && !evfi_sqlite_threadsafe())
		return evfi_fail(EVF_EINVAL, "concurrency needs a thread-safe SQLite library, "
		                 "and this one was built without threads");
	if ((rc = pool_init(&p, w)))
		return rc;
	for (size_t i = 0; i < p.nrunners && !rc; i++) {
		runner *r = &p.runners[i];
		r->p = &p;
		r->lane.w = w;
		r->lane.rng = w->lane.rng ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
		if (!r->lane.rng)
			r->lane.rng = 1;
		if ((rc = evfi_db_reopen(w->lane.db, &r->lane.db)) == 0)
			rc = start_runner(r);
	}
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", evf_error_last());
		w->stop = 1; /* what has started ends at once */
		pool_finish(&p);
		w->stop = 0;
		return evfi_fail(rc, "%s", msg);
	}
	claim_loop(&p);
	pool_finish(&p);
	if (p.rc)
		return evfi_fail(p.rc, "%s", p.msg);
	return 0;
}
