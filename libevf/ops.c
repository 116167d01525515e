/* ops.c - queries and operator actions, shared by evfctl, evf-top and
 * library users. */
#include "evf_internal.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>

bool evfi_filter_narrows(const evf_filter *f)
{
	return f->states || (f->type && *f->type) || f->nids || f->since ||
	       f->until || f->errors || f->correlation_id || (f->text && *f->text);
}

static const char *const order_names[EVF_ORDER__COUNT] = {
	"id", "date", "priority", "attempts"
};

const char *evf_order_name(evf_order o)
{
	return (unsigned)o < EVF_ORDER__COUNT ? order_names[o] : "?";
}

int evf_order_parse(evf_order *out, const char *name)
{
	for (int i = 0; i < EVF_ORDER__COUNT; i++)
		if (name && !strcmp(name, order_names[i])) {
			*out = (evf_order)i;
			return 0;
		}
	return evfi_fail(EVF_EINVAL, "unknown order '%s' (id, date, priority, attempts)",
	                 name ? name : "");
}

int64_t evf_order_key(evf_order o, const evf_event *ev)
{
	switch (o) {
	case EVF_ORDER_DATE:
		return ev->date;
	case EVF_ORDER_PRIORITY:
		return ev->priority;
	case EVF_ORDER_ATTEMPTS:
		return ev->attempts;
	default:
		return ev->id;
	}
}

/* Validate a caller's filter into *out, a whole current-version struct:
 * a version 1 filter ends before budget_ms, so only its fields are read. */
static int take_filter(const evf_filter *f, evf_filter *out)
{
	static const evf_filter init = EVF_FILTER_INIT;

	if (f->version < 1 || f->version > EVF_FILTER_VERSION)
		return evfi_fail(EVF_EINVAL, "filter version %u is not supported", f->version);
	*out = init;
	memcpy(out, f, f->version >= 2 ? sizeof *out : offsetof(evf_filter, budget_ms));
	if (out->states >> EVF_STATE__COUNT)
		return evfi_fail(EVF_EINVAL, "filter names an unknown state");
	if (out->limit < 0)
		return evfi_fail(EVF_EINVAL, "negative limit");
	if (out->nids && !out->ids)
		return evfi_fail(EVF_EINVAL, "filter has an id count but no ids");
	if ((unsigned)out->order >= EVF_ORDER__COUNT)
		return evfi_fail(EVF_EINVAL, "filter names an unknown order");
	if (out->budget_ms < 0)
		return evfi_fail(EVF_EINVAL, "negative time budget");
	return 0;
}

int evf_get(evf_db *db, int64_t id, evf_event **out)
{
	*out = NULL;
	return db->store->ops->get(db->store, id, out);
}

int evf_query(evf_db *db, const evf_filter *f,
              int (*cb)(const evf_event *ev, void *user), void *user)
{
	evf_filter g;
	int rc = take_filter(f, &g);
	return rc ? rc : db->store->ops->query(db->store, &g, cb, user);
}

int evf_count(evf_db *db, const evf_filter *f, int64_t *out)
{
	evf_filter g;
	int rc = take_filter(f, &g);
	return rc ? rc : db->store->ops->count(db->store, &g, out);
}

int evf_stats_get(evf_db *db, evf_stats **out)
{
	evf_stats *s = calloc(1, sizeof *s);
	int rc;

	*out = NULL;
	if (!s)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	if ((rc = db->store->ops->stats(db->store, s))) {
		evf_stats_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void evf_stats_free(evf_stats *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ntypes; i++)
		free(s->types[i].type);
	free(s->types);
	free(s);
}

int evf_act(evf_db *db, evf_action a, const evf_filter *f, int arg,
            bool dry_run, int64_t *affected)
{
	evf_filter g;
	int rc = take_filter(f, &g);
	if (rc)
		return rc;
	if ((unsigned)a > EVF_ACTION_RELEASE)
		return evfi_fail(EVF_EINVAL, "unknown action %d", (int)a);
	if (a == EVF_ACTION_SET_MAX_ATTEMPTS && arg < 1)
		return evfi_fail(EVF_EINVAL, "max attempts must be at least 1 (got %d)", arg);
	if (!g.all && !evfi_filter_narrows(&g))
		return evfi_fail(EVF_EREFUSED, "refusing to %s every event without an "
		                 "explicit 'all'", evf_action_name(a));
	unsigned allowed = evf_action_states(a);
	g.states = g.states ? (g.states & allowed) : allowed;
	g.limit = 0;
	g.after_id = 0;
	if (!g.states) {
		*affected = 0;
		return 0;
	}
	return db->store->ops->act(db->store, a, &g, arg, dry_run, affected);
}

int evf_overview_get(evf_db *db, evf_overview *out)
{
	memset(out, 0, sizeof *out);
	return db->store->ops->overview(db->store, out);
}

int evf_error_groups_get(evf_db *db, size_t limit, evf_error_group **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (limit == 0 || limit > 1000)
		return evfi_fail(EVF_EINVAL, "error group limit must be 1 to 1000");
	return db->store->ops->error_groups(db->store, limit, out, n);
}

void evf_error_groups_free(evf_error_group *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++) {
		free(g[i].type);
		free(g[i].message);
	}
	free(g);
}

int evf_activity_get(evf_db *db, evf_time since, evf_activity **out)
{
	evf_activity *a = calloc(1, sizeof *a);
	int rc;

	*out = NULL;
	if (!a)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	a->since = since;
	if ((rc = evf_schema_extended(db)) < 0) {
		free(a);
		return rc;
	}
	if (rc == 0) {
		/* no processed_at nor last_error_at: unknown, not zero */
		a->all = (evf_activity_counts){ -1, -1, -1 };
		*out = a;
		return 0;
	}
	a->available = true;
	if ((rc = db->store->ops->activity(db->store, since, a))) {
		evf_activity_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void evf_activity_free(evf_activity *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->ntypes; i++)
		free(a->types[i].type);
	free(a->types);
	free(a);
}
