/*
 * filter.c - parse evf-top filter expressions into an evf_filter.
 *
 * The parse builds a fresh tui_filter and swaps it in only when the whole
 * expression is good, so a typo at the prompt never loses the filter the
 * user was looking at.
 */
#include "filter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tui_filter_init(tui_filter *tf)
{
	const evf_filter empty = EVF_FILTER_INIT;

	memset(tf, 0, sizeof *tf);
	tf->f = empty;
}

void tui_filter_free(tui_filter *tf)
{
	free(tf->expr);
	free(tf->type);
	free(tf->corr);
	free(tf->text);
	free(tf->ids);
	tui_filter_init(tf);
}

bool tui_filter_active(const tui_filter *tf)
{
	const evf_filter *f = &tf->f;

	return f->states || f->type || f->nids || f->since || f->until ||
	       f->errors || f->correlation_id || f->text;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) EVF_PRINTF(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Next word of *p into a fresh string (quotes removed); NULL at the end or
 * when a quote is left open (then *open_quote is set). */
static char *next_word(const char **p, bool *open_quote)
{
	const char *s = *p;
	size_t cap, n = 0;
	char *w;
	bool quoted = false;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	cap = strlen(s) + 1;
	if (!(w = malloc(cap)))
		return NULL;
	for (; *s && (quoted || (*s != ' ' && *s != '\t')); s++) {
		if (*s == '"')
			quoted = !quoted;
		else
			w[n++] = *s;
	}
	w[n] = '\0';
	*p = s;
	if (quoted) {
		*open_quote = true;
		free(w);
		return NULL;
	}
	return w;
}

/* A comma-separated list of positive ids. */
static int parse_ids(tui_filter *tf, const char *value, char *err, size_t errlen)
{
	size_t cap = 1;
	const char *s;

	for (s = value; *s; s++)
		cap += (*s == ',');
	if (!(tf->ids = calloc(cap, sizeof *tf->ids)))
		return fail(err, errlen, "out of memory");
	for (s = value;;) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (end == s || errno || v <= 0 || (*end && *end != ','))
			return fail(err, errlen, "bad id list '%s': want numbers like id:12,13", value);
		tf->ids[tf->nids++] = v;
		if (*end == '\0')
			break;
		s = end + 1;
	}
	tf->f.ids = tf->ids;
	tf->f.nids = tf->nids;
	return 0;
}

/* A duration means "that long before now"; otherwise a time. */
static int parse_when(evf_time *out, const char *name, const char *value,
                      evf_time now, char *err, size_t errlen)
{
	if (evf_when_parse(out, value, now) == 0)
		return 0;
	return fail(err, errlen, "bad %s value '%s': want a duration (1h) or a time", name, value);
}

static int set_string(char **field, const char *name, const char *value,
                      char *err, size_t errlen)
{
	if (*field)
		return fail(err, errlen, "%s: given twice", name);
	if (!(*field = strdup(value)))
		return fail(err, errlen, "out of memory");
	return 0;
}

static int apply_word(tui_filter *tf, const char *word, evf_time now,
                      char *err, size_t errlen)
{
	const char *colon = strchr(word, ':');
	const char *value;
	char name[16];
	size_t len;

	if (!colon)
		return fail(err, errlen, "'%s' is not QUALIFIER:VALUE (type: state: id: "
		            "corr: error: since: until:)", word);
	len = (size_t)(colon - word);
	if (len >= sizeof name)
		len = sizeof name - 1;
	memcpy(name, word, len);
	name[len] = '\0';
	value = colon + 1;
	/* error: alone means "rows with the error flag", so it may be empty */
	if (*value == '\0' && strcmp(name, "error") != 0)
		return fail(err, errlen, "%s: needs a value", name);

	if (strcmp(name, "type") == 0) {
		if (set_string(&tf->type, name, value, err, errlen))
			return -1;
		tf->f.type = tf->type;
	} else if (strcmp(name, "state") == 0) {
		if (tf->f.states)
			return fail(err, errlen, "state: given twice (use a list: state:failed,dead)");
		if (evf_state_mask_parse(&tf->f.states, value))
			return fail(err, errlen, "state: %s", evf_error_last());
	} else if (strcmp(name, "id") == 0) {
		if (tf->ids)
			return fail(err, errlen, "id: given twice (use a list: id:12,13)");
		return parse_ids(tf, value, err, errlen);
	} else if (strcmp(name, "corr") == 0) {
		if (set_string(&tf->corr, name, value, err, errlen))
			return -1;
		tf->f.correlation_id = tf->corr;
	} else if (strcmp(name, "error") == 0) {
		if (tf->f.errors)
			return fail(err, errlen, "error: given twice");
		tf->f.errors = true;
		if (*value) {
			if (set_string(&tf->text, name, value, err, errlen))
				return -1;
			tf->f.text = tf->text;
		}
	} else if (strcmp(name, "since") == 0) {
		if (tf->f.since)
			return fail(err, errlen, "since: given twice");
		return parse_when(&tf->f.since, name, value, now, err, errlen);
	} else if (strcmp(name, "until") == 0) {
		if (tf->f.until)
			return fail(err, errlen, "until: given twice");
		return parse_when(&tf->f.until, name, value, now, err, errlen);
	} else {
		return fail(err, errlen, "unknown qualifier '%s:' (type: state: id: corr: "
		            "error: since: until:)", name);
	}
	return 0;
}

int tui_filter_parse(tui_filter *out, const char *expr, evf_time now,
                     char *err, size_t errlen)
{
	tui_filter tf;
	const char *p = expr ? expr : "";
	bool open_quote = false;
	char *word;

	tui_filter_init(&tf);
	while ((word = next_word(&p, &open_quote)) != NULL) {
		int rc = apply_word(&tf, word, now, err, errlen);

		free(word);
		if (rc) {
			tui_filter_free(&tf);
			return -1;
		}
	}
	if (open_quote || *p != '\0') {
		tui_filter_free(&tf);
		return fail(err, errlen, open_quote ? "unbalanced \" in the filter"
		                                    : "out of memory");
	}
	if (tui_filter_active(&tf) && !(tf.expr = strdup(expr))) {
		tui_filter_free(&tf);
		return fail(err, errlen, "out of memory");
	}
	tui_filter_free(out);
	*out = tf;
	return 0;
}
