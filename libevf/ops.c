/* ops.c - queries and operator actions, shared by evfctl, evf-top and
 * library users. */
#include "evf_internal.h"

#include <stdlib.h>
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

static int check_filter(const evf_filter *f)
{
	if (f->version != EVF_FILTER_VERSION)
		return evfi_fail(EVF_EINVAL, "filter version %u is not supported", f->version);
	if (f->states >> EVF_STATE__COUNT)
		return evfi_fail(EVF_EINVAL, "filter names an unknown state");
	if (f->limit < 0)
		return evfi_fail(EVF_EINVAL, "negative limit");
	if (f->nids && !f->ids)
		return evfi_fail(EVF_EINVAL, "filter has an id count but no ids");
	if ((unsigned)f->order >= EVF_ORDER__COUNT)
		return evfi_fail(EVF_EINVAL, "filter names an unknown order");
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
	int rc = check_filter(f);
	return rc ? rc : db->store->ops->query(db->store, f, cb, user);
}

int evf_count(evf_db *db, const evf_filter *f, int64_t *out)
{
	int rc = check_filter(f);
	return rc ? rc : db->store->ops->count(db->store, f, out);
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
	int rc = check_filter(f);
	if (rc)
		return rc;
	if ((unsigned)a > EVF_ACTION_RELEASE)
		return evfi_fail(EVF_EINVAL, "unknown action %d", (int)a);
	if (a == EVF_ACTION_SET_MAX_ATTEMPTS && arg < 1)
		return evfi_fail(EVF_EINVAL, "max attempts must be at least 1 (got %d)", arg);
	if (!f->all && !evfi_filter_narrows(f))
		return evfi_fail(EVF_EREFUSED, "refusing to %s every event without an "
		                 "explicit 'all'", evf_action_name(a));
	evf_filter g = *f;
	unsigned allowed = evf_action_states(a);
	g.states = f->states ? (f->states & allowed) : allowed;
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
