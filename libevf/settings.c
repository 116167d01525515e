/* settings.c - evf.conf, the environment and front-end flags merged into
 * one set of typed settings, each remembering where its value came from.
 *
 * One table (keys[]) drives everything: the names in the file, the
 * environment variables, parsing, validation and display.  The defaults
 * are text parsed by the same code as any other value, so that what
 * `evfctl config` shows is what the library uses. */
#include "evf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum kind {
	K_URL,        /* database URL, shown with the password masked */
	K_TABLE,      /* SQL identifier */
	K_STRING,     /* any non-empty text */
	K_INT,        /* int in [min, max] */
	K_DURATION,   /* milliseconds in [min, max] */
	K_BOOL,
	K_RATIO,      /* a decimal in [0, 1] */
	K_LOG_FORMAT,
	K_LOG_LEVEL,
	K_HOSTPORT    /* HOST:PORT, port 1..65535 */
};

struct key {
	const char *section;
	const char *name;
	const char *env;
	enum kind kind;
	const char *def;   /* NULL: unset by default */
	int64_t min, max;  /* K_INT, K_DURATION */
	size_t offset;     /* of the field in evf_settings */
};

#define F(field) offsetof(evf_settings, field)
#define DUR_MAX (INT64_MAX / 4) /* what evf_duration_parse accepts */

/* evf.conf(5) documents these in this order; keep them together. */
static const struct key keys[] = {
	{ "evf", "database", "EVF_DATABASE_URL", K_URL, NULL, 0, 0, F(evf.database) },
	{ "evf", "table", "EVF_TABLE", K_TABLE, "evf_event", 0, 0, F(evf.table) },
	{ "evf", "max_attempts", "EVF_MAX_ATTEMPTS", K_INT, "5", 1, INT_MAX, F(evf.max_attempts) },
	{ "evf", "backoff_base", "EVF_BACKOFF_BASE", K_DURATION, "1s", 1, DUR_MAX, F(evf.backoff_base_ms) },
	{ "evf", "backoff_max", "EVF_BACKOFF_MAX", K_DURATION, "1h", 1, DUR_MAX, F(evf.backoff_max_ms) },
	{ "evf", "lock_timeout", "EVF_LOCK_TIMEOUT", K_DURATION, "5m", 1, DUR_MAX, F(evf.lock_timeout_ms) },
	{ "evf", "poll_interval", "EVF_POLL_INTERVAL", K_DURATION, "1s", 1, DUR_MAX, F(evf.poll_interval_ms) },
	{ "evf", "busy_timeout", "EVF_BUSY_TIMEOUT", K_DURATION, "10s", 1, INT_MAX, F(evf.busy_timeout_ms) },
	{ "evf", "batch_size", "EVF_BATCH_SIZE", K_INT, "100", 1, 10000, F(evf.batch_size) },
	{ "evf", "concurrency", "EVF_CONCURRENCY", K_INT, "1", 1, EVFI_MAX_CONCURRENCY, F(concurrency) },
	{ "evf", "listen", "EVF_LISTEN", K_BOOL, "yes", 0, 0, F(evf.listen) },
	{ "evf", "wake", "EVF_WAKE", K_BOOL, "yes", 0, 0, F(wake) },
	{ "evf", "exec_timeout", "EVF_EXEC_TIMEOUT", K_DURATION, "0", 0, DUR_MAX, F(evf.exec_timeout_ms) },
	{ "evf", "worker_name", "EVF_WORKER_NAME", K_STRING, NULL, 0, 0, F(evf.worker_name) },
	{ "evf", "log_format", "EVF_LOG_FORMAT", K_LOG_FORMAT, "logfmt", 0, 0, F(evf.log_format) },
	{ "evf", "log_level", "EVF_LOG_LEVEL", K_LOG_LEVEL, "info", 0, 0, F(evf.log_level) },
	{ "metrics", "textfile", "EVF_METRICS_TEXTFILE", K_STRING, NULL, 0, 0, F(metrics.textfile) },
	{ "metrics", "statsd", "EVF_METRICS_STATSD", K_HOSTPORT, NULL, 0, 0, F(metrics.statsd) },
	{ "metrics", "interval", "EVF_METRICS_INTERVAL", K_DURATION, "5s", 1, DUR_MAX, F(metrics.interval_ms) },
	{ "health", "stuck_warning", "EVF_HEALTH_STUCK_WARNING", K_INT, "1", 1, INT_MAX, F(health.stuck_warning) },
	{ "health", "stuck_critical", "EVF_HEALTH_STUCK_CRITICAL", K_INT, "10", 1, INT_MAX, F(health.stuck_critical) },
	{ "health", "oldest_ready_warning", "EVF_HEALTH_OLDEST_READY_WARNING", K_DURATION, "5m", 1, DUR_MAX, F(health.oldest_ready_warning_ms) },
	{ "health", "oldest_ready_critical", "EVF_HEALTH_OLDEST_READY_CRITICAL", K_DURATION, "30m", 1, DUR_MAX, F(health.oldest_ready_critical_ms) },
	{ "health", "window", "EVF_HEALTH_WINDOW", K_DURATION, "15m", 1, DUR_MAX, F(health.window_ms) },
	{ "health", "failure_ratio_warning", "EVF_HEALTH_FAILURE_RATIO_WARNING", K_RATIO, "0.1", 0, 0, F(health.failure_ratio_warning) },
	{ "health", "failure_ratio_critical", "EVF_HEALTH_FAILURE_RATIO_CRITICAL", K_RATIO, "0.5", 0, 0, F(health.failure_ratio_critical) },
	{ "health", "dead_warning", "EVF_HEALTH_DEAD_WARNING", K_INT, "1", 1, INT_MAX, F(health.dead_warning) },
	{ "health", "dead_critical", "EVF_HEALTH_DEAD_CRITICAL", K_INT, "100", 1, INT_MAX, F(health.dead_critical) },
	{ "health", "idle_queue", "EVF_HEALTH_IDLE_QUEUE", K_DURATION, "5m", 1, DUR_MAX, F(health.idle_queue_ms) },
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* The sections of a file; [handlers], [rates] and [global_rates] have no
 * keys of their own: their keys are event types. */
static const char *const sections[] = { "evf", "handlers", "metrics", "health", "rates",
                                        "global_rates" };
#define NSECTIONS (sizeof sections / sizeof sections[0])
#define HANDLERS_SECTION 1
#define RATES_SECTION 4
#define GLOBAL_RATES_SECTION 5

/* A warning threshold may not be above its critical one. */
static const struct { const char *warning, *critical; } pairs[] = {
	{ "health.stuck_warning", "health.stuck_critical" },
	{ "health.oldest_ready_warning", "health.oldest_ready_critical" },
	{ "health.failure_ratio_warning", "health.failure_ratio_critical" },
	{ "health.dead_warning", "health.dead_critical" },
};

struct slot {
	char *source;   /* "default", "file:PATH:LINE", "env VAR" or a flag */
	char *text;     /* the value of the string kinds; NULL = unset */
	char *display;  /* K_URL: the masked form */
	unsigned line;  /* line of the file being read that set it; 0 = none */
};

/* The public struct comes first, so that evf_settings * converts both
 * ways; only evf_settings_new() makes one. */
typedef struct evfi_settings {
	evf_settings pub;
	struct slot slots[NKEYS];
	evf_handler_setting *handlers; /* strings owned, behind pub.handlers */
	char **handler_sources;
	size_t nhandlers;
	evf_rate_limit *rates;         /* types owned, behind pub.rates */
	char **rate_texts, **rate_sources;
	size_t nrates;
	char *path;
} evfi_settings;

/* A parsed value, not yet stored. */
typedef struct value {
	union {
		int i;
		int64_t ms;
		bool b;
		double r;
		evf_log_format fmt;
		evf_log_level lvl;
	} u;
	char *text;     /* string kinds: owned until stored */
	char *display;  /* K_URL */
} value;

static evfi_settings *priv(evf_settings *s)
{
	return (evfi_settings *)s;
}

static const evfi_settings *cpriv(const evf_settings *s)
{
	return (const evfi_settings *)s;
}

static void *field(evf_settings *s, size_t i)
{
	return (char *)s + keys[i].offset;
}

static const void *cfield(const evf_settings *s, size_t i)
{
	return (const char *)s + keys[i].offset;
}

static void value_clear(value *v)
{
	free(v->text);
	free(v->display);
	v->text = v->display = NULL;
}

/* "section.key" -> index; -1 when unknown. */
static int find_key(const char *name)
{
	const char *dot = strchr(name, '.');

	if (!dot)
		return -1;
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(keys[i].section) == (size_t)(dot - name) &&
		    !strncmp(keys[i].section, name, (size_t)(dot - name)) &&
		    !strcmp(keys[i].name, dot + 1))
			return (int)i;
	return -1;
}

static int find_in_section(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return (int)i;
	return -1;
}

/* ---- parsing one value --------------------------------------------------- */

/* Digits only: strtoll alone would take blanks, '+' and "0x". */
static int parse_int(const struct key *k, const char *text, const char *what,
                     int64_t *out)
{
	char *end;
	long long v;

	if (!text[strspn(text, "0123456789")] && *text) {
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno != ERANGE && v >= k->min && v <= k->max) {
			*out = v;
			return 0;
		}
	}
	if (k->max == INT_MAX)
		return evfi_fail(EVF_EINVAL, "bad number for %s: '%s' (must be %" PRId64
		                 " or more)", what, text, k->min);
	return evfi_fail(EVF_EINVAL, "bad number for %s: '%s' (must be from %" PRId64
	                 " to %" PRId64 ")", what, text, k->min, k->max);
}

static int parse_duration(const struct key *k, const char *text, const char *what,
                          int64_t *out)
{
	if (evf_duration_parse(out, text) < 0)
		return evfi_fail(EVF_EINVAL, "bad duration for %s: '%s' (e.g. 500ms, 30s, "
		                 "5m, 2h, 7d, 1h30m)", what, text);
	if (*out < k->min)
		return evfi_fail(EVF_EINVAL, "bad duration for %s: '%s' (must be longer "
		                 "than 0)", what, text);
	if (*out > k->max)
		return evfi_fail(EVF_EINVAL, "bad duration for %s: '%s' (too long)", what, text);
	return 0;
}

static int parse_bool(const char *text, const char *what, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (!strcmp(text, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(text, no[i])) {
			*out = false;
			return 0;
		}
	}
	return evfi_fail(EVF_EINVAL, "bad boolean for %s: '%s' (use yes, no, true, "
	                 "false, on, off, 1 or 0)", what, text);
}

/* A plain decimal: strtod alone would take "1e-1", "nan" and blanks. */
static int parse_ratio(const char *text, const char *what, double *out)
{
	size_t n = strspn(text, "0123456789.");
	const char *dot = strchr(text, '.');
	char *end;

	if (n && !text[n] && (!dot || !strchr(dot + 1, '.')) && strcmp(text, ".")) {
		double v = strtod(text, &end);
		if (!*end && v >= 0 && v <= 1) {
			*out = v;
			return 0;
		}
	}
	return evfi_fail(EVF_EINVAL, "bad ratio for %s: '%s' (a decimal from 0 to 1, "
	                 "e.g. 0.25)", what, text);
}

/* HOST:PORT, the host possibly a bracketed IPv6 address. */
static int parse_hostport(const char *text, const char *what)
{
	const char *colon = strrchr(text, ':');
	const char *port = colon ? colon + 1 : "";
	bool host_ok;

	if (text[0] == '[')
		host_ok = colon && colon > text + 2 && colon[-1] == ']';
	else
		host_ok = colon && colon > text && !memchr(text, ':', (size_t)(colon - text));
	if (host_ok && *port && !port[strspn(port, "0123456789")] && strlen(port) <= 5) {
		long p = strtol(port, NULL, 10);
		if (p >= 1 && p <= 65535 && !strpbrk(text, " \t"))
			return 0;
	}
	return evfi_fail(EVF_EINVAL, "bad address for %s: '%s' (use HOST:PORT, the "
	                 "port from 1 to 65535)", what, text);
}

/* Parse text as key i wants it; `what` names the value in messages. */
static int parse_value(size_t i, const char *text, const char *what, value *v)
{
	const struct key *k = &keys[i];
	int64_t n = 0;
	int rc;

	memset(v, 0, sizeof *v);
	if (!*text)
		return evfi_fail(EVF_EINVAL, "empty value for %s", what);
	switch (k->kind) {
	case K_URL: {
		evfi_url u;
		if ((rc = evfi_url_parse(&u, text)) < 0)
			return evfi_wrap(rc, "bad database URL for %s", what);
		v->display = u.display;
		u.display = NULL;
		evfi_url_clear(&u);
		break;
	}
	case K_TABLE:
		if (!evfi_identifier_ok(text))
			return evfi_fail(EVF_EINVAL, "bad table name for %s: '%s' (letters, "
			                 "digits and _ only, at most 48, not starting with a "
			                 "digit)", what, text);
		break;
	case K_STRING:
		break;
	case K_INT:
		if ((rc = parse_int(k, text, what, &n)) < 0)
			return rc;
		v->u.i = (int)n;
		return 0;
	case K_DURATION:
		return parse_duration(k, text, what, &v->u.ms);
	case K_BOOL:
		return parse_bool(text, what, &v->u.b);
	case K_RATIO:
		return parse_ratio(text, what, &v->u.r);
	case K_LOG_FORMAT:
		if (!strcmp(text, "logfmt"))
			v->u.fmt = EVF_LOG_LOGFMT;
		else if (!strcmp(text, "json"))
			v->u.fmt = EVF_LOG_JSON;
		else
			return evfi_fail(EVF_EINVAL, "unknown log format '%s' for %s (use "
			                 "logfmt or json)", text, what);
		return 0;
	case K_LOG_LEVEL:
		if (!strcmp(text, "error"))
			v->u.lvl = EVF_LOG_LEVEL_ERROR;
		else if (!strcmp(text, "warning"))
			v->u.lvl = EVF_LOG_LEVEL_WARNING;
		else if (!strcmp(text, "info"))
			v->u.lvl = EVF_LOG_LEVEL_INFO;
		else
			return evfi_fail(EVF_EINVAL, "unknown log level '%s' for %s (use "
			                 "error, warning or info)", text, what);
		return 0;
	case K_HOSTPORT:
		if ((rc = parse_hostport(text, what)) < 0)
			return rc;
		break;
	}
	/* only the string kinds get here */
	v->text = strdup(text);
	if (!v->text) {
		value_clear(v);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	return 0;
}

/* The number a threshold compares by. */
static double numeric(size_t i, const value *v)
{
	switch (keys[i].kind) {
	case K_INT: return v->u.i;
	case K_DURATION: return (double)v->u.ms;
	case K_RATIO: return v->u.r;
	default: return 0;
	}
}

static value current(const evf_settings *s, size_t i)
{
	const void *f = cfield(s, i);
	value v;

	memset(&v, 0, sizeof v);
	switch (keys[i].kind) {
	case K_INT: memcpy(&v.u.i, f, sizeof v.u.i); break;
	case K_DURATION: memcpy(&v.u.ms, f, sizeof v.u.ms); break;
	case K_BOOL: memcpy(&v.u.b, f, sizeof v.u.b); break;
	case K_RATIO: memcpy(&v.u.r, f, sizeof v.u.r); break;
	case K_LOG_FORMAT: memcpy(&v.u.fmt, f, sizeof v.u.fmt); break;
	case K_LOG_LEVEL: memcpy(&v.u.lvl, f, sizeof v.u.lvl); break;
	default: break;
	}
	return v;
}

/* "1h30m", "500ms", "0": what evf_duration_parse reads back. */
static void format_duration(char *buf, size_t len, int64_t ms)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
		{ "ms", 1 },
	};
	size_t used = 0;

	snprintf(buf, len, "0");
	for (size_t i = 0; i < sizeof units / sizeof units[0] && ms > 0; i++) {
		int64_t n = ms / units[i].ms;
		if (!n)
			continue;
		ms -= n * units[i].ms;
		int w = snprintf(buf + used, len - used, "%" PRId64 "%s", n, units[i].unit);
		if (w < 0 || (size_t)w >= len - used)
			return;
		used += (size_t)w;
	}
}

/* A value of key i as text: the string kinds from sl, the others written
 * into buf (or static). */
static const char *value_text(size_t i, const value *v, const struct slot *sl,
                              char *buf, size_t len)
{
	switch (keys[i].kind) {
	case K_URL:
		return sl->display;
	case K_TABLE:
	case K_STRING:
	case K_HOSTPORT:
		return sl->text;
	case K_INT:
		snprintf(buf, len, "%d", v->u.i);
		return buf;
	case K_DURATION:
		format_duration(buf, len, v->u.ms);
		return buf;
	case K_RATIO:
		snprintf(buf, len, "%g", v->u.r);
		return buf;
	case K_BOOL:
		return v->u.b ? "yes" : "no";
	case K_LOG_FORMAT:
		return v->u.fmt == EVF_LOG_JSON ? "json" : "logfmt";
	case K_LOG_LEVEL:
		return v->u.lvl == EVF_LOG_LEVEL_ERROR ? "error" :
		       v->u.lvl == EVF_LOG_LEVEL_WARNING ? "warning" : "info";
	}
	return NULL;
}

/* 0, or EVF_EINVAL when a warning threshold is above its critical one,
 * with key i taking *v from `source` first (i == NKEYS: as they are). */
static int check_pairs(const evf_settings *s, size_t i, const value *v,
                       const char *source)
{
	const evfi_settings *si = cpriv(s);

	for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
		size_t w = (size_t)find_key(pairs[p].warning);
		size_t c = (size_t)find_key(pairs[p].critical);
		value wv = i == w ? *v : current(s, w), cv = i == c ? *v : current(s, c);
		char wbuf[64], cbuf[64];

		if (numeric(w, &wv) <= numeric(c, &cv))
			continue;
		return evfi_fail(EVF_EINVAL, "%s = %s (%s) must not be above %s = %s (%s)",
		                 pairs[p].warning,
		                 value_text(w, &wv, NULL, wbuf, sizeof wbuf),
		                 i == w ? source : si->slots[w].source, pairs[p].critical,
		                 value_text(c, &cv, NULL, cbuf, sizeof cbuf),
		                 i == c ? source : si->slots[c].source);
	}
	return 0;
}

/* Store a parsed value (taking its strings) and its source. */
static int store(evf_settings *s, size_t i, value *v, const char *source)
{
	struct slot *sl = &priv(s)->slots[i];
	void *f = field(s, i);
	char *src = strdup(source);

	if (!src) {
		value_clear(v);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	free(sl->source);
	sl->source = src;
	switch (keys[i].kind) {
	case K_URL:
	case K_TABLE:
	case K_STRING:
	case K_HOSTPORT:
		free(sl->text);
		free(sl->display);
		sl->text = v->text;
		sl->display = v->display;
		v->text = v->display = NULL;
		*(const char **)f = sl->text;
		break;
	case K_INT: memcpy(f, &v->u.i, sizeof v->u.i); break;
	case K_DURATION: memcpy(f, &v->u.ms, sizeof v->u.ms); break;
	case K_BOOL: memcpy(f, &v->u.b, sizeof v->u.b); break;
	case K_RATIO: memcpy(f, &v->u.r, sizeof v->u.r); break;
	case K_LOG_FORMAT: memcpy(f, &v->u.fmt, sizeof v->u.fmt); break;
	case K_LOG_LEVEL: memcpy(f, &v->u.lvl, sizeof v->u.lvl); break;
	}
	return 0;
}

static int assign(evf_settings *s, size_t i, const char *text, const char *what,
                  const char *source)
{
	value v;
	int rc = parse_value(i, text, what, &v);

	return rc < 0 ? rc : store(s, i, &v, source);
}

/* ---- the settings ---------------------------------------------------------- */

int evf_settings_new(evf_settings **out)
{
	evfi_settings *si = calloc(1, sizeof *si);
	int rc;

	*out = NULL;
	if (!si)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].def)
			rc = assign(&si->pub, i, keys[i].def, keys[i].name, "default");
		else if (!(si->slots[i].source = strdup("default")))
			rc = evfi_fail(EVF_ENOMEM, "out of memory");
		else
			rc = 0;
		if (rc < 0) {
			evf_settings_free(&si->pub);
			return rc;
		}
	}
	*out = &si->pub;
	return 0;
}

static void clear_handlers(evfi_settings *si)
{
	for (size_t i = 0; i < si->nhandlers; i++) {
		free((char *)si->handlers[i].type);
		free((char *)si->handlers[i].command);
		free(si->handler_sources[i]);
	}
	free(si->handlers);
	free(si->handler_sources);
	si->handlers = NULL;
	si->handler_sources = NULL;
	si->nhandlers = 0;
	si->pub.handlers = NULL;
	si->pub.nhandlers = 0;
}

static void clear_rates(evfi_settings *si)
{
	for (size_t i = 0; i < si->nrates; i++) {
		free((char *)si->rates[i].type);
		free(si->rate_texts[i]);
		free(si->rate_sources[i]);
	}
	free(si->rates);
	free(si->rate_texts);
	free(si->rate_sources);
	si->rates = NULL;
	si->rate_texts = si->rate_sources = NULL;
	si->nrates = 0;
	si->pub.rates = NULL;
	si->pub.nrates = 0;
}

/* A `TYPE = RATE` line of [rates] or [global_rates]. */
static int add_rate(evfi_settings *si, const char *type, const char *text, bool global,
                    const char *source)
{
	size_t n = si->nrates;
	double per_second;
	int rc = evf_rate_parse(&per_second, text);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (si->rates[i].global == global && !strcmp(si->rates[i].type, type))
			return evfi_fail(EVF_EINVAL, "a second rate for '%s' (the first is at %s)",
			                 type, si->rate_sources[i]);
	evf_rate_limit *r = realloc(si->rates, (n + 1) * sizeof *r);
	if (!r)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	si->rates = r;
	si->pub.rates = r;
	char **t = realloc(si->rate_texts, (n + 1) * sizeof *t);
	if (t)
		si->rate_texts = t;
	char **src = t ? realloc(si->rate_sources, (n + 1) * sizeof *src) : NULL;
	if (!src)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	si->rate_sources = src;
	r[n] = (evf_rate_limit){ strdup(type), per_second, global };
	t[n] = strdup(text);
	src[n] = strdup(source);
	if (!r[n].type || !t[n] || !src[n]) {
		free((char *)r[n].type);
		free(t[n]);
		free(src[n]);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	si->nrates = n + 1;
	si->pub.nrates = n + 1;
	return 0;
}

void evf_settings_free(evf_settings *s)
{
	evfi_settings *si;

	if (!s)
		return;
	si = priv(s);
	for (size_t i = 0; i < NKEYS; i++) {
		free(si->slots[i].source);
		free(si->slots[i].text);
		free(si->slots[i].display);
	}
	clear_handlers(si);
	clear_rates(si);
	free(si->path);
	free(si);
}

const char *evf_settings_path(const evf_settings *s)
{
	return cpriv(s)->path;
}

int evf_settings_set(evf_settings *s, const char *key, const char *val,
                     const char *source)
{
	int i = key ? find_key(key) : -1;
	value v;
	int rc;

	if (i < 0)
		return evfi_fail(EVF_EINVAL, "unknown setting '%s'", key ? key : "(null)");
	if (!val)
		return evfi_fail(EVF_EINVAL, "no value for %s", key);
	if (!source)
		source = key;
	if ((rc = parse_value((size_t)i, val, source, &v)) < 0)
		return rc;
	if ((rc = check_pairs(s, (size_t)i, &v, source)) < 0) {
		value_clear(&v);
		return rc;
	}
	return store(s, (size_t)i, &v, source);
}

/* ---- the file ---------------------------------------------------------------- */

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
	                   end[-1] == '\n'))
		*--end = '\0';
	return s;
}

static int add_handler(evfi_settings *si, const char *type, const char *command,
                       const char *source)
{
	size_t n = si->nhandlers;
	evf_handler_setting *h = realloc(si->handlers, (n + 1) * sizeof *h);

	if (!h)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	si->handlers = h;
	si->pub.handlers = h;
	char **src = realloc(si->handler_sources, (n + 1) * sizeof *src);
	if (!src)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	si->handler_sources = src;
	h[n].type = strdup(type);
	h[n].command = strdup(command);
	src[n] = strdup(source);
	if (!h[n].type || !h[n].command || !src[n]) {
		free((char *)h[n].type);
		free((char *)h[n].command);
		free(src[n]);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	si->nhandlers = n + 1;
	si->pub.nhandlers = n + 1;
	return 0;
}

/* One line that is neither blank nor a comment.  *section is the index of
 * the current section, -1 before the first. */
static int parse_line(evfi_settings *si, const char *path, unsigned line,
                      char *text, int *section)
{
	char what[160];

	if (*text == '[') {
		char *close = strchr(text, ']');
		if (!close || *trim(close + 1))
			return evfi_fail(EVF_EINVAL, "%s:%u: malformed section header "
			                 "(expected [name])", path, line);
		*close = '\0';
		const char *name = trim(text + 1);
		for (size_t i = 0; i < NSECTIONS; i++) {
			if (!strcmp(name, sections[i])) {
				*section = (int)i;
				return 0;
			}
		}
		return evfi_fail(EVF_EINVAL, "%s:%u: unknown section [%s] (sections: "
		                 "[evf], [handlers], [metrics], [health], [rates], "
		                 "[global_rates])", path, line, name);
	}
	char *eq = strchr(text, '=');
	if (!eq)
		return evfi_fail(EVF_EINVAL, "%s:%u: expected 'key = value' or "
		                 "'[section]'", path, line);
	*eq = '\0';
	char *key = trim(text), *val = trim(eq + 1);
	if (!*key)
		return evfi_fail(EVF_EINVAL, "%s:%u: no key before '='", path, line);
	if (*section < 0)
		return evfi_fail(EVF_EINVAL, "%s:%u: key '%s' before any section "
		                 "(start with [evf])", path, line, key);
	size_t vlen = strlen(val);
	if (*val == '"') {
		if (vlen < 2 || val[vlen - 1] != '"')
			return evfi_fail(EVF_EINVAL, "%s:%u: unterminated quote in the value "
			                 "of '%s'", path, line, key);
		val[vlen - 1] = '\0';
		val++;
	}
	evfi_buf src = { 0 };
	evfi_buf_printf(&src, "file:%s:%u", path, line);
	if (src.oom) {
		evfi_buf_free(&src);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	int rc = 0;
	if (*section == HANDLERS_SECTION) {
		for (size_t i = 0; i < si->nhandlers && !rc; i++)
			if (!strcmp(si->handlers[i].type, key))
				rc = evfi_fail(EVF_EINVAL, "%s:%u: a second handler for '%s' "
				               "(the first is at %s)", path, line, key,
				               si->handler_sources[i]);
		if (!rc && !*val)
			rc = evfi_fail(EVF_EINVAL, "%s:%u: empty command for '%s' in "
			               "[handlers]", path, line, key);
		if (!rc)
			rc = add_handler(si, key, val, src.data);
		evfi_buf_free(&src);
		return rc;
	}
	if (*section == RATES_SECTION || *section == GLOBAL_RATES_SECTION) {
		rc = add_rate(si, key, val, *section == GLOBAL_RATES_SECTION, src.data);
		if (rc < 0)
			rc = evfi_wrap(rc, "%s:%u: [%s] %s", path, line, sections[*section], key);
		evfi_buf_free(&src);
		return rc;
	}
	int i = find_in_section(sections[*section], key);
	if (i < 0)
		rc = evfi_fail(EVF_EINVAL, "%s:%u: unknown key '%s' in [%s]", path, line,
		               key, sections[*section]);
	else if (si->slots[i].line)
		rc = evfi_fail(EVF_EINVAL, "%s:%u: '%s' in [%s] is already set on line %u",
		               path, line, key, sections[*section], si->slots[i].line);
	if (!rc) {
		snprintf(what, sizeof what, "%s in [%s]", key, sections[*section]);
		rc = assign(&si->pub, (size_t)i, val, what, src.data);
		if (rc < 0)
			rc = evfi_wrap(rc, "%s:%u", path, line);
		else
			si->slots[i].line = line;
	}
	evfi_buf_free(&src);
	return rc;
}

/* Read one file; `named_by` says who asked for it, for the message when
 * it cannot be opened. */
static int read_file(evfi_settings *si, const char *path, const char *named_by)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	unsigned line = 0;
	int section = -1, rc = 0;

	if (!f)
		return evfi_fail(errno == ENOENT ? EVF_ENOTFOUND : EVF_ERROR,
		                 "cannot open the config file '%s'%s%s: %s", path,
		                 named_by ? " named by " : "", named_by ? named_by : "",
		                 strerror(errno));
	free(si->path);
	if (!(si->path = strdup(path))) {
		fclose(f);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < NKEYS; i++)
		si->slots[i].line = 0;
	clear_handlers(si); /* they are the file's: a second load replaces them */
	clear_rates(si);
	errno = 0;
	while (!rc && getline(&buf, &cap, f) != -1) {
		char *text = trim(buf);
		line++;
		/* comments only at the start of a line: commands hold ';' and '#' */
		if (*text && *text != '#' && *text != ';')
			rc = parse_line(si, path, line, text, &section);
	}
	if (!rc && ferror(f))
		rc = evfi_fail(EVF_ERROR, "cannot read the config file '%s': %s", path,
		               strerror(errno ? errno : EIO));
	free(buf);
	fclose(f);
	return rc;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* The first file of the lookup order that exists; "" when none.  The
 * caller frees it. */
static char *lookup(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	evfi_buf b = { 0 };

	if (exists("./evf.conf"))
		return strdup("./evf.conf");
	if (xdg && *xdg)
		evfi_buf_printf(&b, "%s/evf/evf.conf", xdg);
	else if (home && *home)
		evfi_buf_printf(&b, "%s/.config/evf/evf.conf", home);
	if (b.data && !b.oom && exists(b.data))
		return b.data;
	evfi_buf_free(&b);
	return strdup(exists("/etc/evf/evf.conf") ? "/etc/evf/evf.conf" : "");
}

static int read_env(evf_settings *s)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const char *v = getenv(keys[i].env);
		char source[64];

		/* an empty variable is an unset one, as EVF_DATABASE_URL always was */
		if (!v || !*v)
			continue;
		snprintf(source, sizeof source, "env %s", keys[i].env);
		int rc = assign(s, i, v, keys[i].env, source);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int evf_settings_load(evf_settings *s, const char *path)
{
	evfi_settings *si = priv(s);
	const char *env = getenv("EVF_CONFIG");
	int rc;

	if (path) {
		rc = read_file(si, path, NULL);
	} else if (env && *env) {
		rc = read_file(si, env, "EVF_CONFIG");
	} else {
		char *found = lookup();
		if (!found)
			return evfi_fail(EVF_ENOMEM, "out of memory");
		rc = *found ? read_file(si, found, NULL) : 0;
		free(found);
	}
	if (rc < 0 || (rc = read_env(s)) < 0)
		return rc;
	/* the thresholds are checked once every source is in */
	return check_pairs(s, NKEYS, NULL, NULL);
}

/* ---- reading them back --------------------------------------------------------- */

static int foreach_handler(const evfi_settings *si,
                           int (*cb)(const evf_setting *, void *), void *user)
{
	for (size_t h = 0; h < si->nhandlers; h++) {
		evfi_buf name = { 0 };
		evfi_buf_printf(&name, "handlers.%s", si->handlers[h].type);
		if (name.oom) {
			evfi_buf_free(&name);
			return evfi_fail(EVF_ENOMEM, "out of memory");
		}
		evf_setting st = { name.data, si->handlers[h].command,
		                   si->handler_sources[h], NULL };
		int rc = cb(&st, user);
		evfi_buf_free(&name);
		if (rc)
			return rc;
	}
	return 0;
}

static int foreach_rate(const evfi_settings *si,
                        int (*cb)(const evf_setting *, void *), void *user)
{
	for (size_t i = 0; i < si->nrates; i++) {
		evfi_buf name = { 0 };
		evfi_buf_printf(&name, "%s.%s", si->rates[i].global ? "global_rates" : "rates",
		                si->rates[i].type);
		if (name.oom) {
			evfi_buf_free(&name);
			return evfi_fail(EVF_ENOMEM, "out of memory");
		}
		evf_setting st = { name.data, si->rate_texts[i], si->rate_sources[i], NULL };
		int rc = cb(&st, user);
		evfi_buf_free(&name);
		if (rc)
			return rc;
	}
	return 0;
}

int evf_settings_foreach(const evf_settings *s,
                         int (*cb)(const evf_setting *st, void *user), void *user)
{
	const evfi_settings *si = cpriv(s);
	char name[64], buf[64];
	int rc;

	for (size_t i = 0; i < NKEYS; i++) {
		/* the handlers come after the [evf] keys, as in evf.conf(5) */
		if (i > 0 && !strcmp(keys[i - 1].section, "evf") &&
		    strcmp(keys[i].section, "evf") && (rc = foreach_handler(si, cb, user)))
			return rc;
		snprintf(name, sizeof name, "%s.%s", keys[i].section, keys[i].name);
		value v = current(s, i);
		evf_setting st = { name, value_text(i, &v, &si->slots[i], buf, sizeof buf),
		                   si->slots[i].source, keys[i].env };
		if ((rc = cb(&st, user)))
			return rc;
	}
	/* the rates after everything, as in evf.conf(5) */
	return foreach_rate(si, cb, user);
}

void evf_settings_options(const evf_settings *s, evf_options *out)
{
	out->table = s->evf.table;
	out->lock_timeout_ms = s->evf.lock_timeout_ms;
	out->poll_interval_ms = s->evf.poll_interval_ms;
	out->max_attempts = s->evf.max_attempts;
	out->backoff_base_ms = s->evf.backoff_base_ms;
	out->backoff_max_ms = s->evf.backoff_max_ms;
	out->busy_timeout_ms = s->evf.busy_timeout_ms;
	out->no_listen = !s->evf.listen;
	if (out->version >= 2)
		out->no_wake = !s->wake;
}

void evf_settings_worker_options(const evf_settings *s, evf_worker_options *out)
{
	out->name = s->evf.worker_name;
	out->batch_size = s->evf.batch_size;
	out->lock_timeout_ms = s->evf.lock_timeout_ms;
	out->poll_interval_ms = s->evf.poll_interval_ms;
	out->log_format = s->evf.log_format;
	out->metrics_textfile = s->metrics.textfile;
	out->statsd = s->metrics.statsd;
	out->metrics_interval_ms = s->metrics.interval_ms;
	if (out->version >= 3) { /* an older caller's struct ends before */
		out->concurrency = s->concurrency;
		out->rates = s->rates;
		out->nrates = s->nrates;
	}
}

void evf_settings_health_thresholds(const evf_settings *s, evf_health_thresholds *out)
{
	*out = (evf_health_thresholds)EVF_HEALTH_THRESHOLDS_INIT;
	out->stuck_warning = s->health.stuck_warning;
	out->stuck_critical = s->health.stuck_critical;
	out->oldest_ready_warning_ms = s->health.oldest_ready_warning_ms;
	out->oldest_ready_critical_ms = s->health.oldest_ready_critical_ms;
	out->window_ms = s->health.window_ms;
	out->failure_ratio_warning = s->health.failure_ratio_warning;
	out->failure_ratio_critical = s->health.failure_ratio_critical;
	out->dead_warning = s->health.dead_warning;
	out->dead_critical = s->health.dead_critical;
	out->idle_queue_ms = s->health.idle_queue_ms;
}
