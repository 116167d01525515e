/* url.c - database URLs and SQL identifiers. */
#include "evf_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void evfi_url_clear(evfi_url *u)
{
	free(u->backend);
	free(u->target);
	free(u->display);
	memset(u, 0, sizeof *u);
}

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Mask the password of "postgresql://user:secret@host/db" and of a
 * "password=secret" conninfo pair, so the display form is safe to log. */
static char *mask_password(const char *url)
{
	evfi_buf b = { 0 };
	const char *scheme_end = strstr(url, "://");
	if (scheme_end) {
		const char *auth = scheme_end + 3;
		const char *at = strchr(auth, '@');
		const char *slash = strchr(auth, '/');
		const char *colon = strchr(auth, ':');
		if (at && (!slash || at < slash) && colon && colon < at) {
			evfi_buf_add(&b, url, (size_t)(colon + 1 - url));
			evfi_buf_puts(&b, "***");
			evfi_buf_puts(&b, at);
		} else {
			evfi_buf_puts(&b, url);
		}
		/* a password may also ride in the query string */
		char *q = b.data ? strstr(b.data, "password=") : NULL;
		if (q) {
			evfi_buf m = { 0 };
			evfi_buf_add(&m, b.data, (size_t)(q + 9 - b.data));
			evfi_buf_puts(&m, "***");
			evfi_buf_puts(&m, q + 9 + strcspn(q + 9, "&"));
			evfi_buf_free(&b);
			b = m;
		}
	} else {
		const char *p = url;
		while (*p) {
			const char *kw = strstr(p, "password");
			if (!kw) {
				evfi_buf_puts(&b, p);
				break;
			}
			const char *eq = kw + 8;
			while (*eq == ' ')
				eq++;
			if (*eq != '=') {
				evfi_buf_add(&b, p, (size_t)(eq - p));
				p = eq;
				continue;
			}
			evfi_buf_add(&b, p, (size_t)(eq + 1 - p));
			evfi_buf_puts(&b, "***");
			const char *v = eq + 1;
			while (*v == ' ')
				v++;
			if (*v == '\'') {
				v++;
				while (*v && *v != '\'')
					v += (*v == '\\' && v[1]) ? 2 : 1;
				if (*v)
					v++;
			} else {
				while (*v && !isspace((unsigned char)*v))
					v++;
			}
			p = v;
		}
	}
	if (b.oom) {
		evfi_buf_free(&b);
		return NULL;
	}
	return b.data ? b.data : strdup("");
}

/* "host=/run/postgresql dbname=app": a libpq conninfo starts with a
 * keyword and '='.  (Testing for '/' instead would send socket paths and
 * passwords with slashes to SQLite, and into its error messages.) */
static bool is_conninfo(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (!isalpha((unsigned char)*s))
		return false;
	while (isalnum((unsigned char)*s) || *s == '_')
		s++;
	while (isspace((unsigned char)*s))
		s++;
	return *s == '=';
}

int evfi_url_parse(evfi_url *out, const char *url)
{
	const char *backend, *target;

	memset(out, 0, sizeof *out);
	if (!url || !*url)
		return evfi_fail(EVF_EINVAL, "empty database URL");
	if (starts(url, "sqlite://")) {
		backend = "sqlite";
		target = url + 9;
	} else if (starts(url, "sqlite:")) {
		backend = "sqlite";
		target = url + 7;
	} else if (starts(url, "postgresql://") || starts(url, "postgres://") ||
	           starts(url, "postgresql:") || is_conninfo(url)) {
		/* a libpq URI, or a conninfo string "host=... dbname=..." */
		backend = "postgresql";
		target = url;
	} else if (strstr(url, "://")) {
		return evfi_fail(EVF_EINVAL, "unsupported database URL scheme in '%.*s' "
		                 "(expected sqlite:PATH or postgresql://...)",
		                 (int)(strstr(url, "://") - url + 3), url);
	} else {
		backend = "sqlite";
		target = url;
	}
	if (!*target)
		return evfi_fail(EVF_EINVAL, "database URL '%s' names no file", url);
	out->backend = strdup(backend);
	out->target = strdup(target);
	out->display = mask_password(url);
	if (!out->backend || !out->target || !out->display) {
		evfi_url_clear(out);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	return 0;
}

bool evfi_identifier_ok(const char *name)
{
	if (!name || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	size_t n = 0;
	for (const char *p = name; *p; p++, n++)
		if (!(isalnum((unsigned char)*p) || *p == '_') || (unsigned char)*p > 127)
			return false;
	return n <= 48;
}
