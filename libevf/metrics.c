/*
 * metrics.c - what a worker did, for Prometheus (a text file for
 * node_exporter's textfile collector) and StatsD (UDP).
 *
 * Outcomes are counted per type in memory.  Every interval, and once at the
 * end, the text file is rewritten whole (a temporary file in the same
 * directory, fsync, rename: readers never see half a file) and the counter
 * increments since the last flush go to StatsD.  Handler durations go to
 * StatsD as timers, many lines to a datagram, sent when a datagram is full
 * and at each flush.  The socket never blocks: a datagram that cannot be
 * sent is dropped, and only the first failure of each kind is logged.
 */
#include "evf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds of the duration histogram, in seconds (+Inf implied). */
static const double buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};
#define NBUCKETS (sizeof buckets / sizeof *buckets)

/* A datagram stays below a typical path MTU. */
#define PACKET_MAX 1400

enum { C_PROCESSED, C_FAILED, C_RETRIED, C_DEAD, C_SKIPPED, C_LOST, NCOUNTERS };
static const struct {
	const char *name, *help;
} counters[NCOUNTERS] = {
	{ "processed", "Events this worker processed successfully." },
	{ "failed", "Events whose handler failed (retried plus dead)." },
	{ "retried", "Failed events scheduled for another attempt." },
	{ "dead", "Failed events dead-lettered." },
	{ "skipped", "Events a when predicate skipped (marked processed)." },
	{ "lost", "Outcomes dropped because the lease had been taken over." },
};

typedef struct type_metrics {
	char *type;
	int64_t n[NCOUNTERS];
	int64_t sent[NCOUNTERS];      /* what StatsD has had */
	uint64_t le[NBUCKETS];        /* observations <= buckets[i] (not cumulative) */
	uint64_t count;
	double sum;                   /* seconds */
} type_metrics;

struct evfi_metrics {
	char *textfile;
	char *name;                   /* the worker label */
	const char *worker_id;        /* the worker's, for log lines */
	int sock;                     /* -1: no StatsD */
	int64_t interval_ms;
	struct timespec last;
	bool dirty;
	type_metrics *types;          /* sorted by type */
	size_t ntypes;
	char packet[PACKET_MAX];
	size_t plen;
	bool warned_file, warned_statsd;
	void (*log)(void *, const char *);
	void *log_user;
	evf_log_format log_format;
};

void evfi_prom_escape(evfi_buf *b, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\')
			evfi_buf_puts(b, "\\\\");
		else if (*p == '"')
			evfi_buf_puts(b, "\\\"");
		else if (*p == '\n')
			evfi_buf_puts(b, "\\n");
		else
			evfi_buf_add(b, p, 1);
	}
}

static void warn(evfi_metrics *m, bool *once, const char *fmt, ...) EVF_PRINTF(3, 4);
static void warn(evfi_metrics *m, bool *once, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (*once || !m->log)
		return;
	*once = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *line = evfi_log_warning(m->log_format, m->worker_id, msg, NULL);
	if (line)
		m->log(m->log_user, line);
	free(line);
}

/* ---- the text file -------------------------------------------------------- */

static void labels(evfi_buf *b, const evfi_metrics *m, const type_metrics *t)
{
	evfi_buf_puts(b, "type=\"");
	evfi_prom_escape(b, t->type);
	evfi_buf_puts(b, "\",worker=\"");
	evfi_prom_escape(b, m->name);
	evfi_buf_puts(b, "\"");
}

static void render(const evfi_metrics *m, evfi_buf *b)
{
	for (int c = 0; c < NCOUNTERS; c++) {
		evfi_buf_printf(b, "# HELP evf_worker_%s_total %s\n# TYPE evf_worker_%s_total "
		                "counter\n", counters[c].name, counters[c].help, counters[c].name);
		for (size_t i = 0; i < m->ntypes; i++) {
			evfi_buf_printf(b, "evf_worker_%s_total{", counters[c].name);
			labels(b, m, &m->types[i]);
			evfi_buf_printf(b, "} %lld\n", (long long)m->types[i].n[c]);
		}
	}
	evfi_buf_puts(b, "# HELP evf_worker_handler_duration_seconds Time a handler took "
	              "per event.\n# TYPE evf_worker_handler_duration_seconds histogram\n");
	for (size_t i = 0; i < m->ntypes; i++) {
		const type_metrics *t = &m->types[i];
		uint64_t cum = 0;
		for (size_t k = 0; k <= NBUCKETS; k++) {
			evfi_buf_puts(b, "evf_worker_handler_duration_seconds_bucket{");
			labels(b, m, t);
			if (k < NBUCKETS) {
				cum += t->le[k];
				evfi_buf_printf(b, ",le=\"%g\"} %llu\n", buckets[k],
				                (unsigned long long)cum);
			} else {
				evfi_buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)t->count);
			}
		}
		evfi_buf_puts(b, "evf_worker_handler_duration_seconds_sum{");
		labels(b, m, t);
		evfi_buf_printf(b, "} %.6f\n", t->sum);
		evfi_buf_puts(b, "evf_worker_handler_duration_seconds_count{");
		labels(b, m, t);
		evfi_buf_printf(b, "} %llu\n", (unsigned long long)t->count);
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Replace the file whole; 0 or -1 with errno set. */
static int write_textfile(const evfi_metrics *m)
{
	evfi_buf b = { 0 }, tmp = { 0 };
	const char *slash = strrchr(m->textfile, '/');
	int fd, err = 0;

	render(m, &b);
	/* a dot file: the textfile collector reads only *.prom */
	if (slash)
		evfi_buf_printf(&tmp, "%.*s/.%s.XXXXXX", (int)(slash - m->textfile),
		                m->textfile, slash + 1);
	else
		evfi_buf_printf(&tmp, ".%s.XXXXXX", m->textfile);
	if (b.oom || tmp.oom) {
		evfi_buf_free(&b);
		evfi_buf_free(&tmp);
		errno = ENOMEM;
		return -1;
	}
	if ((fd = mkstemp(tmp.data)) < 0) {
		err = errno;
	} else {
		if (fchmod(fd, 0644) || write_all(fd, b.data, b.len) || fsync(fd))
			err = errno;
		if (close(fd) && !err)
			err = errno;
		if (!err && rename(tmp.data, m->textfile))
			err = errno;
		if (err)
			unlink(tmp.data);
	}
	evfi_buf_free(&b);
	evfi_buf_free(&tmp);
	errno = err;
	return err ? -1 : 0;
}

/* ---- StatsD ------------------------------------------------------------------ */

static void send_packet(evfi_metrics *m)
{
	if (m->plen == 0)
		return;
	if (send(m->sock, m->packet, m->plen, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != ECONNREFUSED) /* nobody listening yet: UDP's ordinary case */
		warn(m, &m->warned_statsd, "metrics: cannot send to StatsD: %s "
		     "(further errors are not reported)", strerror(errno));
	m->plen = 0;
}

/* Append one line, sending the datagram first when it would overflow. */
static void statsd_line(evfi_metrics *m, const char *type, const char *what,
                        const char *value)
{
	char line[PACKET_MAX];
	size_t n = 0;

	n += (size_t)snprintf(line, sizeof line, "evf.");
	/* a type becomes a dotted path: anything else StatsD could misread
	 * (':', '|', '@', blanks) becomes '_' */
	for (const char *p = type; *p && n < sizeof line / 2; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
		line[n++] = ok ? ch : '_';
	}
	int w = snprintf(line + n, sizeof line - n, ".%s:%s\n", what, value);
	if (w < 0 || (size_t)w >= sizeof line - n)
		return;
	n += (size_t)w;
	if (m->plen + n > PACKET_MAX)
		send_packet(m);
	memcpy(m->packet + m->plen, line, n);
	m->plen += n;
}

/* "HOST:PORT" or "[V6ADDR]:PORT" to a connected non-blocking socket. */
static int statsd_open(evfi_metrics *m, const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hlen = colon ? (size_t)(colon - addr) : 0;

	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (!colon || hlen == 0 || hlen >= sizeof host || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) < 1 ||
	    atoi(colon + 1) > 65535 || strlen(colon + 1) > 5)
		return evfi_fail(EVF_EINVAL, "statsd address '%s' must be HOST:PORT", addr);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	struct addrinfo hints = { 0 }, *res = NULL;
	hints.ai_socktype = SOCK_DGRAM;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc)
		return evfi_fail(EVF_ERROR, "cannot resolve the statsd host '%s': %s", host,
		                 gai_strerror(rc));
	m->sock = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->sock < 0 || connect(m->sock, res->ai_addr, res->ai_addrlen)) {
		int e = errno;
		freeaddrinfo(res);
		return evfi_fail(EVF_ERROR, "cannot set up the statsd socket for '%s': %s",
		                 addr, strerror(e));
	}
	freeaddrinfo(res);
	return 0;
}

/* ---- the worker's side --------------------------------------------------------- */

int evfi_metrics_new(evfi_metrics **out, const evf_worker_options *o, const char *name,
                     const char *worker_id)
{
	int rc = 0;

	*out = NULL;
	if ((!o->metrics_textfile || !*o->metrics_textfile) && (!o->statsd || !*o->statsd))
		return 0;
	evfi_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	m->sock = -1;
	m->interval_ms = o->metrics_interval_ms > 0 ? o->metrics_interval_ms : 5000;
	m->worker_id = worker_id;
	m->log = o->log;
	m->log_user = o->log_user;
	m->log_format = o->log_format;
	m->name = evfi_strdup(name);
	clock_gettime(CLOCK_MONOTONIC, &m->last);
	if (!m->name) {
		evfi_metrics_free(m);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if (o->metrics_textfile && *o->metrics_textfile) {
		if (!(m->textfile = strdup(o->metrics_textfile)))
			rc = evfi_fail(EVF_ENOMEM, "out of memory");
		/* a path that cannot be written fails now, not silently later */
		else if (write_textfile(m))
			rc = evfi_fail(EVF_ERROR, "cannot write the metrics file '%s': %s",
			               m->textfile, strerror(errno));
	}
	if (!rc && o->statsd && *o->statsd)
		rc = statsd_open(m, o->statsd);
	if (rc) {
		evfi_metrics_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static type_metrics *type_of(evfi_metrics *m, const char *type)
{
	size_t lo = 0, hi = m->ntypes;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->types[mid].type, type);
		if (c == 0)
			return &m->types[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	type_metrics *t = realloc(m->types, (m->ntypes + 1) * sizeof *t);
	if (!t)
		return NULL;
	m->types = t;
	memmove(&t[lo + 1], &t[lo], (m->ntypes - lo) * sizeof *t);
	memset(&t[lo], 0, sizeof *t);
	if (!(t[lo].type = strdup(type))) {
		memmove(&t[lo], &t[lo + 1], (m->ntypes - lo) * sizeof *t);
		return NULL;
	}
	m->ntypes++;
	return &t[lo];
}

void evfi_metrics_outcome(evfi_metrics *m, const evf_outcome *o)
{
	if (!m)
		return;
	type_metrics *t = type_of(m, o->event->type);
	if (!t)
		return; /* out of memory: metrics are best effort */
	m->dirty = true;
	if (!o->applied)
		t->n[C_LOST]++;
	else if (o->skipped)
		t->n[C_SKIPPED]++;
	else if (o->ok)
		t->n[C_PROCESSED]++;
	else {
		t->n[C_FAILED]++;
		t->n[o->dead ? C_DEAD : C_RETRIED]++;
	}
	if (o->skipped)
		return; /* no handler ran */
	double s = o->duration_ms / 1000.0;
	for (size_t k = 0; k < NBUCKETS; k++)
		if (s <= buckets[k]) {
			t->le[k]++;
			break;
		}
	t->count++;
	t->sum += s;
	if (m->sock >= 0) {
		char v[48];
		snprintf(v, sizeof v, "%.3f|ms", o->duration_ms);
		statsd_line(m, t->type, "duration", v);
	}
}

void evfi_metrics_flush(evfi_metrics *m, bool force)
{
	struct timespec now;

	if (!m)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(now.tv_sec - m->last.tv_sec) * 1000 +
	             (now.tv_nsec - m->last.tv_nsec) / 1000000;
	if (!m->dirty || (!force && ms < m->interval_ms))
		return;
	m->last = now;
	m->dirty = false;
	if (m->textfile && write_textfile(m))
		warn(m, &m->warned_file, "metrics: cannot write '%s': %s (further errors "
		     "are not reported)", m->textfile, strerror(errno));
	if (m->sock < 0)
		return;
	for (size_t i = 0; i < m->ntypes; i++) {
		type_metrics *t = &m->types[i];
		for (int c = 0; c < NCOUNTERS; c++) {
			if (t->n[c] == t->sent[c])
				continue;
			char v[48];
			snprintf(v, sizeof v, "%lld|c", (long long)(t->n[c] - t->sent[c]));
			statsd_line(m, t->type, counters[c].name, v);
			t->sent[c] = t->n[c];
		}
	}
	send_packet(m);
}

void evfi_metrics_free(evfi_metrics *m)
{
	if (!m)
		return;
	if (m->sock >= 0)
		close(m->sock);
	for (size_t i = 0; i < m->ntypes; i++)
		free(m->types[i].type);
	free(m->types);
	free(m->textfile);
	free(m->name);
	free(m);
}
