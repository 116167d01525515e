/* common.c - what both backends do the same way around their SQL: the
 * state rule as SQL text, claim order, stats and overview arithmetic, and
 * the schema verdict. */
#include "evf_internal.h"

#include <stdlib.h>
#include <string.h>

/* The state rule of evfi_state_of() as SQL.  `pg` picks boolean literals
 * (false vs 0), `now` the clock (":now" bound on SQLite, "now()" on the
 * PostgreSQL server).  Basic tables have neither leases nor schedules. */
void evfi_sql_state(evfi_buf *b, evf_state st, bool ext, bool pg, const char *now)
{
	const char *f = pg ? "false" : "0", *t = pg ? "true" : "1";
	switch (st) {
	case EVF_STATE_DONE:
		evfi_buf_printf(b, "(processed = %s AND error = %s%s%s)", t, f,
		                ext ? " AND dead = " : "", ext ? f : "");
		break;
	case EVF_STATE_DEAD:
		if (ext)
			evfi_buf_printf(b, "(dead = %s OR (processed = %s AND error = %s))", t, t, t);
		else
			evfi_buf_printf(b, "(processed = %s AND error = %s)", t, t);
		break;
	case EVF_STATE_RUNNING:
	case EVF_STATE_STUCK:
		if (ext)
			evfi_buf_printf(b, "(processed = %s AND dead = %s AND locked_until %s %s)", f, f,
			                st == EVF_STATE_RUNNING ? ">" : "<=", now);
		else
			evfi_buf_printf(b, "(%s)", f);
		break;
	case EVF_STATE_FAILED:
		evfi_buf_printf(b, "(processed = %s%s%s%s AND error = %s)", f,
		                ext ? " AND dead = " : "", ext ? f : "",
		                ext ? " AND locked_until IS NULL" : "", t);
		break;
	case EVF_STATE_SCHEDULED:
		if (ext)
			evfi_buf_printf(b, "(processed = %s AND dead = %s AND locked_until IS NULL AND "
			                "error = %s AND not_before > %s)", f, f, f, now);
		else
			evfi_buf_printf(b, "(%s)", f);
		break;
	case EVF_STATE_PENDING:
	default:
		if (ext)
			evfi_buf_printf(b, "(processed = %s AND dead = %s AND locked_until IS NULL AND "
			                "error = %s AND (not_before IS NULL OR not_before <= %s))",
			                f, f, f, now);
		else
			evfi_buf_printf(b, "(processed = %s AND error = %s)", f, f);
		break;
	}
}

void evfi_sql_state_case(evfi_buf *b, bool ext, bool pg, const char *now)
{
	/* the order of the rule: dead before done, running before failed... */
	static const evf_state order[] = { EVF_STATE_DEAD, EVF_STATE_DONE,
		EVF_STATE_RUNNING, EVF_STATE_STUCK, EVF_STATE_FAILED, EVF_STATE_SCHEDULED };
	evfi_buf_puts(b, "CASE");
	for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
		evfi_buf_puts(b, " WHEN ");
		evfi_sql_state(b, order[i], ext, pg, now);
		evfi_buf_printf(b, " THEN %d", (int)order[i]);
	}
	evfi_buf_printf(b, " ELSE %d END", (int)EVF_STATE_PENDING);
}

/* The states of a filter's mask, OR-ed, or nothing when every state is in. */
void evfi_sql_states(evfi_buf *b, unsigned mask, bool ext, bool pg, const char *now)
{
	if (!mask || mask == (1u << EVF_STATE__COUNT) - 1)
		return;
	evfi_buf_puts(b, " AND (");
	bool first = true;
	for (int i = 0; i < EVF_STATE__COUNT; i++)
		if (mask & (1u << i)) {
			if (!first)
				evfi_buf_puts(b, " OR ");
			evfi_sql_state(b, (evf_state)i, ext, pg, now);
			first = false;
		}
	evfi_buf_puts(b, ")");
}

int evfi_cmp_claim_order(const void *a, const void *b)
{
	const evf_event *x = *(evf_event *const *)a, *y = *(evf_event *const *)b;
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->not_before != y->not_before)
		return x->not_before < y->not_before ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

void evfi_sort_claimed(evf_event **evs, size_t n)
{
	/* a claim reads its rows in this order already, unless timestamps
	 * of other formats sort differently as text; qsort costs 3% of a
	 * drain, the check a comparison per event */
	for (size_t i = 1; i < n; i++)
		if (evfi_cmp_claim_order(&evs[i - 1], &evs[i]) > 0) {
			qsort(evs, n, sizeof *evs, evfi_cmp_claim_order);
			return;
		}
}

int evfi_keep_first(const evf_event *ev, void *user)
{
	evf_event **dst = user;
	if (!(*dst = evfi_event_dup(ev)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	return 1; /* one is all that was asked for */
}

/* The record of `type` in an array of per-type records (each starting
 * with its `char *type`) kept sorted by type: found, or a new zeroed one
 * inserted in its place (rows may come in any order: the stats of a big
 * table merge two queries).  NULL when out of memory. */
static void *type_slot(void **arr, size_t *n, size_t size, const char *type)
{
	size_t lo = 0, hi = *n;
	if (!type)
		type = "";
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(*(char **)((char *)*arr + mid * size), type);
		if (c == 0)
			return (char *)*arr + mid * size;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	char *copy = strdup(type);
	char *grown = copy ? realloc(*arr, (*n + 1) * size) : NULL;
	if (!grown) {
		free(copy);
		return NULL;
	}
	*arr = grown;
	char *slot = grown + lo * size;
	memmove(slot + size, slot, (*n - lo) * size);
	memset(slot, 0, size);
	*(char **)slot = copy;
	(*n)++;
	return slot;
}

int evfi_stats_add(evf_stats *out, const char *type, int state, int64_t count)
{
	if (state < 0 || state >= EVF_STATE__COUNT)
		return 0;
	evf_type_counts *t = type_slot((void **)&out->types, &out->ntypes, sizeof *t, type);
	if (!t)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	t->counts[state] += count;
	out->counts[state] += count;
	out->total += count;
	return 0;
}

void evfi_sql_stats(evfi_buf *b, bool ext, bool pg, const char *now, const char *from,
                    const char *where)
{
	evfi_buf_puts(b, "SELECT type, ");
	evfi_sql_state_case(b, ext, pg, now);
	evfi_buf_printf(b, " AS st, count(*) FROM %s%s%s GROUP BY 1, 2", from,
	                where ? " WHERE " : "", where ? where : "");
}

bool evfi_stats_sampled(const evf_stats *sample, int64_t span)
{
	/* each draw stands for span / EVFI_STATS_SAMPLE ids */
	return sample->total * (span / EVFI_STATS_SAMPLE) > EVFI_EXACT_LIMIT;
}

int evfi_stats_add_done(evf_stats *out, const evf_stats *sample, int64_t span)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < sample->ntypes; i++) {
		int64_t n = sample->types[i].counts[EVF_STATE_DONE];
		if (n)
			rc = evfi_stats_add(out, sample->types[i].type, EVF_STATE_DONE,
			                    n * (span / EVFI_STATS_SAMPLE) +
			                    n * (span % EVFI_STATS_SAMPLE) / EVFI_STATS_SAMPLE);
	}
	out->estimated = true;
	return rc;
}

void evfi_overview_finish(evf_overview *out, int64_t total, bool estimated)
{
	int64_t rest = total;
	for (int i = 0; i < EVF_STATE__COUNT; i++)
		if (i != EVF_STATE_DONE)
			rest -= out->counts[i];
	out->counts[EVF_STATE_DONE] = rest > 0 ? rest : 0;
	out->total = total > 0 ? total : 0;
	out->estimated = estimated;
}

int evfi_schema_verdict(const char *table, int ncols, unsigned have_basic)
{
	if (ncols == 0)
		return evfi_fail(EVF_ESCHEMA, "table %s does not exist (run 'evfctl init')", table);
	if (have_basic != EVFI_ALL_BASIC)
		return evfi_fail(EVF_ESCHEMA, "table %s lacks the columns of an event table "
		                 "(id, type, date, parameters, processed, error, error_message)",
		                 table);
	return 0;
}

int evfi_fail_basic(const char *what, const char *table)
{
	return evfi_fail(EVF_EBASIC, "%s needs the extended columns, which table %s (made "
	                 "by the original package) lacks: 'evfctl migrate' adds them",
	                 what, table);
}

int evfi_emit_check_basic(const evf_emit_item *items, size_t n, const char *table)
{
	for (size_t i = 0; i < n; i++) {
		const evf_emit_options *o = &items[i].opts;
		if (o->key || o->priority || o->not_before || o->delay_ms || o->correlation_id ||
		    o->max_attempts)
			return evfi_fail_basic("emitting with a key, priority, schedule, "
			                       "correlation id or max attempts", table);
	}
	return 0;
}

/* Redundant conditions that let the planner skip what cannot match (the
 * answers do not change; the time does, on big tables):
 *  - live states only (pending, scheduled, running, failed, stuck): the
 *    rows are in the ready-queue index, and their ids lie between its
 *    smallest and largest, so an id-ordered walk (either way) can start
 *    there instead of at the first of millions of done rows;
 *  - dead only: every dead row carries the error flag, so the (error,
 *    date) index holds them all. */
bool evfi_states_live_only(unsigned mask)
{
	const unsigned live = (1u << EVF_STATE_PENDING) | (1u << EVF_STATE_SCHEDULED) |
		(1u << EVF_STATE_RUNNING) | (1u << EVF_STATE_FAILED) | (1u << EVF_STATE_STUCK);
	return mask && !(mask & ~live);
}

void evfi_sql_state_hints(evfi_buf *b, unsigned mask, bool ext, bool pg,
                          const char *table, const char *qt)
{
	if (!ext || !mask)
		return;
	if (evfi_states_live_only(mask)) {
		/* the minimum over the partial index alone: SQLite is told to
		 * use it; PostgreSQL would turn min(id) into a walk of the
		 * primary key, which OFFSET 0 keeps it from doing */
		if (pg)
			evfi_buf_printf(b, " AND processed = false AND dead = false AND id BETWEEN "
			                "coalesce((SELECT min(id) FROM (SELECT id FROM %s WHERE "
			                "processed = false AND dead = false OFFSET 0) live), 0) AND "
			                "coalesce((SELECT max(id) FROM (SELECT id FROM %s WHERE "
			                "processed = false AND dead = false OFFSET 0) live), 0)", qt, qt);
		else
			evfi_buf_printf(b, " AND processed = 0 AND dead = 0 AND id BETWEEN coalesce((SELECT "
			                "min(id) FROM %s INDEXED BY \"%s_ready\" WHERE processed = 0 "
			                "AND dead = 0), 0) AND coalesce((SELECT max(id) FROM %s INDEXED BY "
			                "\"%s_ready\" WHERE processed = 0 AND dead = 0), 0)",
			                qt, table, qt, table);
	} else if (mask == 1u << EVF_STATE_DEAD) {
		evfi_buf_printf(b, " AND error = %s", pg ? "true" : "1");
	}
}

/* The SET list of an operator action, the same on both backends but for
 * boolean literals and the clock.  For EVF_ACTION_SET_MAX_ATTEMPTS it ends
 * with "max_attempts = " and the caller appends its parameter; that action
 * needs the extended columns, which the caller checks. */
void evfi_sql_action_set(evfi_buf *b, evf_action a, bool ext, bool pg, const char *now)
{
	const char *f = pg ? "false" : "0", *t = pg ? "true" : "1";
	/* every dead row carries the error flag, so the overview finds dead
	 * rows through the (error, date) index; basic tables record a final
	 * failure as processed with error, as the original package did */
	static const char dead_msg[] = "error_message = coalesce(nullif(error_message, ''), "
		"'dead-lettered by an operator')";
	switch (a) {
	case EVF_ACTION_REQUEUE:
		evfi_buf_printf(b, "processed = %s, error = %s", f, f);
		if (ext)
			evfi_buf_printf(b, ", dead = %s, attempts = 0, not_before = %s, "
			                "locked_by = NULL, locked_until = NULL", f, now);
		break;
	case EVF_ACTION_MARK_PROCESSED:
		evfi_buf_printf(b, "processed = %s, error = %s", t, f);
		if (ext)
			evfi_buf_printf(b, ", dead = %s, processed_at = %s, locked_by = NULL, "
			                "locked_until = NULL", f, now);
		break;
	case EVF_ACTION_DEAD_LETTER:
		if (ext)
			evfi_buf_printf(b, "dead = %s, error = %s, %s, locked_by = NULL, "
			                "locked_until = NULL", t, t, dead_msg);
		else
			evfi_buf_printf(b, "processed = %s, error = %s, %s", t, t, dead_msg);
		break;
	case EVF_ACTION_SET_MAX_ATTEMPTS:
		evfi_buf_puts(b, "max_attempts = ");
		break;
	case EVF_ACTION_RELEASE:
		/* attempts stay: the claim that was lost counted its run */
		evfi_buf_printf(b, "locked_by = NULL, locked_until = NULL, not_before = %s", now);
		break;
	}
}

bool evfi_action_needs_ext(evf_action a)
{
	return a == EVF_ACTION_SET_MAX_ATTEMPTS || a == EVF_ACTION_RELEASE;
}

/* Two index walks in one statement: completions through the processed_at
 * index, failures through the last_error_at one (1 ms instead of a 1 s
 * scan at a million rows).  On SQLite the unary + keeps the planner off
 * the (type), (error, date) and (type, idempotency_key) indexes, which
 * it would otherwise walk whole to save a sort.  `completed`, when not
 * NULL, is a query of (type, completions) to use instead of the first. */
void evfi_sql_activity(evfi_buf *b, bool pg, const char *qt, const char *since,
                       const char *completed)
{
	const char *p = pg ? "processed" : "+processed = 1";
	const char *e = pg ? "NOT error" : "+error = 0";
	const char *g = pg ? "type" : "+type";
	const char *dead = pg ? "dead OR (processed AND error)"
	                      : "dead = 1 OR (processed = 1 AND error = 1)";
	if (completed)
		evfi_buf_printf(b, "SELECT type, n, 0, 0 FROM (%s) UNION ALL ", completed);
	else
		evfi_buf_printf(b, "SELECT type, count(*), 0, 0 FROM %s WHERE processed_at >= %s "
		                "AND %s AND %s AND dead = %s GROUP BY %s UNION ALL ",
		                qt, since, p, e, pg ? "false" : "0", g);
	evfi_buf_printf(b, "SELECT type, 0, count(*), sum(CASE WHEN %s THEN 1 ELSE 0 END) "
	                "FROM %s WHERE last_error_at >= %s GROUP BY %s ORDER BY 1",
	                dead, qt, since, g);
}

int evfi_activity_add(evf_activity *out, const char *type, int64_t completed,
                      int64_t failed, int64_t dead)
{
	evf_type_activity *t = type_slot((void **)&out->types, &out->ntypes, sizeof *t, type);
	if (!t)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	evf_activity_counts *c = &t->c;
	c->completed += completed;
	c->failed += failed;
	c->dead += dead;
	out->all.completed += completed;
	out->all.failed += failed;
	out->all.dead += dead;
	return 0;
}

char *evfi_strings_mapped(const char *const *in, size_t n, char *(*map)(const char *),
                          char *(*join)(const char *const *, size_t))
{
	char **m = calloc(n ? n : 1, sizeof *m);
	char *out = NULL;
	size_t i;
	for (i = 0; m && i < n; i++)
		if (!(m[i] = map(in[i])))
			break;
	if (m && i == n)
		out = join((const char *const *)m, n);
	for (size_t k = 0; m && k < i; k++)
		free(m[k]);
	free(m);
	return out;
}
