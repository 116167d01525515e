/* state.c - names of states and actions, and the C form of the state rule
 * (the backends hold the same rule in SQL; test_state keeps them equal). */
#include "evf_internal.h"

#include <string.h>

static const char *const state_names[EVF_STATE__COUNT] = {
	"pending", "scheduled", "running", "failed", "stuck", "dead", "done",
};

const char *evf_state_name(evf_state s)
{
	return (unsigned)s < EVF_STATE__COUNT ? state_names[s] : "unknown";
}

int evf_state_parse(evf_state *out, const char *name)
{
	for (int i = 0; i < EVF_STATE__COUNT; i++)
		if (name && !strcmp(name, state_names[i])) {
			*out = (evf_state)i;
			return 0;
		}
	return evfi_fail(EVF_EINVAL, "unknown state '%s' (expected pending, scheduled, "
	                 "running, failed, stuck, dead or done)", name ? name : "");
}

int evf_state_mask_parse(unsigned *out_mask, const char *list)
{
	unsigned mask = 0;
	const char *p = list;

	if (!list || !*list)
		return evfi_fail(EVF_EINVAL, "empty state list");
	while (*p) {
		size_t n = strcspn(p, ",");
		char name[32];
		if (n == 0 || n >= sizeof name) {
			if (n == 0)
				return evfi_fail(EVF_EINVAL, "empty state name in '%s'", list);
			return evfi_fail(EVF_EINVAL, "unknown state '%.*s'", (int)n, p);
		}
		memcpy(name, p, n);
		name[n] = '\0';
		evf_state s;
		int rc = evf_state_parse(&s, name);
		if (rc)
			return rc;
		mask |= 1u << s;
		p += n;
		if (*p == ',' && !*++p)
			return evfi_fail(EVF_EINVAL, "empty state name in '%s'", list);
	}
	*out_mask = mask;
	return 0;
}

evf_state evfi_state_of(const evf_event *ev, evf_time now)
{
	if (ev->dead || (ev->processed && ev->error))
		return EVF_STATE_DEAD;
	if (ev->processed)
		return EVF_STATE_DONE;
	if (ev->locked_until)
		return ev->locked_until > now ? EVF_STATE_RUNNING : EVF_STATE_STUCK;
	if (ev->error)
		return EVF_STATE_FAILED;
	if (ev->not_before > now)
		return EVF_STATE_SCHEDULED;
	return EVF_STATE_PENDING;
}

static const char *const action_names[] = {
	"requeue", "mark-processed", "dead-letter", "set-max-attempts", "release",
};

const char *evf_action_name(evf_action a)
{
	return (unsigned)a < sizeof action_names / sizeof action_names[0]
		? action_names[a] : "unknown";
}

#define S(x) (1u << EVF_STATE_##x)
unsigned evf_action_states(evf_action a)
{
	switch (a) {
	case EVF_ACTION_REQUEUE:
		return S(SCHEDULED) | S(FAILED) | S(STUCK) | S(DEAD) | S(DONE);
	case EVF_ACTION_MARK_PROCESSED:
		return S(PENDING) | S(SCHEDULED) | S(FAILED) | S(STUCK) | S(DEAD);
	case EVF_ACTION_DEAD_LETTER:
		return S(PENDING) | S(SCHEDULED) | S(FAILED) | S(STUCK);
	case EVF_ACTION_SET_MAX_ATTEMPTS:
		return S(PENDING) | S(SCHEDULED) | S(FAILED) | S(STUCK) | S(DEAD);
	case EVF_ACTION_RELEASE:
		return S(STUCK);
	}
	return 0;
}
#undef S
