/* event.c - event records: copy, free, JSON form, JSON validation. */
#include "evf_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void evfi_event_clear(evf_event *ev)
{
	free(ev->type);
	free(ev->parameters);
	free(ev->error_message);
	free(ev->error_code);
	free(ev->idempotency_key);
	free(ev->correlation_id);
	free(ev->locked_by);
	memset(ev, 0, sizeof *ev);
}

void evf_event_free(evf_event *ev)
{
	if (!ev)
		return;
	evfi_event_clear(ev);
	free(ev);
}

evf_event *evfi_event_dup(const evf_event *src)
{
	evf_event *ev = malloc(sizeof *ev);
	if (!ev)
		return NULL;
	*ev = *src;
	ev->type = evfi_strdup(src->type);
	ev->parameters = evfi_strdup(src->parameters);
	ev->error_message = evfi_strdup(src->error_message);
	ev->error_code = evfi_strdup(src->error_code);
	ev->idempotency_key = evfi_strdup(src->idempotency_key);
	ev->correlation_id = evfi_strdup(src->correlation_id);
	ev->locked_by = evfi_strdup(src->locked_by);
	if ((src->type && !ev->type) || (src->parameters && !ev->parameters) ||
	    (src->error_message && !ev->error_message) ||
	    (src->error_code && !ev->error_code) ||
	    (src->idempotency_key && !ev->idempotency_key) ||
	    (src->correlation_id && !ev->correlation_id) ||
	    (src->locked_by && !ev->locked_by)) {
		evf_event_free(ev);
		return NULL;
	}
	return ev;
}

int evfi_json_validate(const char *text)
{
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(text, &end, true);
	if (!j) {
		size_t off = end ? (size_t)(end - text) : 0;
		return evfi_fail(EVF_EINVAL, "invalid JSON parameters near offset %zu", off);
	}
	cJSON_Delete(j);
	return 0;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

static void add_time(cJSON *o, const char *k, evf_time t)
{
	char buf[40];
	if (t)
		cJSON_AddStringToObject(o, k, evf_time_format(buf, sizeof buf, t));
	else
		cJSON_AddNullToObject(o, k);
}

struct cJSON *evfi_event_columns_json(const evf_event *ev)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)ev->id);
	add_str(o, "type", ev->type);
	add_time(o, "date", ev->date);
	cJSON_AddBoolToObject(o, "processed", ev->processed);
	cJSON_AddBoolToObject(o, "error", ev->error);
	add_str(o, "error_message", ev->error_message);
	add_str(o, "idempotency_key", ev->idempotency_key);
	add_str(o, "correlation_id", ev->correlation_id);
	cJSON_AddNumberToObject(o, "priority", ev->priority);
	add_time(o, "not_before", ev->not_before);
	cJSON_AddNumberToObject(o, "attempts", ev->attempts);
	cJSON_AddNumberToObject(o, "max_attempts", ev->max_attempts);
	add_time(o, "last_error_at", ev->last_error_at);
	add_time(o, "processed_at", ev->processed_at);
	add_str(o, "error_code", ev->error_code);
	cJSON_AddBoolToObject(o, "dead", ev->dead);
	add_str(o, "locked_by", ev->locked_by);
	add_time(o, "locked_until", ev->locked_until);
	cJSON_AddStringToObject(o, "state", evf_state_name(ev->state));
	return o;
}

char *evf_event_to_json(const evf_event *ev, bool pretty)
{
	cJSON *o = evfi_event_columns_json(ev);
	if (!o)
		return NULL;
	cJSON *params = ev->parameters ? cJSON_Parse(ev->parameters) : NULL;
	if (params)
		cJSON_AddItemToObject(o, "parameters", params);
	else
		add_str(o, "parameters", ev->parameters); /* keep what is there */
	char *s = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}
