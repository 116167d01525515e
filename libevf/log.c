/* log.c - one line per outcome, logfmt or JSON. */
#include "evf_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *outcome_name(const evf_outcome *o)
{
	if (!o->applied)
		return "lease_lost";
	if (o->skipped)
		return "skipped";
	if (o->ok)
		return "processed";
	return o->dead ? "dead" : "retry";
}

/* logfmt values need quotes when they hold spaces, quotes or '='. */
static void logfmt_value(evfi_buf *b, const char *v)
{
	bool quote = !*v || strpbrk(v, " \t\"=\\\n") != NULL;
	if (!quote) {
		evfi_buf_puts(b, v);
		return;
	}
	evfi_buf_add(b, "\"", 1);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			evfi_buf_add(b, "\\", 1);
		if (*p == '\n') {
			evfi_buf_puts(b, "\\n");
			continue;
		}
		evfi_buf_add(b, p, 1);
	}
	evfi_buf_add(b, "\"", 1);
}

static void logfmt_pair(evfi_buf *b, const char *k, const char *v)
{
	if (!v)
		return;
	evfi_buf_printf(b, " %s=", k);
	logfmt_value(b, v);
}

char *evfi_log_line(evf_log_format fmt, const char *worker_id, const evf_outcome *o)
{
	const evf_event *ev = o->event;
	char ts[40], retry[40];
	const char *level = o->ok || o->skipped ? "info" : (o->dead || !o->applied) ? "error" : "warn";

	evf_time_format(ts, sizeof ts, evf_now());
	if (o->retry_at)
		evf_time_format(retry, sizeof retry, o->retry_at);
	if (fmt == EVF_LOG_JSON) {
		cJSON *j = cJSON_CreateObject();
		if (!j)
			return NULL;
		cJSON_AddStringToObject(j, "ts", ts);
		cJSON_AddStringToObject(j, "level", level);
		cJSON_AddStringToObject(j, "msg", outcome_name(o));
		cJSON_AddNumberToObject(j, "id", (double)ev->id);
		cJSON_AddStringToObject(j, "type", ev->type);
		cJSON_AddNumberToObject(j, "attempts", ev->attempts);
		if (ev->correlation_id)
			cJSON_AddStringToObject(j, "correlation_id", ev->correlation_id);
		cJSON_AddStringToObject(j, "worker", worker_id);
		cJSON_AddNumberToObject(j, "duration_ms", o->duration_ms);
		if (o->error_code)
			cJSON_AddStringToObject(j, "error_code", o->error_code);
		if (o->error_message)
			cJSON_AddStringToObject(j, "error", o->error_message);
		if (o->retry_at)
			cJSON_AddStringToObject(j, "retry_at", retry);
		char *s = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		return s;
	}
	evfi_buf b = { 0 };
	evfi_buf_puts(&b, "ts=");
	logfmt_value(&b, ts);
	evfi_buf_printf(&b, " level=%s msg=%s id=%lld", level, outcome_name(o), (long long)ev->id);
	logfmt_pair(&b, "type", ev->type);
	evfi_buf_printf(&b, " attempts=%d", ev->attempts);
	logfmt_pair(&b, "correlation_id", ev->correlation_id);
	logfmt_pair(&b, "worker", worker_id);
	evfi_buf_printf(&b, " duration_ms=%.3f", o->duration_ms);
	logfmt_pair(&b, "error_code", o->error_code);
	logfmt_pair(&b, "error", o->error_message);
	if (o->retry_at)
		logfmt_pair(&b, "retry_at", retry);
	if (b.oom) {
		evfi_buf_free(&b);
		return NULL;
	}
	return b.data;
}

char *evfi_log_warning(evf_log_format fmt, const char *worker_id, const char *msg,
                       const char *error)
{
	char ts[40];

	evf_time_format(ts, sizeof ts, evf_now());
	if (fmt == EVF_LOG_JSON) {
		cJSON *j = cJSON_CreateObject();
		if (!j)
			return NULL;
		cJSON_AddStringToObject(j, "ts", ts);
		cJSON_AddStringToObject(j, "level", "warn");
		cJSON_AddStringToObject(j, "msg", msg);
		cJSON_AddStringToObject(j, "worker", worker_id);
		if (error)
			cJSON_AddStringToObject(j, "error", error);
		char *s = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		return s;
	}
	evfi_buf b = { 0 };
	evfi_buf_puts(&b, "ts=");
	logfmt_value(&b, ts);
	evfi_buf_puts(&b, " level=warn");
	logfmt_pair(&b, "msg", msg);
	logfmt_pair(&b, "worker", worker_id);
	logfmt_pair(&b, "error", error);
	if (b.oom) {
		evfi_buf_free(&b);
		return NULL;
	}
	return b.data;
}
