/*
 * testplugin.c - handlers for the `evfctl process --plugin` tests.
 *
 *   t.ok      succeeds
 *   t.retry   fails, retryable, code E_RETRY
 *   t.fatal   fails, not retryable, code E_FATAL
 *   t.batch   batch handler: events with "fail":true fail (E_BATCH), and
 *             the message names the size of the batch
 *   t.when    succeeds; its when predicate skips "skip":true
 *   t.slow    sleeps parameters.ms milliseconds, extending its lease
 *   t.parent  emits a t.child follow-up
 *   t.child   succeeds
 *
 * The plugin parses parameters by hand so that it needs nothing but libevf.
 */
#include "evf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int evf_plugin_init(evf_worker *w);

/* Text after `"name":` (blanks skipped), or NULL. */
static const char *param_value(const evf_event *ev, const char *name)
{
	size_t len = strlen(name);
	const char *p = ev->parameters;

	while ((p = strchr(p, '"')) != NULL) {
		p++;
		if (strncmp(p, name, len) == 0 && p[len] == '"') {
			p += len + 1;
			while (*p == ' ' || *p == '\t' || *p == '\n')
				p++;
			if (*p != ':')
				continue;
			p++;
			while (*p == ' ' || *p == '\t' || *p == '\n')
				p++;
			return p;
		}
	}
	return NULL;
}

static bool param_true(const evf_event *ev, const char *name)
{
	const char *v = param_value(ev, name);

	return v != NULL && strncmp(v, "true", 4) == 0;
}

static int handle_ok(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	(void)user;
	return 0;
}

static int handle_retry(evf_job *job, const evf_event *ev, void *user)
{
	(void)user;
	evf_job_fail(job, 0, "E_RETRY", true, "t.retry asked to retry (attempt %d)",
	             ev->attempts);
	return 1;
}

static int handle_fatal(evf_job *job, const evf_event *ev, void *user)
{
	(void)ev;
	(void)user;
	evf_job_fail(job, 0, "E_FATAL", false, "t.fatal cannot succeed");
	return 1;
}

static int handle_batch(evf_job *job, const evf_event *const *evs, size_t n,
                        void *user)
{
	(void)user;
	for (size_t i = 0; i < n; i++) {
		if (param_true(evs[i], "fail"))
			evf_job_fail(job, i, "E_BATCH", true, "failed in a batch of %zu", n);
	}
	return 0;
}

static bool when_not_skipped(const evf_event *ev, void *user)
{
	(void)user;
	return !param_true(ev, "skip");
}

static int handle_slow(evf_job *job, const evf_event *ev, void *user)
{
	const char *v = param_value(ev, "ms");
	long ms = v != NULL ? strtol(v, NULL, 10) : 0;
	struct timespec tick = { 0, 50 * 1000000L };

	(void)user;
	for (long slept = 0; slept < ms; slept += 50) {
		/* A real long handler keeps its lease ahead of the work left;
		 * once a second is enough and spares the database. */
		if (slept % 1000 == 0 && evf_job_extend(job, ms - slept + 5000) < 0)
			return 1;
		nanosleep(&tick, NULL);
	}
	return 0;
}

static int handle_parent(evf_job *job, const evf_event *ev, void *user)
{
	(void)user;
	return evf_job_emit(job, "t.child", ev->parameters, NULL, NULL) < 0 ? 1 : 0;
}

int evf_plugin_init(evf_worker *w)
{
	evf_handler_options when = EVF_HANDLER_OPTIONS_INIT;

	when.when = when_not_skipped;
	if (evf_register(w, "t.ok", handle_ok, NULL) < 0 ||
	    evf_register(w, "t.retry", handle_retry, NULL) < 0 ||
	    evf_register(w, "t.fatal", handle_fatal, NULL) < 0 ||
	    evf_register_batch(w, "t.batch", handle_batch, NULL) < 0 ||
	    evf_register(w, "t.when", handle_ok, &when) < 0 ||
	    evf_register(w, "t.slow", handle_slow, NULL) < 0 ||
	    evf_register(w, "t.parent", handle_parent, NULL) < 0 ||
	    evf_register(w, "t.child", handle_ok, NULL) < 0)
		return -1;
	return 0;
}
