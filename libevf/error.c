/* error.c - the thread-local "last error" behind evf_error_last(). */
#include "evf_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[512];

const char *evf_error_last(void)
{
	return last_error[0] ? last_error : "no error";
}

void evfi_error_clear(void)
{
	last_error[0] = '\0';
}

int evfi_failv(int code, const char *fmt, va_list ap)
{
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	return code;
}

int evfi_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evfi_failv(code, fmt, ap);
	va_end(ap);
	return code;
}

int evfi_wrap(int code, const char *fmt, ...)
{
	char prefix[256], old[sizeof last_error];
	va_list ap;

	memcpy(old, last_error, sizeof old);
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	snprintf(last_error, sizeof last_error, "%s: %s", prefix, old);
	return code;
}

const char *evf_strerror(int code)
{
	switch (code) {
	case EVF_OK: return "success";
	case EVF_ERROR: return "failure";
	case EVF_ENOMEM: return "out of memory";
	case EVF_EINVAL: return "invalid argument";
	case EVF_ENOTFOUND: return "not found";
	case EVF_EBUSY: return "database busy";
	case EVF_ESTORE: return "database error";
	case EVF_ENOBACKEND: return "backend not built";
	case EVF_EBASIC: return "needs the extended columns";
	case EVF_ESCHEMA: return "table missing or of unknown shape";
	case EVF_EREFUSED: return "refused";
	case EVF_EUNAVAILABLE: return "database unavailable";
	case EVF_ETIMEDOUT: return "time budget exceeded";
	default: return "unknown error";
	}
}

char *evfi_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- growable string --------------------------------------------------- */

void evfi_buf_add(evfi_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void evfi_buf_puts(evfi_buf *b, const char *s)
{
	evfi_buf_add(b, s, strlen(s));
}

void evfi_buf_add_int(evfi_buf *b, int64_t v)
{
	char out[21], *p = out + sizeof out;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*--p = '-';
	evfi_buf_add(b, p, (size_t)(out + sizeof out - p));
}

void evfi_buf_printf(evfi_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof small) {
		evfi_buf_add(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	evfi_buf_add(b, big, (size_t)n);
	free(big);
}

void evfi_buf_free(evfi_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}
