/*
 * event_line.c - an event as one line of an archive and back.
 *
 * The parameters are copied as the text the database holds, not through
 * cJSON's doubles, so that an integer beyond 2^53 or a long decimal comes
 * back with every digit.  Reading finds the raw text of the "parameters"
 * member with a small scanner over the (already validated) line.
 */
#include "evf_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int evfi_event_line(evfi_buf *b, const evf_event *ev)
{
	cJSON *o = evfi_event_columns_json(ev);
	if (!o)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	/* copied raw only when strictly one JSON value on one line: trailing
	 * junk (possible in an old SQLite row) or a line break (cJSON lets
	 * one stand inside a string) go under parameters_text, exactly */
	cJSON *check = ev->parameters ? cJSON_ParseWithOpts(ev->parameters, NULL, true) : NULL;
	bool raw = check != NULL && !strpbrk(ev->parameters, "\r\n");
	cJSON_Delete(check);
	if (!raw) /* not JSON (a legacy row): kept as text, under its own name */
		cJSON_AddStringToObject(o, "parameters_text", ev->parameters ? ev->parameters : "");
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	if (raw) {
		evfi_buf_add(b, text, strlen(text) - 1);
		evfi_buf_puts(b, ",\"parameters\":");
		evfi_buf_puts(b, ev->parameters);
		evfi_buf_puts(b, "}");
	} else {
		evfi_buf_puts(b, text);
	}
	evfi_buf_puts(b, "\n");
	free(text);
	return b->oom ? evfi_fail(EVF_ENOMEM, "out of memory") : 0;
}

/* ---- reading ---------------------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;
	for (; p < end; p++) {
		if (*p == '"') {
			p = skip_string(p, end) - 1;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\t')) {
			return p;
		}
	}
	return end;
}

/* The raw text of top-level member `key` of a valid JSON object. */
static bool member_span(const char *p, const char *end, const char *key,
                        const char **vstart, size_t *vlen)
{
	size_t klen = strlen(key);
	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return false;
	p++;
	while ((p = skip_ws(p, end)) < end && *p == '"') {
		const char *k = p + 1, *kend = skip_string(p, end);
		bool match = (size_t)(kend - 1 - k) == klen && !memcmp(k, key, klen);
		p = skip_ws(kend, end);
		if (p >= end || *p != ':')
			return false;
		p = skip_ws(p + 1, end);
		const char *v = p;
		p = skip_value(p, end);
		if (match) {
			*vstart = v;
			*vlen = (size_t)(p - v);
			return true;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p++;
	}
	return false;
}

static int bad(size_t lineno, const char *what)
{
	return evfi_fail(EVF_EINVAL, "line %zu: %s", lineno, what);
}

static int get_str(const cJSON *o, const char *k, char **out, size_t lineno)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return evfi_fail(EVF_EINVAL, "line %zu: %s is not a string", lineno, k);
	if (!(*out = strdup(v->valuestring)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	return 0;
}

static int get_time(const cJSON *o, const char *k, evf_time *out, size_t lineno)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || evf_time_parse(out, v->valuestring))
		return evfi_fail(EVF_EINVAL, "line %zu: %s is not a time", lineno, k);
	return 0;
}

static int get_int(const cJSON *o, const char *k, int *out, size_t lineno)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble)
		return evfi_fail(EVF_EINVAL, "line %zu: %s is not an integer", lineno, k);
	*out = (int)v->valuedouble;
	return 0;
}

static int get_bool(const cJSON *o, const char *k, bool *out, size_t lineno)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v))
		return evfi_fail(EVF_EINVAL, "line %zu: %s is not true or false", lineno, k);
	*out = cJSON_IsTrue(v);
	return 0;
}

int evfi_event_from_line(evf_event *ev, const char *line, size_t len, size_t lineno)
{
	memset(ev, 0, sizeof *ev);
	cJSON *o = cJSON_ParseWithLength(line, len);
	const cJSON *id;
	const char *pstart;
	size_t plen;
	int rc;
	if (!o || !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return bad(lineno, "not a JSON object");
	}
	id = cJSON_GetObjectItemCaseSensitive(o, "id");
	if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > 9007199254740991.0 ||
	    id->valuedouble != (double)(int64_t)id->valuedouble) {
		rc = bad(lineno, "id must be a positive integer");
		goto out;
	}
	ev->id = (int64_t)id->valuedouble;
	if ((rc = get_str(o, "type", &ev->type, lineno)) ||
	    (rc = get_time(o, "date", &ev->date, lineno)) ||
	    (rc = get_bool(o, "processed", &ev->processed, lineno)) ||
	    (rc = get_bool(o, "error", &ev->error, lineno)) ||
	    (rc = get_str(o, "error_message", &ev->error_message, lineno)) ||
	    (rc = get_str(o, "idempotency_key", &ev->idempotency_key, lineno)) ||
	    (rc = get_str(o, "correlation_id", &ev->correlation_id, lineno)) ||
	    (rc = get_int(o, "priority", &ev->priority, lineno)) ||
	    (rc = get_time(o, "not_before", &ev->not_before, lineno)) ||
	    (rc = get_int(o, "attempts", &ev->attempts, lineno)) ||
	    (rc = get_int(o, "max_attempts", &ev->max_attempts, lineno)) ||
	    (rc = get_time(o, "last_error_at", &ev->last_error_at, lineno)) ||
	    (rc = get_time(o, "processed_at", &ev->processed_at, lineno)) ||
	    (rc = get_str(o, "error_code", &ev->error_code, lineno)) ||
	    (rc = get_bool(o, "dead", &ev->dead, lineno)) ||
	    (rc = get_str(o, "locked_by", &ev->locked_by, lineno)) ||
	    (rc = get_time(o, "locked_until", &ev->locked_until, lineno)))
		goto out;
	if (!ev->type || !*ev->type) {
		rc = bad(lineno, "type is missing");
		goto out;
	}
	if (!ev->date) {
		rc = bad(lineno, "date is missing");
		goto out;
	}
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "parameters");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "parameters_text");
	if (cJSON_IsString(text)) {
		ev->parameters = strdup(text->valuestring);
	} else if (!params) {
		ev->parameters = strdup("{}");
	} else if (member_span(line, line + len, "parameters", &pstart, &plen)) {
		ev->parameters = strndup(pstart, plen);
	} else {
		rc = bad(lineno, "cannot read the parameters");
		goto out;
	}
	if (!ev->parameters)
		rc = evfi_fail(EVF_ENOMEM, "out of memory");
out:
	cJSON_Delete(o);
	if (rc)
		evfi_event_clear(ev);
	return rc;
}
