/* health.c - the state of a queue judged against thresholds (what a
 * monitoring plugin runs), and the same state as Prometheus text. */
#include "evf_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

const char *evf_health_status_name(evf_health_status s)
{
	return (unsigned)s < sizeof status_names / sizeof *status_names
		? status_names[s] : "UNKNOWN";
}

/* One pair of thresholds: both >= 0 and warning <= critical.  The names
 * are those of the [health] settings. */
static int check_pair(const char *name, double warning, double critical, double max)
{
	if (isnan(warning) || isnan(critical) || warning < 0 || critical < 0)
		return evfi_fail(EVF_EINVAL, "%s thresholds must not be negative", name);
	if (warning > max || critical > max)
		return evfi_fail(EVF_EINVAL, "%s thresholds must be from 0 to %g", name, max);
	if (warning > critical)
		return evfi_fail(EVF_EINVAL, "%s_warning (%g) is above %s_critical (%g)",
		                 name, warning, name, critical);
	return 0;
}

int evf_health_thresholds_validate(const evf_health_thresholds *t)
{
	int rc;

	if (!t || t->version != EVF_HEALTH_THRESHOLDS_VERSION)
		return evfi_fail(EVF_EINVAL, "health thresholds version %u is not supported",
		                 t ? t->version : 0);
	if ((rc = check_pair("stuck", (double)t->stuck_warning, (double)t->stuck_critical,
	                     HUGE_VAL)) ||
	    (rc = check_pair("oldest_ready", (double)t->oldest_ready_warning_ms,
	                     (double)t->oldest_ready_critical_ms, HUGE_VAL)) ||
	    (rc = check_pair("failure_ratio", t->failure_ratio_warning,
	                     t->failure_ratio_critical, 1.0)) ||
	    (rc = check_pair("dead", (double)t->dead_warning, (double)t->dead_critical,
	                     HUGE_VAL)))
		return rc;
	if (t->window_ms <= 0)
		return evfi_fail(EVF_EINVAL, "the health window must be longer than 0");
	if (t->idle_queue_ms < 0)
		return evfi_fail(EVF_EINVAL, "idle_queue must not be negative");
	return 0;
}

static evf_health_status level(double v, double warning, double critical)
{
	if (v >= critical)
		return EVF_HEALTH_CRITICAL;
	if (warning >= 0 && v >= warning)
		return EVF_HEALTH_WARNING;
	return EVF_HEALTH_OK;
}

/* Fill one check; the detail is printf-formatted. */
static void set_check(evf_health_item *c, const char *name, double value,
                      double warning, double critical, const char *fmt, ...)
	EVF_PRINTF(6, 7);
static void set_check(evf_health_item *c, const char *name, double value,
                      double warning, double critical, const char *fmt, ...)
{
	evfi_buf b = { 0 };
	va_list ap;
	char line[400];

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	evfi_buf_puts(&b, line);
	c->name = name;
	c->available = true;
	c->value = value;
	c->warning = warning;
	c->critical = critical;
	c->status = level(value, warning, critical);
	c->detail = b.oom ? (evfi_buf_free(&b), NULL) : b.data;
}

/* A check that needs the extended columns, on a basic table: OK, so that
 * a plugin does not page about what the table cannot tell. */
static void set_unavailable(evf_health_item *c, const char *name)
{
	c->name = name;
	c->status = EVF_HEALTH_OK;
	c->available = false;
	c->warning = c->critical = -1;
	c->detail = evfi_strdup("not available on a basic table (evfctl migrate)");
}

int evf_health_check(evf_db *db, const evf_health_thresholds *t, evf_health_report **out)
{
	evf_health_thresholds defaults = EVF_HEALTH_THRESHOLDS_INIT;
	evf_overview ov;
	evf_activity *act = NULL;
	char d1[32], d2[32];
	int rc;

	*out = NULL;
	if (!t)
		t = &defaults;
	if ((rc = evf_health_thresholds_validate(t)))
		return rc;
	if ((rc = evf_overview_get(db, &ov)))
		return rc;
	evf_time now = ov.now ? ov.now : evf_now();
	if ((rc = evf_activity_get(db, now - t->window_ms * 1000, &act)))
		return rc;
	evf_health_report *r = calloc(1, sizeof *r);
	if (r)
		r->checks = calloc(5, sizeof *r->checks);
	if (!r || !r->checks) {
		free(r);
		evf_activity_free(act);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	r->nchecks = 5;
	bool ext = act->available;
	evf_health_item *c = r->checks;
	evf_duration_format(d1, sizeof d1, t->window_ms);

	if (ext) {
		int64_t n = ov.counts[EVF_STATE_STUCK];
		set_check(&c[0], "stuck", (double)n, (double)t->stuck_warning,
		          (double)t->stuck_critical, "%lld stuck events (lease expired)%s",
		          (long long)n, n ? ": 'evfctl stuck' lists them" : "");
	} else {
		set_unavailable(&c[0], "stuck");
	}

	int64_t age_ms = ov.oldest_ready ? (now - ov.oldest_ready) / 1000 : 0;
	if (age_ms < 0)
		age_ms = 0;
	if (ov.oldest_ready)
		set_check(&c[1], "oldest_ready", (double)age_ms / 1000.0,
		          (double)t->oldest_ready_warning_ms / 1000.0,
		          (double)t->oldest_ready_critical_ms / 1000.0,
		          "the oldest of %lld ready events has waited %s",
		          (long long)(ov.counts[EVF_STATE_PENDING] + ov.counts[EVF_STATE_STUCK]),
		          evf_duration_format(d2, sizeof d2, age_ms));
	else
		set_check(&c[1], "oldest_ready", 0, (double)t->oldest_ready_warning_ms / 1000.0,
		          (double)t->oldest_ready_critical_ms / 1000.0, "no event is ready");

	if (ext) {
		int64_t f = act->all.failed, k = act->all.completed;
		double ratio = f + k ? (double)f / (double)(f + k) : 0.0;
		if (f + k)
			set_check(&c[2], "failure_ratio", ratio, t->failure_ratio_warning,
			          t->failure_ratio_critical, "%.3f: %lld failed, %lld completed "
			          "in the last %s", ratio, (long long)f, (long long)k, d1);
		else
			set_check(&c[2], "failure_ratio", 0, t->failure_ratio_warning,
			          t->failure_ratio_critical, "no activity in the last %s", d1);
		if (!(f + k))
			c[2].status = EVF_HEALTH_OK; /* nothing ran: nothing failed */
		int64_t dead = act->all.dead;
		set_check(&c[3], "dead", (double)dead, (double)t->dead_warning,
		          (double)t->dead_critical, "%lld events dead-lettered in the last %s",
		          (long long)dead, d1);
	} else {
		set_unavailable(&c[2], "failure_ratio");
		set_unavailable(&c[3], "dead");
	}

	if (ext) {
		/* idle: work has waited past the limit and nobody holds a lease */
		bool idle = ov.oldest_ready && ov.workers == 0 && age_ms >= t->idle_queue_ms;
		double crit = (double)t->idle_queue_ms / 1000.0;
		if (ov.workers)
			set_check(&c[4], "idle_queue", 0, -1, crit, "%lld workers hold leases",
			          (long long)ov.workers);
		else if (!ov.oldest_ready)
			set_check(&c[4], "idle_queue", 0, -1, crit, "no event is ready");
		else
			set_check(&c[4], "idle_queue", idle ? (double)age_ms / 1000.0 : 0, -1, crit,
			          "events ready for %s and no worker holds a lease%s",
			          evf_duration_format(d2, sizeof d2, age_ms),
			          idle ? ": are the workers running?" : "");
		if (!idle)
			c[4].status = EVF_HEALTH_OK;
	} else {
		set_unavailable(&c[4], "idle_queue");
	}
	evf_activity_free(act);

	for (size_t i = 0; i < r->nchecks; i++) {
		if (!c[i].detail) {
			evf_health_report_free(r);
			return evfi_fail(EVF_ENOMEM, "out of memory");
		}
		if (c[i].status > r->status)
			r->status = c[i].status;
	}
	*out = r;
	return 0;
}

void evf_health_report_free(evf_health_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->checks && i < r->nchecks; i++)
		free(r->checks[i].detail);
	free(r->checks);
	free(r);
}

/* ---- Prometheus text ---------------------------------------------------- */

/* The window of evf_recent_events. */
#define RECENT_MS 300000

static void metric_head(evfi_buf *b, const char *name, const char *type, const char *help)
{
	evfi_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int evf_metrics_text(evf_db *db, char **out)
{
	evf_stats *st = NULL;
	evf_overview ov;
	evf_activity *act = NULL;
	evfi_buf b = { 0 };
	int rc;

	*out = NULL;
	if ((rc = evf_stats_get(db, &st)) || (rc = evf_overview_get(db, &ov))) {
		evf_stats_free(st);
		return rc;
	}
	evf_time now = ov.now ? ov.now : evf_now();
	if ((rc = evf_activity_get(db, now - (evf_time)RECENT_MS * 1000, &act))) {
		evf_stats_free(st);
		return rc;
	}
	metric_head(&b, "evf_events", "gauge", "Events in the table by state and type.");
	for (size_t i = 0; i < st->ntypes; i++)
		for (int s = 0; s < EVF_STATE__COUNT; s++) {
			evfi_buf_printf(&b, "evf_events{state=\"%s\",type=\"",
			                evf_state_name((evf_state)s));
			evfi_prom_escape(&b, st->types[i].type);
			evfi_buf_printf(&b, "\"} %lld\n", (long long)st->types[i].counts[s]);
		}
	double age = ov.oldest_ready && now > ov.oldest_ready
		? (double)(now - ov.oldest_ready) / 1e6 : 0.0;
	metric_head(&b, "evf_oldest_ready_age_seconds", "gauge",
	            "Seconds the oldest ready event has waited (0 when none is ready).");
	evfi_buf_printf(&b, "evf_oldest_ready_age_seconds %.3f\n", age);
	metric_head(&b, "evf_dead_events", "gauge",
	            "Dead events: dead-lettered, or processed with an error.");
	evfi_buf_printf(&b, "evf_dead_events %lld\n", (long long)st->counts[EVF_STATE_DEAD]);
	metric_head(&b, "evf_workers", "gauge", "Distinct workers holding a lease.");
	evfi_buf_printf(&b, "evf_workers %lld\n", (long long)ov.workers);
	if (act->available) {
		static const char *const outcome[] = { "completed", "failed", "dead" };
		metric_head(&b, "evf_recent_events", "gauge", "Events completed, failed and "
		            "dead-lettered in the last 5 minutes, by type.");
		for (size_t i = 0; i < act->ntypes; i++) {
			const evf_activity_counts *c = &act->types[i].c;
			const int64_t v[] = { c->completed, c->failed, c->dead };
			for (size_t k = 0; k < 3; k++) {
				evfi_buf_printf(&b, "evf_recent_events{outcome=\"%s\",type=\"",
				                outcome[k]);
				evfi_prom_escape(&b, act->types[i].type);
				evfi_buf_printf(&b, "\"} %lld\n", (long long)v[k]);
			}
		}
	}
	evf_stats_free(st);
	evf_activity_free(act);
	if (b.oom) {
		evfi_buf_free(&b);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	*out = b.data;
	return 0;
}
