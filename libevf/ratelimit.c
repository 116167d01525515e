/*
 * ratelimit.c - how fast events of some types may start.
 *
 * Each limit is a token bucket holding at most one second's worth of
 * events (at least one), full at the start.  A local limit's bucket is the
 * worker's own; a global one lives in a row of the evf_rate table, which
 * every worker takes tokens from in one short statement, so that all of
 * them together keep to it.  Limits are applied where the worker claims:
 * the types of an empty bucket are left out of the claim, and an event
 * claimed beyond what the buckets allow (a claim cannot count per type) is
 * released at once with its attempt given back: never run, never failed.
 */
#include "evf_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rule {
	char *pattern;
	double rate;        /* tokens per second */
	double burst;       /* bucket size */
	bool global;
	bool all;           /* the pattern "*" */
	double tokens;      /* local: the bucket; global: granted, not yet used */
	double last;        /* local: when the bucket was filled, monotonic s */
	double blocked;     /* global: no token before this, monotonic s */
} rule;

struct evfi_rate {
	rule *r;
	size_t n;
	bool set_up;        /* the global rows exist */
	const char **skip;  /* patterns left out of the next claim */
};

int evf_rate_parse(double *out, const char *text)
{
	char *end;
	double n, per;

	*out = 0;
	if (!text || !(*text >= '0' && *text <= '9') )
		return evfi_fail(EVF_EINVAL, "bad rate '%s' (use N/s, N/m or N/h)",
		                 text ? text : "");
	n = strtod(text, &end);
	if (*end != '/' || !isfinite(n) || n <= 0)
		return evfi_fail(EVF_EINVAL, "bad rate '%s' (use N/s, N/m or N/h, N > 0)", text);
	if (!strcmp(end, "/s"))
		per = 1;
	else if (!strcmp(end, "/m"))
		per = 60;
	else if (!strcmp(end, "/h"))
		per = 3600;
	else
		return evfi_fail(EVF_EINVAL, "bad rate '%s' (the unit is /s, /m or /h)", text);
	*out = n / per;
	return 0;
}

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* '*' matches any run of characters; nothing else is special. */
static bool glob_match(const char *p, const char *s)
{
	const char *star = NULL, *after = NULL;
	while (*s) {
		if (*p == '*') {
			star = p++;
			after = s;
		} else if (*p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++after;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return !*p;
}

void evfi_rate_free(evfi_rate *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->r[i].pattern);
	free(r->r);
	free(r->skip);
	free(r);
}

int evfi_rate_new(evfi_rate **out, const evf_rate_limit *limits, size_t n)
{
	evfi_rate *r;

	*out = NULL;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const evf_rate_limit *l = &limits[i];
		if (!l->type || !*l->type)
			return evfi_fail(EVF_EINVAL, "a rate limit without a type");
		if (!(l->per_second > 0) || !isfinite(l->per_second))
			return evfi_fail(EVF_EINVAL, "the rate limit of %s must be above 0", l->type);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(limits[k].type, l->type) && limits[k].global == l->global)
				return evfi_fail(EVF_EINVAL, "a second %srate limit for %s",
				                 l->global ? "global " : "", l->type);
	}
	if (!(r = calloc(1, sizeof *r)) || !(r->r = calloc(n, sizeof *r->r)) ||
	    !(r->skip = calloc(n, sizeof *r->skip))) {
		evfi_rate_free(r);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	double now = mono_s();
	for (size_t i = 0; i < n; i++) {
		rule *u = &r->r[r->n];
		if (!(u->pattern = strdup(limits[i].type))) {
			evfi_rate_free(r);
			return evfi_fail(EVF_ENOMEM, "out of memory");
		}
		r->n++;
		u->rate = limits[i].per_second;
		u->burst = u->rate > 1 ? u->rate : 1;
		u->global = limits[i].global;
		u->all = !strcmp(u->pattern, "*");
		u->tokens = u->global ? 0 : u->burst;
		u->last = now;
	}
	*out = r;
	return 0;
}

static bool matches(const rule *u, const char *type)
{
	return u->all || glob_match(u->pattern, type);
}

/* Seconds until the rule has a token again; 0 when it has one now. */
static double closed_for(const rule *u, double now)
{
	if (u->tokens >= 1)
		return 0;
	if (u->global)
		return u->blocked > now ? u->blocked - now : 0;
	return (1 - u->tokens) / u->rate;
}

/* Ask the database for up to `want` more tokens of a global rule. */
static int take(rule *u, evf_store *s, int64_t want, double now)
{
	int64_t got = 0;
	double left = 0;
	if (want <= 0)
		return 0;
	int rc = s->ops->rate_take(s, u->pattern, u->rate, u->burst, want, &got, &left);
	if (rc)
		return rc;
	u->tokens += (double)got;
	if (got < want)
		u->blocked = now + (1 - left) / u->rate;
	return 0;
}

static void note_wait(int64_t *wait_ms, double seconds)
{
	int64_t ms = (int64_t)ceil(seconds * 1000);
	if (ms < 1)
		ms = 1;
	if (!*wait_ms || ms < *wait_ms)
		*wait_ms = ms;
}

int evfi_rate_before(evfi_rate *r, evf_store *s, int64_t *want,
                     const char *const **skip, size_t *nskip, int64_t *wait_ms)
{
	double now = mono_s();
	size_t k = 0;
	int rc;

	*skip = r->skip;
	*nskip = 0;
	*wait_ms = 0;
	if (!s->ops->rate_take)
		return evfi_fail(EVF_EINVAL, "this backend has no rate limits");
	if (!r->set_up) {
		for (size_t i = 0; i < r->n; i++)
			if (r->r[i].global && (rc = s->ops->rate_setup(s, r->r[i].pattern, r->r[i].burst)))
				return rc;
		r->set_up = true;
	}
	for (size_t i = 0; i < r->n; i++) {
		rule *u = &r->r[i];
		if (!u->global) {
			u->tokens += (now - u->last) * u->rate;
			if (u->tokens > u->burst)
				u->tokens = u->burst;
			u->last = now;
		}
		if (u->all && u->global && u->tokens < (double)*want && closed_for(u, now) == 0 &&
		    (rc = take(u, s, *want - (int64_t)u->tokens, now)))
			return rc;
		double wait = closed_for(u, now);
		if (wait > 0) {
			note_wait(wait_ms, wait);
			if (u->all)
				*want = 0;
			else
				r->skip[k++] = u->pattern;
		} else if (u->all && u->tokens < (double)*want) {
			*want = (int64_t)u->tokens;
		}
	}
	*nskip = k;
	return 0;
}

int evfi_rate_admit(evfi_rate *r, evf_store *s, const char *worker_id,
                    evf_event **evs, size_t *n, int64_t *wait_ms)
{
	double now = mono_s();
	int rc;

	/* what the global limits must grant this claim */
	for (size_t i = 0; i < r->n; i++) {
		rule *u = &r->r[i];
		if (!u->global || u->all)
			continue;
		int64_t m = 0;
		for (size_t e = 0; e < *n; e++)
			m += matches(u, evs[e]->type);
		if (m > (int64_t)u->tokens && (rc = take(u, s, m - (int64_t)u->tokens, now))) {
			/* give the whole claim back rather than hold it unrun */
			evf_lease *l = calloc(*n ? *n : 1, sizeof *l);
			for (size_t e = 0; l && e < *n; e++)
				l[e] = (evf_lease){ .id = evs[e]->id, .attempts = evs[e]->attempts };
			if (l)
				s->ops->release(s, worker_id, l, *n);
			free(l);
			for (size_t e = 0; e < *n; e++)
				evf_event_free(evs[e]);
			*n = 0;
			return rc;
		}
	}
	evf_lease *back = calloc(*n ? *n : 1, sizeof *back);
	size_t nback = 0, kept = 0;
	if (!back)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	for (size_t e = 0; e < *n; e++) {
		bool ok = true;
		for (size_t i = 0; i < r->n && ok; i++)
			if (matches(&r->r[i], evs[e]->type) && r->r[i].tokens < 1)
				ok = false;
		if (ok) {
			for (size_t i = 0; i < r->n; i++)
				if (matches(&r->r[i], evs[e]->type))
					r->r[i].tokens -= 1;
			evs[kept++] = evs[e];
			continue;
		}
		back[nback++] = (evf_lease){ .id = evs[e]->id, .attempts = evs[e]->attempts };
		evf_event_free(evs[e]);
	}
	*n = kept;
	/* a release that fails leaves them to their lease: they come back
	 * when it expires, that attempt counted */
	if (nback)
		s->ops->release(s, worker_id, back, nback);
	free(back);
	for (size_t i = 0; i < r->n; i++) {
		double wait = closed_for(&r->r[i], now);
		if (wait > 0)
			note_wait(wait_ms, wait);
	}
	return 0;
}
