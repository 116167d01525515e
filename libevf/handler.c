/* handler.c - the handler registry and what handlers may call. */
#include "evf_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_handler(evf_worker *w, const char *type, evf_handler_fn fn,
                       evf_batch_handler_fn batch, const evf_handler_options *opts)
{
	if (!type || !*type)
		return evfi_fail(EVF_EINVAL, "handler type is empty");
	if (!fn && !batch)
		return evfi_fail(EVF_EINVAL, "handler for %s has no function", type);
	if (opts && opts->version != EVF_HANDLER_OPTIONS_VERSION)
		return evfi_fail(EVF_EINVAL, "handler options version %u is not supported",
		                 opts->version);
	for (size_t i = 0; i < w->nhandlers; i++)
		if (!strcmp(w->handlers[i].type, type))
			return evfi_fail(EVF_EINVAL, "a handler for %s is already registered", type);
	evfi_handler *h = realloc(w->handlers, (w->nhandlers + 1) * sizeof *h);
	if (!h)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	w->handlers = h;
	h = &w->handlers[w->nhandlers];
	memset(h, 0, sizeof *h);
	if (!(h->type = strdup(type)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	h->fn = fn;
	h->batch = batch;
	if (opts)
		h->opts = *opts;
	else
		h->opts = (evf_handler_options)EVF_HANDLER_OPTIONS_INIT;
	w->nhandlers++;
	return 0;
}

int evf_register(evf_worker *w, const char *type, evf_handler_fn fn,
                 const evf_handler_options *opts)
{
	if (!fn)
		return evfi_fail(EVF_EINVAL, "handler for %s has no function", type ? type : "?");
	return add_handler(w, type, fn, NULL, opts);
}

int evf_register_batch(evf_worker *w, const char *type, evf_batch_handler_fn fn,
                       const evf_handler_options *opts)
{
	if (!fn)
		return evfi_fail(EVF_EINVAL, "batch handler for %s has no function", type ? type : "?");
	return add_handler(w, type, NULL, fn, opts);
}

const evfi_handler *evfi_handler_find(const evf_worker *w, const char *type)
{
	const evfi_handler *any = NULL;
	for (size_t i = 0; i < w->nhandlers; i++) {
		if (!strcmp(w->handlers[i].type, type))
			return &w->handlers[i];
		if (!strcmp(w->handlers[i].type, "*"))
			any = &w->handlers[i];
	}
	return any;
}

void evfi_handlers_free(evf_worker *w)
{
	for (size_t i = 0; i < w->nhandlers; i++) {
		evfi_handler *h = &w->handlers[i];
		if (h->opts.user_free)
			h->opts.user_free(h->opts.user);
		free(h->type);
	}
	free(w->handlers);
	w->handlers = NULL;
	w->nhandlers = 0;
}

void evfi_result_clear(evfi_result *r)
{
	free(r->code);
	free(r->message);
	memset(r, 0, sizeof *r);
}

int evf_job_fail(evf_job *job, size_t index, const char *code, bool retryable,
                 const char *fmt, ...)
{
	if (!job || index >= job->n)
		return evfi_fail(EVF_EINVAL, "evf_job_fail: index %zu out of range", index);
	evfi_result *r = &job->res[index];
	evfi_result_clear(r);
	r->failed = true;
	r->retryable = retryable;
	r->code = evfi_strdup(code);
	if (fmt) {
		va_list ap;
		char buf[4096];
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		r->message = strdup(buf);
	}
	return 0;
}

int evf_job_extend(evf_job *job, int64_t ms)
{
	evfi_lane *l = job->lane;
	evf_store *s = l->db->store;
	if (ms <= 0)
		return evfi_fail(EVF_EINVAL, "lease extension must be positive");
	return s->ops->extend(s, l->w->id, l->leases, l->nleases, ms);
}

int evf_job_emit(evf_job *job, const char *type, const char *parameters,
                 const evf_emit_options *opts, evf_emit_result *out)
{
	evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
	if (opts)
		o = *opts;
	if (!o.correlation_id && job->n > 0)
		o.correlation_id = job->evs[0]->correlation_id;
	return evf_emit(job->lane->db, type, parameters, &o, out);
}

evf_db *evf_job_db(evf_job *job)
{
	return job->lane->db; /* the connection of the handler's thread */
}

const char *evf_job_worker_id(const evf_job *job)
{
	return job->lane->w->id;
}
