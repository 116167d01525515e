/* timefmt.c - clock, durations and timestamps.
 *
 * Timestamps are stored in SQLite as TEXT "YYYY-MM-DD HH:MM:SS.ffffff" UTC,
 * the format Django writes, so that tables made by the original package
 * compare and sort the same way as ours. */
#include "evf_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

evf_time evf_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (evf_time)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t evfi_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t evfi_seed(const void *salt)
{
	uint64_t v = (uint64_t)evf_now() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt;
	return v ? v : 1;
}

double evfi_ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int evf_duration_parse(int64_t *out_ms, const char *text)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "w", 604800000 },
	};
	const char *p = text;
	int64_t total = 0;
	bool any = false;

	if (!text || !*text)
		return evfi_fail(EVF_EINVAL, "empty duration");
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return evfi_fail(EVF_EINVAL, "malformed duration '%s' (expected e.g. 30s, 5m, 2h, 1h30m)", text);
		/* Only plain decimals: strtod alone would take "1e3" or "0x10". */
		char num[32];
		size_t nlen = strspn(p, "0123456789.");
		if (nlen >= sizeof num)
			return evfi_fail(EVF_EINVAL, "duration '%s' is too long", text);
		memcpy(num, p, nlen);
		num[nlen] = '\0';
		char *end;
		double v = strtod(num, &end);
		if (*end)
			return evfi_fail(EVF_EINVAL, "malformed duration '%s'", text);
		p += nlen;
		size_t ulen = 0;
		while (isalpha((unsigned char)p[ulen]))
			ulen++;
		int64_t mul = 0;
		if (ulen == 0) {
			if (any || *p)
				return evfi_fail(EVF_EINVAL, "malformed duration '%s' (a number needs a unit after the first part)", text);
			mul = 1000; /* a bare number is seconds */
		}
		for (size_t i = 0; i < sizeof units / sizeof units[0] && ulen; i++)
			if (strlen(units[i].unit) == ulen && !strncmp(p, units[i].unit, ulen))
				mul = units[i].ms;
		if (!mul)
			return evfi_fail(EVF_EINVAL, "malformed duration '%s' (units: ms, s, m, h, d, w)", text);
		double add = v * (double)mul;
		if (add > (double)(INT64_MAX / 4) || (double)total + add > (double)(INT64_MAX / 4))
			return evfi_fail(EVF_EINVAL, "duration '%s' is too long", text);
		total += (int64_t)(add + 0.5);
		p += ulen;
		any = true;
	}
	*out_ms = total;
	return 0;
}

char *evf_duration_format(char *buf, size_t len, int64_t ms)
{
	static const struct { int64_t s; const char *unit; } u[] = {
		{ 86400, "d" }, { 3600, "h" }, { 60, "m" }, { 1, "s" },
	};
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (ms > 0 && ms < 1000) {
		snprintf(buf, len, "%lldms", (long long)ms);
		return buf;
	}
	for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
		if (s < u[i].s && u[i].s > 1)
			continue;
		/* the largest unit, then the next one unless it is zero */
		int64_t rest = i + 1 < sizeof u / sizeof *u ? s % u[i].s / u[i + 1].s : 0;
		if (rest)
			snprintf(buf, len, "%lld%s%lld%s", (long long)(s / u[i].s), u[i].unit,
			         (long long)rest, u[i + 1].unit);
		else
			snprintf(buf, len, "%lld%s", (long long)(s / u[i].s), u[i].unit);
		break;
	}
	return buf;
}

/* Days since the epoch of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int evf_time_parse(evf_time *out, const char *text)
{
	const char *p = text;
	int y, mo, d, h = 0, mi = 0, s = 0;
	int64_t usec = 0;

	if (!text || !*text)
		return evfi_fail(EVF_EINVAL, "empty time");
	if (*p == '@') {
		char *end;
		errno = 0;
		double v = strtod(p + 1, &end);
		if (errno || end == p + 1 || *end || v < 0 || v > 1e13)
			return evfi_fail(EVF_EINVAL, "malformed time '%s'", text);
		*out = (evf_time)(v * 1e6);
		return 0;
	}
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		goto bad;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			goto bad;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &s))
				goto bad;
			if (*p == '.') {
				p++;
				int n = 0;
				while (isdigit((unsigned char)*p)) {
					if (n < 6) {
						usec = usec * 10 + (*p - '0');
						n++;
					}
					p++;
				}
				if (n == 0)
					goto bad;
				while (n++ < 6)
					usec *= 10;
			}
		}
	}
	int64_t offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh))
			goto bad;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &om))
			goto bad;
		offset = sign * (oh * 3600 + om * 60);
	}
	if (*p)
		goto bad;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		goto bad;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset;
	*out = secs * 1000000 + usec;
	return 0;
bad:
	return evfi_fail(EVF_EINVAL, "malformed time '%s' (expected e.g. 2026-01-02T03:04:05Z)", text);
}

int evf_when_parse(evf_time *out, const char *text, evf_time now)
{
	int64_t ms;
	if (evf_time_parse(out, text) == 0)
		return 0;
	if (evf_duration_parse(&ms, text) == 0) {
		*out = now - ms * 1000;
		return 0;
	}
	return evfi_fail(EVF_EINVAL, "malformed time or duration '%s' (e.g. "
	                 "2026-01-02T03:04:05Z, @1767323045, 2h)", text ? text : "");
}

char *evf_time_format(char *buf, size_t len, evf_time t)
{
	time_t secs = (time_t)(t >= 0 ? t / 1000000 : (t - 999999) / 1000000);
	long usec = (long)(t - (evf_time)secs * 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
	return buf;
}
