/*
 * contract.c - what every storage backend must do, tested through the
 * public API (and the store vtable where a test needs a second, stale
 * worker).  Run by contract_sqlite.c, and by contract_pg.c on PostgreSQL.
 */
#include "contract.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const contract_backend *contract;

evf_db *contract_db(evf_options *o)
{
	evf_options d = EVF_OPTIONS_INIT;
	if (!o) {
		o = &d;
		o->backoff_base_ms = 1;
		o->backoff_max_ms = 2;
	}
	evf_db *db = NULL;
	int rc = contract->open_fresh(&db, o);
	if (rc)
		fail_msg("opening a fresh %s database: %s", contract->name, evf_error_last());
	return db;
}

static int64_t emit(evf_db *db, const char *type, const char *json)
{
	evf_emit_result r;
	EVF_OK_OR_FAIL(evf_emit(db, type, json, NULL, &r));
	assert_false(r.duplicate);
	return r.id;
}

static evf_event *get(evf_db *db, int64_t id)
{
	evf_event *ev = NULL;
	EVF_OK_OR_FAIL(evf_get(db, id, &ev));
	return ev;
}

static int get_attempts(evf_db *db, int64_t id)
{
	evf_event *ev = get(db, id);
	int a = ev->attempts;
	evf_event_free(ev);
	return a;
}

static int collect(const evf_event *ev, void *user);

static evf_state state_of(evf_db *db, int64_t id)
{
	evf_event *ev = get(db, id);
	evf_state s = ev->state;
	evf_event_free(ev);
	return s;
}

int64_t contract_count_state(evf_db *db, evf_state s)
{
	evf_filter f = EVF_FILTER_INIT;
	int64_t n = -1;
	f.states = 1u << s;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	return n;
}

/* Claim through the store as a named worker, as a second process would. */
static size_t claim(evf_db *db, const char *worker, int limit, int64_t lock_ms,
                    evf_event ***out)
{
	evf_claim c = { .worker_id = worker, .limit = limit, .lock_ms = lock_ms };
	size_t n = 0;
	EVF_OK_OR_FAIL(db->store->ops->claim(db->store, &c, out, &n));
	return n;
}

static void free_events(evf_event **evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		evf_event_free(evs[i]);
	free(evs);
}

/* ---- schema and emit ---------------------------------------------------- */

static void test_init_idempotent(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	EVF_OK_OR_FAIL(evf_init(db));
	assert_int_equal(evf_schema_extended(db), 1);
	evf_close(db);
}

static void test_emit_roundtrip(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
	o.priority = 3;
	o.correlation_id = "corr-1";
	o.key = "k1";
	o.max_attempts = 7;
	evf_emit_result r;
	evf_time before = evf_now();
	EVF_OK_OR_FAIL(evf_emit(db, "order.created", "{\"n\": 1, \"s\": \"\\u00e9t\\u00e9\"}", &o, &r));
	evf_event *ev = get(db, r.id);
	assert_string_equal(ev->type, "order.created");
	char *pj = evf_event_to_json(ev, false);
	assert_non_null(strstr(pj, "\"n\":1"));
	free(pj);
	assert_int_equal(ev->priority, 3);
	assert_string_equal(ev->correlation_id, "corr-1");
	assert_string_equal(ev->idempotency_key, "k1");
	assert_int_equal(ev->max_attempts, 7);
	assert_int_equal(ev->attempts, 0);
	assert_int_equal(ev->state, EVF_STATE_PENDING);
	assert_true(ev->date >= before - 1000000 && ev->date <= evf_now() + 1000000);
	assert_false(ev->processed);
	evf_event_free(ev);

	/* defaults */
	int64_t id = emit(db, "plain", NULL);
	ev = get(db, id);
	assert_string_equal(ev->parameters, "{}");
	assert_int_equal(ev->max_attempts, 5);
	assert_null(ev->correlation_id);
	evf_event_free(ev);
	evf_close(db);
}

static void test_emit_invalid_json_writes_nothing(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	assert_int_equal(evf_emit(db, "t", "{bad", NULL, NULL), EVF_EINVAL);
	assert_non_null(strstr(evf_error_last(), "JSON"));
	assert_int_equal(evf_emit(db, "", "{}", NULL, NULL), EVF_EINVAL);
	evf_emit_item items[3] = {
		{ "a", "{}", EVF_EMIT_OPTIONS_INIT },
		{ "b", "[1,2]", EVF_EMIT_OPTIONS_INIT },
		{ "c", "nope", EVF_EMIT_OPTIONS_INIT },
	};
	assert_int_equal(evf_emit_batch(db, items, 3, NULL), EVF_EINVAL);
	evf_filter f = EVF_FILTER_INIT;
	int64_t n = -1;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 0);
	evf_close(db);
}

/* Long enough to cross the SQLite backend's statements of 64 rows, with
 * keyed items (inserted alone) splitting the runs: every id must name
 * its own item. */
static void test_emit_big_batch(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	enum { N = 300 };
	evf_emit_item items[N];
	evf_emit_result res[N];
	char params[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(params[i], sizeof params[i], "{\"i\":%d}", i);
		items[i] = (evf_emit_item){ i % 2 ? "odd" : "even",
			i == 7 ? "{\"s\":\"tab\\there\\nnew \\\\ back\"}" : params[i],
			EVF_EMIT_OPTIONS_INIT };
	}
	items[5].opts.correlation_id = "c\t5";
	items[6].opts.priority = -3;
	items[6].opts.delay_ms = 3600000;
	items[100].opts.key = "k100";
	items[201].opts.key = "k201";
	items[203].opts.key = "k201"; /* "odd" too: a duplicate of 201 */
	EVF_OK_OR_FAIL(evf_emit_batch(db, items, N, res));
	for (int i = 1; i < N; i++)
		if (i != 203 && i != 204)
			assert_int_equal(res[i].id, res[i - 1].id + 1);
	assert_true(res[203].duplicate);
	assert_int_equal(res[203].id, res[201].id);
	assert_int_equal(res[204].id, res[202].id + 1); /* a duplicate uses up no id */
	for (int i = 0; i < N; i++) {
		evf_event *ev = get(db, res[i].id);
		assert_string_equal(ev->type, i % 2 ? "odd" : "even");
		if (i != 7 && i != 203) { /* jsonb (PostgreSQL) adds a space */
			char *d = ev->parameters;
			for (const char *c = ev->parameters; *c; c++)
				if (*c != ' ')
					*d++ = *c;
			*d = '\0';
			assert_string_equal(ev->parameters, params[i]);
		}
		evf_event_free(ev);
	}
	evf_event *ev = get(db, res[7].id);
	assert_non_null(strstr(ev->parameters, "tab\\there\\nnew \\\\ back"));
	evf_event_free(ev);
	ev = get(db, res[5].id);
	assert_string_equal(ev->correlation_id, "c\t5");
	evf_event_free(ev);
	ev = get(db, res[6].id);
	assert_int_equal(ev->priority, -3);
	assert_int_equal(ev->state, EVF_STATE_SCHEDULED);
	evf_event_free(ev);
	ev = get(db, res[100].id);
	assert_string_equal(ev->idempotency_key, "k100");
	evf_event_free(ev);
	assert_int_equal(contract_count_state(db, EVF_STATE_PENDING), N - 2);
	evf_close(db);
}

/* A batch without keys (COPY on PostgreSQL, in binary when the table's
 * column types allow) must store every column as a row-by-row emit
 * would: check each one back. */
void contract_check_keyless_batch(evf_db *db, const char *type)
{
	enum { N = 40 };
	evf_emit_item items[N];
	evf_emit_result res[N];
	char params[N][48];
	evf_time at = evf_now() + 7200 * INT64_C(1000000) + 123457;
	for (int i = 0; i < N; i++) {
		snprintf(params[i], sizeof params[i], "{\"i\":%d,\"s\":\"\u00e9\\t\\n\"}", i);
		items[i] = (evf_emit_item){ type, params[i], EVF_EMIT_OPTIONS_INIT };
	}
	items[1].parameters = NULL;
	items[2].opts.priority = -70000;
	items[3].opts.delay_ms = 1500;
	items[4].opts.not_before = at;
	items[5].opts.correlation_id = "corr\t\\5";
	items[6].opts.max_attempts = 9;
	evf_time before = evf_now();
	EVF_OK_OR_FAIL(evf_emit_batch(db, items, N, res));
	evf_time after = evf_now();
	evf_emit_result single;
	EVF_OK_OR_FAIL(evf_emit(db, type, "{}", NULL, &single));
	evf_event *one = get(db, single.id);
	evf_time date = 0;
	for (int i = 0; i < N; i++) {
		if (i)
			assert_int_equal(res[i].id, res[i - 1].id + 1);
		assert_false(res[i].duplicate);
		evf_event *ev = get(db, res[i].id);
		assert_string_equal(ev->type, type);
		if (i == 0)
			date = ev->date;
		assert_int_equal(ev->date, date); /* one server time for the batch */
		assert_false(ev->processed);
		assert_false(ev->error);
		assert_null(ev->idempotency_key);
		assert_int_equal(ev->attempts, 0);
		assert_int_equal(ev->priority, i == 2 ? -70000 : 0);
		assert_int_equal(ev->not_before, i == 3 ? date + 1500000 : i == 4 ? at : date);
		assert_int_equal(ev->max_attempts, i == 6 ? 9 : one->max_attempts);
		if (i == 5)
			assert_string_equal(ev->correlation_id, "corr\t\\5");
		else
			assert_null(ev->correlation_id);
		cJSON *j = cJSON_Parse(ev->parameters);
		assert_non_null(j);
		if (i == 1) {
			assert_int_equal(cJSON_GetArraySize(j), 0);
		} else {
			assert_int_equal(cJSON_GetObjectItem(j, "i")->valueint, i);
			assert_string_equal(cJSON_GetObjectItem(j, "s")->valuestring, "\xc3\xa9\t\n");
		}
		cJSON_Delete(j);
		assert_int_equal(ev->state, i == 3 || i == 4 ? EVF_STATE_SCHEDULED : EVF_STATE_PENDING);
		evf_event_free(ev);
	}
	/* the database's clock: a second either way of this machine's */
	assert_true(date > before - 1000000 && date < after + 1000000);
	evf_event_free(one);
}

static void test_emit_keyless_batch(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	contract_check_keyless_batch(db, "copy.me");
	evf_close(db);
}

static void test_idempotency(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
	evf_emit_result a, b, c;
	o.key = "order-42";
	EVF_OK_OR_FAIL(evf_emit(db, "order.created", "{}", &o, &a));
	EVF_OK_OR_FAIL(evf_emit(db, "order.created", "{\"other\":true}", &o, &b));
	EVF_OK_OR_FAIL(evf_emit(db, "order.paid", "{}", &o, &c));
	assert_false(a.duplicate);
	assert_true(b.duplicate);
	assert_int_equal(a.id, b.id);
	assert_false(c.duplicate);
	assert_int_equal(c.id, a.id + 1); /* a duplicate uses up no id */
	/* a duplicate inside a batch reports the first */
	evf_emit_item items[2] = { { "x", "{}", EVF_EMIT_OPTIONS_INIT }, { "x", "{}", EVF_EMIT_OPTIONS_INIT } };
	items[0].opts.key = items[1].opts.key = "same";
	evf_emit_result r[2];
	EVF_OK_OR_FAIL(evf_emit_batch(db, items, 2, r));
	assert_false(r[0].duplicate);
	assert_true(r[1].duplicate);
	assert_int_equal(r[0].id, r[1].id);
	evf_filter f = EVF_FILTER_INIT;
	int64_t n;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 3);
	evf_close(db);
}

static void test_claim_order_and_schedule(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
	o.priority = 5;
	evf_emit_result low, later;
	EVF_OK_OR_FAIL(evf_emit(db, "t", "{}", &o, &low));
	int64_t first = emit(db, "t", "{}");
	int64_t second = emit(db, "t", "{}");
	o.priority = 0;
	o.delay_ms = 3600 * 1000;
	EVF_OK_OR_FAIL(evf_emit(db, "t", "{}", &o, &later));
	evf_emit_options urgent = EVF_EMIT_OPTIONS_INIT;
	urgent.priority = -1;
	evf_emit_result u;
	EVF_OK_OR_FAIL(evf_emit(db, "t", "{}", &urgent, &u));

	assert_int_equal(state_of(db, later.id), EVF_STATE_SCHEDULED);
	evf_event **evs;
	size_t n = claim(db, "w1", 10, 60000, &evs);
	assert_int_equal(n, 4);
	assert_int_equal(evs[0]->id, u.id);
	assert_int_equal(evs[1]->id, first);
	assert_int_equal(evs[2]->id, second);
	assert_int_equal(evs[3]->id, low.id);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(evs[i]->attempts, 1);
		assert_string_equal(evs[i]->locked_by, "w1");
		assert_int_equal(evs[i]->state, EVF_STATE_RUNNING);
	}
	free_events(evs, n);
	assert_int_equal(contract_count_state(db, EVF_STATE_RUNNING), 4);
	/* nothing else is ready: the scheduled one waits */
	assert_int_equal(claim(db, "w2", 10, 60000, &evs), 0);
	free(evs);
	evf_close(db);
}

/* ---- leases -------------------------------------------------------------- */

static void test_complete_and_stale_worker(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_store *s = db->store;
	int64_t id = emit(db, "t", "{}");
	evf_event **evs;
	assert_int_equal(claim(db, "stale", 1, 30, &evs), 1);
	evf_lease old = { .id = evs[0]->id, .attempts = evs[0]->attempts };
	free_events(evs, 1);
	tu_sleep_ms(80);
	assert_int_equal(state_of(db, id), EVF_STATE_STUCK);
	assert_int_equal(contract_count_state(db, EVF_STATE_STUCK), 1);

	/* another worker reclaims; the attempt counts */
	assert_int_equal(claim(db, "fresh", 1, 60000, &evs), 1);
	assert_int_equal(evs[0]->attempts, 2);
	evf_lease cur = { .id = evs[0]->id, .attempts = evs[0]->attempts };
	free_events(evs, 1);

	/* the stale worker can neither complete nor fail nor extend it */
	bool applied = true;
	EVF_OK_OR_FAIL(s->ops->complete(s, "stale", &old, 1, &applied));
	assert_false(applied);
	evf_failure_rec fr = { .lease = old, .message = "late", .code = "E" };
	applied = true;
	EVF_OK_OR_FAIL(s->ops->fail_batch(s, "stale", &fr, 1, &applied));
	assert_false(applied);
	evf_event *ev = get(db, id);
	assert_int_equal(ev->state, EVF_STATE_RUNNING);
	assert_string_equal(ev->locked_by, "fresh");
	assert_false(ev->error);
	evf_event_free(ev);
	/* even with the right name, an older attempt is not the lease */
	EVF_OK_OR_FAIL(s->ops->complete(s, "fresh", &old, 1, &applied));
	assert_false(applied);

	EVF_OK_OR_FAIL(s->ops->complete(s, "fresh", &cur, 1, &applied));
	assert_true(applied);
	ev = get(db, id);
	assert_int_equal(ev->state, EVF_STATE_DONE);
	assert_true(ev->processed_at > 0);
	assert_null(ev->locked_by);
	evf_event_free(ev);
	evf_close(db);
}

/* A batch whose leases are partly lost: only the held ones are
 * completed and reported applied; a held row that had failed before
 * loses its error flag; the lost one keeps its new holder's lease. */
static void test_complete_mixed_batch(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_store *s = db->store;
	int64_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = emit(db, "t", "{}");
	evf_event **evs;
	/* the first fails once and is ready again at once */
	assert_int_equal(claim(db, "w", 1, 60000, &evs), 1);
	evf_failure_rec fr = { .lease = { .id = evs[0]->id, .attempts = evs[0]->attempts },
	                       .message = "once" };
	free_events(evs, 1);
	bool one = false;
	EVF_OK_OR_FAIL(s->ops->fail_batch(s, "w", &fr, 1, &one));
	assert_true(one);
	/* a batch of all four; the third's lease runs out and is taken over */
	assert_int_equal(claim(db, "w", 4, 60000, &evs), 4);
	evf_lease l[4];
	for (int i = 0; i < 4; i++) { /* l[] in emit order: the retry came last */
		int k = (int)(evs[i]->id - ids[0]);
		assert_in_range(k, 0, 3);
		assert_int_equal(evs[i]->id, ids[k]);
		assert_string_equal(evs[i]->locked_by, "w");
		assert_int_equal(evs[i]->state, EVF_STATE_RUNNING);
		l[k] = (evf_lease){ .id = evs[i]->id, .attempts = evs[i]->attempts };
	}
	assert_int_equal(l[0].attempts, 2);
	free_events(evs, 4);
	evf_lease lost = l[2];
	EVF_OK_OR_FAIL(s->ops->release(s, "w", &lost, 1));
	assert_int_equal(claim(db, "other", 1, 60000, &evs), 1);
	assert_int_equal(evs[0]->id, ids[2]);
	free_events(evs, 1);

	bool ap[4] = { false, false, true, false };
	EVF_OK_OR_FAIL(s->ops->complete(s, "w", l, 4, ap));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ap[i], i != 2);
		evf_event *ev = get(db, ids[i]);
		assert_int_equal(ev->state, i == 2 ? EVF_STATE_RUNNING : EVF_STATE_DONE);
		assert_false(ev->error);
		if (i == 2)
			assert_string_equal(ev->locked_by, "other");
		evf_event_free(ev);
	}
	/* and a batch that holds all its leases reports them all */
	int64_t more[3];
	for (int i = 0; i < 3; i++)
		more[i] = emit(db, "t", "{}");
	size_t n = claim(db, "w", 10, 60000, &evs);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		l[i] = (evf_lease){ .id = evs[i]->id, .attempts = evs[i]->attempts };
	free_events(evs, n);
	memset(ap, 0, sizeof ap);
	EVF_OK_OR_FAIL(s->ops->complete(s, "w", l, n, ap));
	for (size_t i = 0; i < n; i++) {
		assert_true(ap[i]);
		assert_int_equal(state_of(db, more[i]), EVF_STATE_DONE);
	}
	/* the same holder's lease between two it completes is left alone,
	 * also when the list names one twice (n ids over n consecutive
	 * places, but not all of them); a run of consecutive ids in any
	 * order completes exactly those */
	int64_t five[5];
	for (int i = 0; i < 5; i++)
		five[i] = emit(db, "t", "{}");
	n = claim(db, "w", 10, 60000, &evs);
	assert_int_equal(n, 5);
	evf_lease g[5];
	for (size_t i = 0; i < n; i++) {
		int k = (int)(evs[i]->id - five[0]);
		assert_in_range(k, 0, 4);
		g[k] = (evf_lease){ .id = evs[i]->id, .attempts = evs[i]->attempts };
	}
	free_events(evs, n);
	evf_lease twice[3] = { g[2], g[0], g[0] };
	EVF_OK_OR_FAIL(s->ops->complete(s, "w", twice, 3, NULL));
	evf_lease run[2] = { g[4], g[3] };
	EVF_OK_OR_FAIL(s->ops->complete(s, "w", run, 2, NULL));
	for (int i = 0; i < 5; i++)
		assert_int_equal(state_of(db, five[i]), i == 1 ? EVF_STATE_RUNNING : EVF_STATE_DONE);
	EVF_OK_OR_FAIL(s->ops->complete(s, "w", &g[1], 1, NULL));
	assert_int_equal(state_of(db, five[1]), EVF_STATE_DONE);
	evf_close(db);
}

/* Leases of two attempts in one call, the first group with a lease lost
 * to another worker: extend, release and complete (with no applied
 * flags asked for) still reach every lease held in the other group. */
static void test_lost_lease_in_a_mixed_batch(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_store *s = db->store;
	int64_t x = emit(db, "t", "{}"), y = emit(db, "t", "{}"), z = emit(db, "t", "{}");
	evf_event **evs;
	assert_int_equal(claim(db, "w", 1, 60000, &evs), 1); /* x fails once */
	evf_failure_rec fr = { .lease = { .id = evs[0]->id, .attempts = evs[0]->attempts },
	                       .message = "once" };
	free_events(evs, 1);
	EVF_OK_OR_FAIL(s->ops->fail_batch(s, "w", &fr, 1, NULL));
	tu_sleep_ms(20);
	assert_int_equal(claim(db, "w", 3, 300, &evs), 3);
	evf_lease l[3]; /* y first: its group (y, z) is the short one */
	for (int i = 0; i < 3; i++) {
		int k = evs[i]->id == y ? 0 : evs[i]->id == z ? 1 : 2;
		l[k] = (evf_lease){ .id = evs[i]->id, .attempts = evs[i]->attempts };
	}
	free_events(evs, 3);
	assert_int_equal(l[2].attempts, 2);
	EVF_OK_OR_FAIL(s->ops->release(s, "w", &l[0], 1));
	assert_int_equal(claim(db, "other", 1, 60000, &evs), 1);
	assert_int_equal(evs[0]->id, y);
	free_events(evs, 1);

	EVF_OK_OR_FAIL(s->ops->extend(s, "w", l, 3, 60000));
	tu_sleep_ms(400); /* past the claim's 300 ms lease */
	assert_int_equal(state_of(db, x), EVF_STATE_RUNNING);
	assert_int_equal(state_of(db, z), EVF_STATE_RUNNING);
	EVF_OK_OR_FAIL(s->ops->release(s, "w", l, 3));
	assert_int_equal(state_of(db, x), EVF_STATE_FAILED); /* ready, its failure kept */
	assert_int_equal(state_of(db, z), EVF_STATE_PENDING);
	assert_int_equal(state_of(db, y), EVF_STATE_RUNNING);
	assert_int_equal(get_attempts(db, x), 1); /* a release gives the attempt back */

	assert_int_equal(claim(db, "w", 2, 60000, &evs), 2);
	for (int i = 0; i < 2; i++)
		l[evs[i]->id == z ? 1 : 2] = (evf_lease){ .id = evs[i]->id,
		                                          .attempts = evs[i]->attempts };
	free_events(evs, 2);
	EVF_OK_OR_FAIL(s->ops->complete(s, "w", l, 3, NULL));
	assert_int_equal(state_of(db, x), EVF_STATE_DONE);
	assert_int_equal(state_of(db, z), EVF_STATE_DONE);
	assert_int_equal(state_of(db, y), EVF_STATE_RUNNING);
	evf_close(db);
}

static void test_extend_and_release(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	evf_store *s = db->store;
	int64_t id = emit(db, "t", "{}");
	evf_event **evs;
	assert_int_equal(claim(db, "w", 1, 50, &evs), 1);
	evf_lease l = { .id = evs[0]->id, .attempts = evs[0]->attempts };
	free_events(evs, 1);
	EVF_OK_OR_FAIL(s->ops->extend(s, "w", &l, 1, 60000));
	tu_sleep_ms(100);
	assert_int_equal(state_of(db, id), EVF_STATE_RUNNING);
	EVF_OK_OR_FAIL(s->ops->release(s, "w", &l, 1));
	evf_event *ev = get(db, id);
	assert_int_equal(ev->state, EVF_STATE_PENDING);
	assert_int_equal(ev->attempts, 0);
	assert_null(ev->locked_by);
	evf_event_free(ev);
	evf_close(db);
}

/* A slow batch renews the lease of the events still waiting their turn:
 * another worker cannot take them meanwhile. */
typedef struct thief {
	evf_db *db;
	int calls;
	size_t stolen;
} thief;

static int slow_then_steal(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	thief *t = user;
	tu_sleep_ms(150);
	if (++t->calls == 3) {
		evf_event **evs;
		t->stolen = claim(t->db, "thief", 10, 60000, &evs);
		free_events(evs, t->stolen);
	}
	return 0;
}

static void test_lease_renewed_for_waiting_events(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	for (int i = 0; i < 4; i++)
		emit(db, "slow", "{}");
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.lock_timeout_ms = 300; /* the batch takes 600 ms */
	evf_worker *w;
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	thief t = { db, 0, 0 };
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &t;
	EVF_OK_OR_FAIL(evf_register(w, "slow", slow_then_steal, &ho));
	size_t n;
	EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	assert_int_equal(n, 4);
	assert_int_equal(t.stolen, 0);
	evf_worker_counters wc;
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.processed, 4);
	assert_int_equal(wc.lost, 0);
	evf_worker_free(w);
	evf_close(db);
}

/* ---- the worker ------------------------------------------------------------ */

typedef struct seen {
	int calls, batch_calls, batch_size, processed_cb, failed_cb;
	int64_t ids[64];
} seen;

static int h_ok(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	seen *s = user;
	if (s->calls < 64)
		s->ids[s->calls] = ev->id;
	s->calls++;
	return 0;
}

static int h_retry(evf_job *job, const evf_event *ev, void *user)
{
	(void)ev;
	((seen *)user)->calls++;
	return evf_job_fail(job, 0, "E_SOON", true, "try again %d", 42), -1;
}

static int h_fatal(evf_job *job, const evf_event *ev, void *user)
{
	(void)ev;
	((seen *)user)->calls++;
	evf_job_fail(job, 0, "E_BAD", false, "bad input");
	return -1;
}

static int h_plain_fail(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	((seen *)user)->calls++;
	return 1;
}

static int h_batch(evf_job *job, const evf_event *const *evs, size_t n, void *user)
{
	seen *s = user;
	s->batch_calls++;
	s->batch_size = (int)n;
	for (size_t i = 0; i < n; i++)
		if (strstr(evs[i]->parameters, "\"fail\""))
			evf_job_fail(job, i, "E_ONE", true, "this one failed");
	return 0;
}

static bool when_not_skip(const evf_event *ev, void *user)
{
	(void)user;
	return strstr(ev->parameters, "skip") == NULL;
}

static int h_parent(evf_job *job, const evf_event *ev, void *user)
{
	(void)ev;
	(void)user;
	return evf_job_emit(job, "child", "{}", NULL, NULL);
}

static void cb_processed(const evf_outcome *o, void *user)
{
	(void)o;
	((seen *)user)->processed_cb++;
}

static void cb_failed(const evf_outcome *o, void *user)
{
	(void)o;
	((seen *)user)->failed_cb++;
}

static evf_worker *worker(evf_db *db, evf_worker_options *o)
{
	evf_worker *w = NULL;
	evf_worker_options d = EVF_WORKER_OPTIONS_INIT;
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, o ? o : &d));
	return w;
}

static void test_worker_outcomes(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	seen ok = { 0 }, retry = { 0 }, fatal = { 0 }, plain = { 0 }, cbs = { 0 };
	int64_t a = emit(db, "ok", "{}");
	int64_t b = emit(db, "retry", "{}");
	int64_t c = emit(db, "fatal", "{}");
	int64_t d = emit(db, "plain", "{}");
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.on_processed = cb_processed;
	wo.on_failed = cb_failed;
	wo.callback_user = &cbs;
	evf_worker *w = worker(db, &wo);
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &ok;
	EVF_OK_OR_FAIL(evf_register(w, "ok", h_ok, &ho));
	ho.user = &retry;
	EVF_OK_OR_FAIL(evf_register(w, "retry", h_retry, &ho));
	ho.user = &fatal;
	EVF_OK_OR_FAIL(evf_register(w, "fatal", h_fatal, &ho));
	ho.user = &plain;
	EVF_OK_OR_FAIL(evf_register(w, "plain", h_plain_fail, &ho));
	assert_int_equal(evf_register(w, "ok", h_ok, NULL), EVF_EINVAL);
	size_t n;
	EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	assert_int_equal(n, 4);

	evf_event *ev = get(db, a);
	assert_int_equal(ev->state, EVF_STATE_DONE);
	evf_event_free(ev);
	ev = get(db, b);
	assert_true(ev->error);
	assert_false(ev->dead);
	assert_string_equal(ev->error_message, "try again 42");
	assert_string_equal(ev->error_code, "E_SOON");
	assert_true(ev->last_error_at > 0);
	assert_int_equal(ev->attempts, 1);
	assert_true(ev->state == EVF_STATE_FAILED);
	evf_event_free(ev);
	ev = get(db, c);
	assert_int_equal(ev->state, EVF_STATE_DEAD);
	assert_string_equal(ev->error_code, "E_BAD");
	evf_event_free(ev);
	ev = get(db, d);
	assert_int_equal(ev->state, EVF_STATE_FAILED);
	assert_non_null(ev->error_message);
	evf_event_free(ev);
	assert_int_equal(cbs.processed_cb, 1);
	assert_int_equal(cbs.failed_cb, 3);

	/* retries until exhausted (max 5), then dead */
	for (int i = 0; i < 10; i++) {
		tu_sleep_ms(5);
		EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	}
	ev = get(db, b);
	assert_int_equal(ev->attempts, 5);
	assert_int_equal(ev->state, EVF_STATE_DEAD);
	evf_event_free(ev);
	assert_int_equal(retry.calls, 5);
	assert_int_equal(fatal.calls, 1);
	evf_worker_counters wc;
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.processed, 1);
	assert_int_equal(wc.dead, 3);
	evf_worker_free(w);
	evf_close(db);
}

static int h_fail_first(evf_job *job, const evf_event *ev, void *user)
{
	(void)user;
	if (ev->attempts == 1 && !strcmp(ev->type, "flaky"))
		return evf_job_fail(job, 0, "E_ONCE", true, "first try fails"), -1;
	return 0;
}

/* An event that failed and then succeeded is done with its error flag
 * cleared, in a batch where other events never failed. */
static void test_failed_then_done(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int64_t f1 = emit(db, "flaky", "{}");
	int64_t ok1 = emit(db, "steady", "{}");
	int64_t f2 = emit(db, "flaky", "{}");
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.batch_size = 10;
	evf_worker *w;
	size_t n;
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	EVF_OK_OR_FAIL(evf_register(w, "*", h_fail_first, NULL));
	EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	assert_int_equal(n, 3);
	evf_event *ev = get(db, f1);
	assert_int_equal(ev->state, EVF_STATE_FAILED);
	assert_true(ev->error);
	evf_event_free(ev);
	int64_t ok2 = emit(db, "steady", "{}");
	for (int i = 0; i < 20 && contract_count_state(db, EVF_STATE_DONE) < 4; i++) {
		tu_sleep_ms(5);
		EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	}
	int64_t ids[] = { f1, ok1, f2, ok2 };
	for (size_t i = 0; i < 4; i++) {
		ev = get(db, ids[i]);
		assert_int_equal(ev->state, EVF_STATE_DONE);
		assert_false(ev->error);
		assert_int_equal(ev->attempts, i % 2 ? 1 : 2);
		evf_event_free(ev);
	}
	assert_int_equal(contract_count_state(db, EVF_STATE_FAILED), 0);
	evf_worker_free(w);
	evf_close(db);
}

/* Activity in a window, the health checks built on it, the release of
 * stuck events, and the Prometheus text. */
static void test_activity_health_release(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int64_t lost = emit(db, "gone", "{}"); /* first: the claim below takes it */
	emit(db, "ok", "{}");
	emit(db, "ok", "{}");
	emit(db, "fatal", "{}");
	evf_event **evs;
	assert_int_equal(claim(db, "vanished", 1, 1, &evs), 1);
	assert_int_equal(evs[0]->id, lost);
	free_events(evs, 1);
	tu_sleep_ms(20);
	assert_int_equal(state_of(db, lost), EVF_STATE_STUCK);

	evf_time before = evf_now() - 60 * 1000000LL;
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	evf_worker *w = worker(db, &wo);
	seen ok = { 0 }, fatal = { 0 };
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &ok;
	EVF_OK_OR_FAIL(evf_register(w, "ok", h_ok, &ho));
	ho.user = &fatal;
	EVF_OK_OR_FAIL(evf_register(w, "fatal", h_fatal, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_free(w);

	evf_activity *a;
	EVF_OK_OR_FAIL(evf_activity_get(db, before, &a));
	assert_true(a->available);
	assert_int_equal(a->all.completed, 2);
	assert_int_equal(a->all.failed, 1);
	assert_int_equal(a->all.dead, 1);
	assert_int_equal(a->ntypes, 2);
	assert_string_equal(a->types[0].type, "fatal");
	assert_int_equal(a->types[0].c.dead, 1);
	assert_string_equal(a->types[1].type, "ok");
	assert_int_equal(a->types[1].c.completed, 2);
	evf_activity_free(a);
	EVF_OK_OR_FAIL(evf_activity_get(db, evf_now() + 3600 * 1000000LL, &a));
	assert_int_equal(a->all.completed + a->all.failed + a->all.dead, 0);
	assert_int_equal(a->ntypes, 0);
	evf_activity_free(a);

	evf_health_report *r;
	EVF_OK_OR_FAIL(evf_health_check(db, NULL, &r));
	assert_int_equal(r->nchecks, 5);
	assert_int_equal(r->status, EVF_HEALTH_WARNING);
	assert_string_equal(r->checks[0].name, "stuck");
	assert_int_equal(r->checks[0].status, EVF_HEALTH_WARNING);
	assert_true(r->checks[0].value == 1.0);
	assert_string_equal(r->checks[2].name, "failure_ratio");
	assert_true(fabs(r->checks[2].value - 1.0 / 3.0) < 1e-9);
	assert_int_equal(r->checks[3].status, EVF_HEALTH_WARNING); /* one dead */
	evf_health_report_free(r);
	evf_health_thresholds t = EVF_HEALTH_THRESHOLDS_INIT;
	t.stuck_critical = 1;
	EVF_OK_OR_FAIL(evf_health_check(db, &t, &r));
	assert_int_equal(r->status, EVF_HEALTH_CRITICAL);
	evf_health_report_free(r);
	t.stuck_warning = 2;
	assert_int_equal(evf_health_check(db, &t, &r), EVF_EINVAL);
	assert_null(r);

	char *text;
	EVF_OK_OR_FAIL(evf_metrics_text(db, &text));
	assert_non_null(strstr(text, "\nevf_events{state=\"done\",type=\"ok\"} 2\n"));
	assert_non_null(strstr(text, "\nevf_events{state=\"stuck\",type=\"gone\"} 1\n"));
	assert_non_null(strstr(text, "\nevf_dead_events 1\n"));
	free(text);

	/* release: only stuck events, ready now, attempts kept */
	evf_filter f = EVF_FILTER_INIT;
	f.all = true;
	int64_t n;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_RELEASE, &f, 0, true, &n));
	assert_int_equal(n, 1);
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_RELEASE, &f, 0, false, &n));
	assert_int_equal(n, 1);
	evf_event *ev = get(db, lost);
	assert_int_equal(ev->state, EVF_STATE_PENDING);
	assert_int_equal(ev->attempts, 1);
	assert_null(ev->locked_by);
	assert_int_equal(ev->locked_until, 0);
	evf_event_free(ev);
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_RELEASE, &f, 0, false, &n));
	assert_int_equal(n, 0);

	/* worker options of version 1 end before the metrics fields: what
	 * lies after them is never read */
	evf_worker_options v1 = EVF_WORKER_OPTIONS_INIT;
	v1.version = 1;
	v1.metrics_textfile = "/nonexistent/dir/w.prom";
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &v1));
	evf_worker_free(w);
	evf_worker_options v2 = EVF_WORKER_OPTIONS_INIT;
	v2.metrics_textfile = "/nonexistent/dir/w.prom";
	assert_int_equal(evf_worker_new(&w, db, &v2), EVF_ERROR);
	v2.metrics_textfile = NULL;
	v2.statsd = "localhost";
	assert_int_equal(evf_worker_new(&w, db, &v2), EVF_EINVAL);
	assert_null(w);
	evf_close(db);
}

static void test_worker_batch_when_and_correlation(void **state)
{
	(void)state;
	evf_options slow = EVF_OPTIONS_INIT;
	slow.backoff_base_ms = 60000; /* the failed one must not come back in this run */
	evf_db *db = contract_db(&slow);
	seen bs = { 0 }, ws = { 0 };
	for (int i = 0; i < 5; i++)
		emit(db, "bulk", i == 2 ? "{\"fail\":1}" : "{}");
	int64_t skip = emit(db, "maybe", "{\"skip\":true}");
	int64_t run = emit(db, "maybe", "{}");
	evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
	o.correlation_id = "chain-7";
	evf_emit_result parent;
	EVF_OK_OR_FAIL(evf_emit(db, "parent", "{}", &o, &parent));

	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	evf_worker *w = worker(db, &wo);
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &bs;
	EVF_OK_OR_FAIL(evf_register_batch(w, "bulk", h_batch, &ho));
	ho.user = &ws;
	ho.when = when_not_skip;
	EVF_OK_OR_FAIL(evf_register(w, "maybe", h_ok, &ho));
	EVF_OK_OR_FAIL(evf_register(w, "parent", h_parent, NULL));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	assert_int_equal(bs.batch_calls, 1);
	assert_int_equal(bs.batch_size, 5);
	assert_int_equal(contract_count_state(db, EVF_STATE_FAILED), 1);
	assert_int_equal(ws.calls, 1);
	assert_int_equal(ws.ids[0], run);
	assert_int_equal(state_of(db, skip), EVF_STATE_DONE);
	evf_worker_counters wc;
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.skipped, 1);

	evf_filter f = EVF_FILTER_INIT;
	f.correlation_id = "chain-7";
	int64_t n;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 2); /* the parent and the child it emitted */
	f.correlation_id = NULL;
	f.type = "child";
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);
	evf_worker_free(w);
	evf_close(db);
}

static void test_worker_selection_options(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	seen s = { 0 };
	for (int i = 0; i < 6; i++)
		emit(db, i % 2 ? "a" : "b", "{}");
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	const char *types[] = { "a" };
	wo.types = types;
	wo.ntypes = 1;
	wo.once = true;
	wo.limit = 2;
	evf_worker *w = worker(db, &wo);
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &s;
	EVF_OK_OR_FAIL(evf_register(w, "*", h_ok, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	assert_int_equal(s.calls, 2);
	evf_worker_free(w);

	/* only_errors: just the events whose last attempt failed */
	wo = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	w = worker(db, &wo);
	seen f = { 0 };
	ho.user = &f;
	EVF_OK_OR_FAIL(evf_register(w, "b", h_plain_fail, &ho));
	wo.only_errors = true;
	EVF_OK_OR_FAIL(evf_worker_step(w, NULL)); /* fails the three b's */
	evf_worker_free(w);
	assert_int_equal(contract_count_state(db, EVF_STATE_FAILED), 3);
	tu_sleep_ms(5);
	w = worker(db, &wo);
	seen s2 = { 0 };
	ho.user = &s2;
	EVF_OK_OR_FAIL(evf_register(w, "*", h_ok, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	assert_int_equal(s2.calls, 3); /* the a's still pending were left alone */
	evf_worker_free(w);
	assert_int_equal(contract_count_state(db, EVF_STATE_PENDING), 1);

	/* older_than: nothing is an hour old */
	wo = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.older_than_ms = 3600 * 1000;
	w = worker(db, &wo);
	seen s3 = { 0 };
	ho.user = &s3;
	EVF_OK_OR_FAIL(evf_register(w, "*", h_ok, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	assert_int_equal(s3.calls, 0);
	evf_worker_free(w);

	/* a type with no handler in --types is an error */
	wo = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	const char *nope[] = { "zzz" };
	wo.types = nope;
	wo.ntypes = 1;
	w = worker(db, &wo);
	EVF_OK_OR_FAIL(evf_register(w, "a", h_ok, &ho));
	assert_int_equal(evf_worker_step(w, NULL), EVF_EINVAL);
	evf_worker_free(w);
	evf_close(db);
}

static void test_worker_max_attempts_and_requeue_errors(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int64_t id = emit(db, "x", "{}");
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.max_attempts = 1; /* override: dead after the first failure */
	evf_worker *w = worker(db, &wo);
	seen s = { 0 };
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &s;
	EVF_OK_OR_FAIL(evf_register(w, "x", h_plain_fail, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_free(w);
	assert_int_equal(state_of(db, id), EVF_STATE_DEAD);

	wo = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.requeue_errors = true;
	w = worker(db, &wo);
	seen ok = { 0 };
	ho.user = &ok;
	EVF_OK_OR_FAIL(evf_register(w, "x", h_ok, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_free(w);
	assert_int_equal(ok.calls, 1);
	evf_event *ev = get(db, id);
	assert_int_equal(ev->state, EVF_STATE_DONE);
	assert_int_equal(ev->attempts, 1);
	evf_event_free(ev);
	evf_close(db);
}

/* stops the worker from inside its first handler, like SIGTERM would */
static int stopper(evf_job *job, const evf_event *ev, void *user)
{
	(void)job;
	(void)ev;
	evf_worker_stop(user);
	return 0;
}

static void test_worker_stop_releases_unstarted(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	for (int i = 0; i < 5; i++)
		emit(db, "x", "{}");
	evf_worker *w = worker(db, NULL);
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = w;
	EVF_OK_OR_FAIL(evf_register(w, "x", stopper, &ho));
	size_t n;
	EVF_OK_OR_FAIL(evf_worker_step(w, &n));
	assert_int_equal(n, 5);
	assert_int_equal(contract_count_state(db, EVF_STATE_DONE), 1);
	assert_int_equal(contract_count_state(db, EVF_STATE_PENDING), 4);
	evf_filter f = EVF_FILTER_INIT;
	f.states = 1u << EVF_STATE_PENDING;
	int64_t attempts_left = 0;
	int64_t got[8] = { 0 };
	EVF_OK_OR_FAIL(evf_query(db, &f, collect, got));
	for (int64_t i = 1; i <= got[0]; i++)
		attempts_left += get_attempts(db, got[i]);
	assert_int_equal(attempts_left, 0); /* released claims do not count */
	evf_worker_free(w);
	evf_close(db);
}

/* What the handler threads of a concurrent worker saw. */
typedef struct crowd {
	pthread_mutex_t mu;
	int running, most;      /* handlers in flight now, and at most */
	int calls;
	int times_seen[128];    /* by event id */
} crowd;

static int h_crowd(evf_job *job, const evf_event *ev, void *user)
{
	crowd *c = user;
	pthread_mutex_lock(&c->mu);
	c->calls++;
	if (ev->id > 0 && ev->id < 128)
		c->times_seen[ev->id]++;
	if (++c->running > c->most)
		c->most = c->running;
	pthread_mutex_unlock(&c->mu);
	usleep(20000);
	pthread_mutex_lock(&c->mu);
	c->running--;
	pthread_mutex_unlock(&c->mu);
	/* a follow-up goes through the connection of this thread */
	if (ev->id % 10 == 0)
		return evf_job_emit(job, "child", "{}", NULL, NULL) < 0;
	return 0;
}

/* Several handler threads: every event once, several at a time, the limit
 * counted across threads, follow-ups from each thread's connection. */
static void test_worker_concurrency(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	crowd c = { .mu = PTHREAD_MUTEX_INITIALIZER };
	for (int i = 0; i < 60; i++)
		emit(db, "c", "{}");
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.concurrency = 4;
	wo.batch_size = 7;
	evf_worker *w = worker(db, &wo);
	evf_handler_options ho = EVF_HANDLER_OPTIONS_INIT;
	ho.user = &c;
	EVF_OK_OR_FAIL(evf_register(w, "c", h_crowd, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_counters wc;
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.processed, 60);
	assert_int_equal(c.calls, 60);
	for (int i = 1; i <= 60; i++)
		assert_int_equal(c.times_seen[i], 1);
	assert_true(c.most >= 2);
	assert_true(c.most <= 4);
	assert_int_equal(contract_count_state(db, EVF_STATE_DONE), 60);
	evf_filter f = EVF_FILTER_INIT;
	f.type = "child";
	int64_t n;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 6);
	evf_worker_free(w);

	/* the limit is the worker's, not each thread's */
	for (int i = 0; i < 10; i++)
		emit(db, "c", "{}");
	wo.once = false;
	wo.limit = 5;
	wo.concurrency = 3;
	w = worker(db, &wo);
	EVF_OK_OR_FAIL(evf_register(w, "c", h_crowd, &ho));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.processed, 5);
	assert_int_equal(c.calls, 65);
	f.type = "c";
	f.states = 1u << EVF_STATE_PENDING;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 5);
	evf_worker_free(w);

	/* out of range */
	wo.concurrency = EVFI_MAX_CONCURRENCY + 1;
	assert_int_equal(evf_worker_new(&w, db, &wo), EVF_EINVAL);
	assert_null(w);
	evf_close(db);
}

/* A table made by the original Django package: basic mode, never altered. */
static void test_basic_table_from_original_package(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL); /* a fresh database to hold the table */
	evf_close(db);
	assert_int_equal(contract->exec_raw("DROP TABLE IF EXISTS app_eventmodel"), 0);
	assert_int_equal(contract->exec_raw(contract->django_ddl), 0);
	evf_options o = EVF_OPTIONS_INIT;
	o.table = "app_eventmodel";
	EVF_OK_OR_FAIL(contract->reopen(&db, &o));
	assert_int_equal(evf_schema_extended(db), 0);
	assert_int_equal(evf_init(db), EVF_EBASIC);

	evf_stats *st;
	EVF_OK_OR_FAIL(evf_stats_get(db, &st));
	assert_int_equal(st->total, 4);
	assert_int_equal(st->counts[EVF_STATE_PENDING], 1);
	assert_int_equal(st->counts[EVF_STATE_DONE], 1);
	assert_int_equal(st->counts[EVF_STATE_DEAD], 1); /* processed with error */
	assert_int_equal(st->counts[EVF_STATE_FAILED], 1);
	evf_stats_free(st);
	evf_event *ev;
	EVF_OK_OR_FAIL(evf_get(db, 2, &ev));
	char buf[40];
	assert_string_equal(evf_time_format(buf, sizeof buf, ev->date), "2024-01-01 10:00:01.250000");
	evf_event_free(ev);

	evf_filter f = EVF_FILTER_INIT;
	f.states = 1u << EVF_STATE_DEAD;
	int64_t n;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_REQUEUE, &f, 0, false, &n));
	assert_int_equal(n, 1);
	f.states = 1u << EVF_STATE_PENDING;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 2);
	f = (evf_filter)EVF_FILTER_INIT;
	f.all = true;
	assert_int_equal(evf_act(db, EVF_ACTION_SET_MAX_ATTEMPTS, &f, 3, false, &n), EVF_EBASIC);
	assert_int_equal(evf_act(db, EVF_ACTION_RELEASE, &f, 0, false, &n), EVF_EBASIC);
	/* no time columns: activity is unknown, and the checks that need it
	 * say so instead of paging */
	evf_activity *act;
	EVF_OK_OR_FAIL(evf_activity_get(db, 0, &act));
	assert_false(act->available);
	assert_int_equal(act->all.completed, -1);
	evf_activity_free(act);
	evf_health_report *hr;
	EVF_OK_OR_FAIL(evf_health_check(db, NULL, &hr));
	assert_string_equal(hr->checks[0].name, "stuck");
	assert_false(hr->checks[0].available);
	assert_int_equal(hr->checks[0].status, EVF_HEALTH_OK);
	assert_true(hr->checks[1].available); /* oldest_ready works on dates */
	evf_health_report_free(hr);
	evf_emit_options eo = EVF_EMIT_OPTIONS_INIT;
	EVF_OK_OR_FAIL(evf_emit(db, "c", "{}", &eo, NULL));
	eo.key = "k";
	assert_int_equal(evf_emit(db, "c", "{}", &eo, NULL), EVF_EBASIC);

	/* process like the original command: each unprocessed event once, a
	 * failure is final (processed with error) */
	evf_worker *w;
	evf_worker_options wo = EVF_WORKER_OPTIONS_INIT;
	wo.once = true;
	wo.batch_size = 2;
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	EVF_OK_OR_FAIL(evf_register_exec(w, "a", "true", 0));
	EVF_OK_OR_FAIL(evf_register_exec(w, "b", "echo nope >&2; exit 1", 0));
	EVF_OK_OR_FAIL(evf_register_exec(w, "c", "true", 0));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_counters wc;
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.processed, 2); /* a#1 and c */
	assert_int_equal(wc.dead, 2);      /* the requeued b and the half-failed b */
	evf_worker_free(w);
	EVF_OK_OR_FAIL(evf_stats_get(db, &st));
	assert_int_equal(st->counts[EVF_STATE_DONE], 3);
	assert_int_equal(st->counts[EVF_STATE_DEAD], 2);
	assert_int_equal(st->total, 5);
	evf_stats_free(st);
	EVF_OK_OR_FAIL(evf_get(db, 4, &ev));
	assert_true(ev->processed && ev->error);
	assert_string_equal(ev->error_message, "nope");
	evf_event_free(ev);
	/* nothing is handled twice */
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	EVF_OK_OR_FAIL(evf_register_exec(w, "*", "exit 1", 0));
	EVF_OK_OR_FAIL(evf_worker_run(w));
	evf_worker_counters_get(w, &wc);
	assert_int_equal(wc.processed + wc.failed, 0);
	evf_worker_free(w);
	evf_close(db);

	/* the table still has exactly its seven columns */
	assert_int_equal(contract->column_count("app_eventmodel"), 7);

	/* migrate is the opt-in upgrade: a dry run shows and changes nothing */
	EVF_OK_OR_FAIL(contract->reopen(&db, &o));
	char *sql = NULL;
	EVF_OK_OR_FAIL(evf_migrate(db, true, &sql));
	assert_non_null(strstr(sql, "ADD COLUMN locked_until"));
	assert_non_null(strstr(sql, "app_eventmodel_ready"));
	free(sql);
	assert_int_equal(contract->column_count("app_eventmodel"), 7);
	EVF_OK_OR_FAIL(evf_migrate(db, false, NULL));
	assert_int_equal(contract->column_count("app_eventmodel"), 19);
	assert_int_equal(evf_schema_extended(db), 1);
	EVF_OK_OR_FAIL(evf_migrate(db, false, NULL)); /* again: harmless */
	EVF_OK_OR_FAIL(evf_stats_get(db, &st));      /* every row kept its meaning */
	assert_int_equal(st->counts[EVF_STATE_DONE], 3);
	assert_int_equal(st->counts[EVF_STATE_DEAD], 2);
	evf_stats_free(st);
	/* and now retries, keys and leases work */
	eo.key = "k";
	EVF_OK_OR_FAIL(evf_emit(db, "d", "{}", &eo, NULL));
	EVF_OK_OR_FAIL(evf_worker_new(&w, db, &wo));
	EVF_OK_OR_FAIL(evf_register_exec(w, "d", "exit 75", 0));
	EVF_OK_OR_FAIL(evf_worker_step(w, NULL));
	evf_worker_free(w);
	f = (evf_filter)EVF_FILTER_INIT;
	f.type = "d";
	f.states = 1u << EVF_STATE_FAILED;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);
	/* and a batch without keys (COPY on PostgreSQL) into its own types */
	contract_check_keyless_batch(db, "e");
	evf_close(db);
}

/* ---- queries and actions ------------------------------------------------------ */

static int collect(const evf_event *ev, void *user)
{
	int64_t *ids = user;
	ids[++ids[0]] = ev->id;
	return 0;
}

static void test_query_filters(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int64_t ids[8];
	const char *types[] = { "order.created", "order.paid", "mail.sent", "order.created" };
	for (int i = 0; i < 4; i++) {
		evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
		o.correlation_id = i < 2 ? "c1" : NULL;
		evf_emit_result r;
		EVF_OK_OR_FAIL(evf_emit(db, types[i], i == 3 ? "{\"needle\":\"haystack\"}" : "{}", &o, &r));
		ids[i] = r.id;
	}
	int64_t got[16] = { 0 };
	evf_filter f = EVF_FILTER_INIT;
	f.type = "order.*";
	EVF_OK_OR_FAIL(evf_query(db, &f, collect, got));
	assert_int_equal(got[0], 3);
	assert_int_equal(got[1], ids[0]);
	assert_int_equal(got[3], ids[3]);

	memset(got, 0, sizeof got);
	f = (evf_filter)EVF_FILTER_INIT;
	f.text = "needle";
	EVF_OK_OR_FAIL(evf_query(db, &f, collect, got));
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], ids[3]);

	memset(got, 0, sizeof got);
	f = (evf_filter)EVF_FILTER_INIT;
	f.descending = true;
	f.limit = 2;
	EVF_OK_OR_FAIL(evf_query(db, &f, collect, got));
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], ids[3]);
	assert_int_equal(got[2], ids[2]);
	memset(got, 0, sizeof got);
	f.after_id = ids[2];
	EVF_OK_OR_FAIL(evf_query(db, &f, collect, got));
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], ids[1]);

	int64_t n;
	f = (evf_filter)EVF_FILTER_INIT;
	f.since = evf_now() + 3600LL * 1000000;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 0);
	f.since = 0;
	f.until = evf_now() + 3600LL * 1000000;
	f.ids = ids;
	f.nids = 2;
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 2);
	f = (evf_filter)EVF_FILTER_INIT;
	f.correlation_id = "c1";
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 2);
	f = (evf_filter)EVF_FILTER_INIT;
	f.type = "mail.sent";
	EVF_OK_OR_FAIL(evf_count(db, &f, &n));
	assert_int_equal(n, 1);

	evf_event *ev = NULL;
	assert_int_equal(evf_get(db, 999999, &ev), EVF_ENOTFOUND);
	assert_null(ev);

	evf_stats *st;
	EVF_OK_OR_FAIL(evf_stats_get(db, &st));
	assert_int_equal(st->total, 4);
	assert_int_equal(st->counts[EVF_STATE_PENDING], 4);
	assert_int_equal(st->ntypes, 3);
	assert_string_equal(st->types[0].type, "mail.sent");
	assert_string_equal(st->types[1].type, "order.created");
	assert_int_equal(st->types[1].counts[EVF_STATE_PENDING], 2);
	evf_stats_free(st);
	evf_close(db);
}

static void test_actions(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int64_t a = emit(db, "t", "{}"), b = emit(db, "t", "{}"), c = emit(db, "t", "{}");
	int64_t running = emit(db, "u", "{}");
	evf_event **evs;
	evf_claim cl = { .worker_id = "w", .limit = 1, .lock_ms = 60000, .types = (const char *[]){ "u" }, .ntypes = 1 };
	size_t n;
	EVF_OK_OR_FAIL(db->store->ops->claim(db->store, &cl, &evs, &n));
	assert_int_equal(n, 1);
	free_events(evs, n);

	evf_filter f = EVF_FILTER_INIT;
	int64_t affected = -1;
	assert_int_equal(evf_act(db, EVF_ACTION_DEAD_LETTER, &f, 0, false, &affected), EVF_EREFUSED);
	f.ids = &a;
	f.nids = 1;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_DEAD_LETTER, &f, 0, true, &affected));
	assert_int_equal(affected, 1);
	assert_int_equal(state_of(db, a), EVF_STATE_PENDING); /* dry run */
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_DEAD_LETTER, &f, 0, false, &affected));
	assert_int_equal(affected, 1);
	assert_int_equal(state_of(db, a), EVF_STATE_DEAD);
	evf_event *dl = get(db, a);
	assert_true(dl->error); /* every dead row carries the error flag */
	assert_string_equal(dl->error_message, "dead-lettered by an operator");
	evf_event_free(dl);
	/* dead-lettering it again touches nothing */
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_DEAD_LETTER, &f, 0, false, &affected));
	assert_int_equal(affected, 0);

	f.ids = &b;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_MARK_PROCESSED, &f, 0, false, &affected));
	assert_int_equal(state_of(db, b), EVF_STATE_DONE);

	f = (evf_filter)EVF_FILTER_INIT;
	f.all = true;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_SET_MAX_ATTEMPTS, &f, 9, false, &affected));
	assert_int_equal(affected, 2); /* a (dead) and c (pending); not done, not running */
	evf_event *ev = get(db, c);
	assert_int_equal(ev->max_attempts, 9);
	evf_event_free(ev);
	assert_int_equal(evf_act(db, EVF_ACTION_SET_MAX_ATTEMPTS, &f, 0, false, &affected), EVF_EINVAL);

	f = (evf_filter)EVF_FILTER_INIT;
	f.states = (1u << EVF_STATE_DEAD) | (1u << EVF_STATE_DONE) | (1u << EVF_STATE_RUNNING);
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_REQUEUE, &f, 0, false, &affected));
	assert_int_equal(affected, 2); /* never the running one */
	assert_int_equal(state_of(db, a), EVF_STATE_PENDING);
	assert_int_equal(state_of(db, b), EVF_STATE_PENDING);
	assert_int_equal(state_of(db, running), EVF_STATE_RUNNING);
	ev = get(db, a);
	assert_int_equal(ev->attempts, 0);
	assert_false(ev->dead);
	evf_event_free(ev);
	evf_close(db);
}

/* ---- orders and keyset pages ------------------------------------------------ */

typedef struct page_walk {
	evf_order order;
	int64_t ids[16];
	size_t n;
	int64_t last_key, last_id;
} page_walk;

static int walk_cb(const evf_event *ev, void *user)
{
	page_walk *w = user;
	if (w->n < 16)
		w->ids[w->n++] = ev->id;
	w->last_key = evf_order_key(w->order, ev);
	w->last_id = ev->id;
	return 0;
}

/* Every event in the order, two per page. */
static size_t walk_pages(evf_db *db, evf_order order, bool desc, int64_t *out)
{
	page_walk w = { .order = order };
	size_t total = 0;
	for (;;) {
		evf_filter f = EVF_FILTER_INIT;
		f.order = order;
		f.descending = desc;
		f.limit = 2;
		f.after_id = w.last_id;
		f.after_key = w.last_key;
		w.n = 0;
		EVF_OK_OR_FAIL(evf_query(db, &f, walk_cb, &w));
		for (size_t i = 0; i < w.n; i++)
			out[total++] = w.ids[i];
		if (w.n < 2)
			return total;
	}
}

static void test_query_orders(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int prio[5] = { 3, -1, 3, 0, -1 };
	int64_t ids[5];
	for (int i = 0; i < 5; i++) {
		evf_emit_options o = EVF_EMIT_OPTIONS_INIT;
		evf_emit_result r;
		o.priority = prio[i];
		EVF_OK_OR_FAIL(evf_emit(db, "o", "{}", &o, &r));
		ids[i] = r.id;
	}
	int64_t got[5];
	/* by priority, ties by id: -1 (ids 1, 4), 0 (3), 3 (0, 2) */
	assert_int_equal(walk_pages(db, EVF_ORDER_PRIORITY, false, got), 5);
	int64_t want[5] = { ids[1], ids[4], ids[3], ids[0], ids[2] };
	assert_memory_equal(got, want, sizeof want);
	assert_int_equal(walk_pages(db, EVF_ORDER_PRIORITY, true, got), 5);
	int64_t want_desc[5] = { ids[2], ids[0], ids[3], ids[4], ids[1] };
	assert_memory_equal(got, want_desc, sizeof want_desc);
	assert_int_equal(walk_pages(db, EVF_ORDER_DATE, true, got), 5);
	int64_t want_date[5] = { ids[4], ids[3], ids[2], ids[1], ids[0] };
	assert_memory_equal(got, want_date, sizeof want_date);
	assert_int_equal(walk_pages(db, EVF_ORDER_ATTEMPTS, false, got), 5);
	int64_t want_att[5] = { ids[0], ids[1], ids[2], ids[3], ids[4] };
	assert_memory_equal(got, want_att, sizeof want_att);

	evf_order o;
	assert_int_equal(evf_order_parse(&o, "attempts"), 0);
	assert_int_equal(o, EVF_ORDER_ATTEMPTS);
	assert_int_equal(evf_order_parse(&o, "size"), EVF_EINVAL);
	assert_string_equal(evf_order_name(EVF_ORDER_DATE), "date");
	evf_filter bad = EVF_FILTER_INIT;
	bad.order = EVF_ORDER__COUNT;
	assert_int_equal(evf_query(db, &bad, walk_cb, NULL), EVF_EINVAL);
	evf_close(db);
}

static int count_cb(const evf_event *ev, void *user)
{
	(void)ev;
	++*(int *)user;
	return 0;
}

/* A sort with no index reads every row before its first: a time budget
 * stops it with EVF_ETIMEDOUT and leaves the connection fit for use. */
static int64_t type_count(const evf_stats *st, const char *type, evf_state state)
{
	for (size_t i = 0; i < st->ntypes; i++)
		if (!strcmp(st->types[i].type, type))
			return st->types[i].counts[state];
	return 0;
}

/* Beyond 200,000 events the counts by type keep the live and the dead
 * exact and estimate done from a random sample, so that they cost the
 * same at any size; below that, or when few rows are left in a wide id
 * range, every count is exact.  Types emitted in a repeating pattern
 * (a, a, a, b) are estimated as they are. */
static void test_stats_estimated_on_a_big_table(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	enum { CHUNK = 1000, N = 240000 };
	static evf_emit_item items[CHUNK];
	for (int i = 0; i < CHUNK; i++)
		items[i] = (evf_emit_item){ i % 4 == 3 ? "big.b" : "big.a", "{}",
		                            EVF_EMIT_OPTIONS_INIT };
	evf_stats *st;
	for (int done = 0; done < N; done += CHUNK)
		EVF_OK_OR_FAIL(evf_emit_batch(db, items, CHUNK, NULL));
	evf_filter f = EVF_FILTER_INIT;
	int64_t n;
	f.type = "big.a";
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_MARK_PROCESSED, &f, 0, false, &n));
	assert_int_equal(n, N / 4 * 3);
	f.type = "big.b";
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_DEAD_LETTER, &f, 0, false, &n));
	for (int i = 0; i < 7; i++)
		emit(db, "big.c", "{}");
	evf_event **evs;
	assert_int_equal(claim(db, "w", 2, 60000, &evs), 2);
	free_events(evs, 2);
	/* the planner's estimate of the size, on PostgreSQL */
	char analyze[96];
	snprintf(analyze, sizeof analyze, "ANALYZE \"%s\"", evf_db_table(db));
	assert_int_equal(contract->exec_raw(analyze), 0);
	for (int k = 0; k < 3; k++) {
		EVF_OK_OR_FAIL(evf_stats_get(db, &st));
		assert_true(st->estimated);
		/* one record per type, sorted, from the counts merged */
		assert_int_equal(st->ntypes, 3);
		assert_string_equal(st->types[0].type, "big.a");
		assert_string_equal(st->types[1].type, "big.b");
		assert_string_equal(st->types[2].type, "big.c");
		assert_int_equal(type_count(st, "big.c", EVF_STATE_PENDING), 5);
		assert_int_equal(type_count(st, "big.c", EVF_STATE_RUNNING), 2);
		assert_int_equal(st->counts[EVF_STATE_PENDING], 5);
		assert_int_equal(type_count(st, "big.b", EVF_STATE_DEAD), N / 4);
		assert_int_equal(st->counts[EVF_STATE_DEAD], N / 4);
		/* 4,000 draws, 3 in 4 done: a standard error of 0.9% */
		assert_in_range(type_count(st, "big.a", EVF_STATE_DONE), N / 4 * 3 * 95 / 100,
		                N / 4 * 3 * 105 / 100);
		assert_in_range(st->total, N * 96 / 100, N * 104 / 100);
		evf_stats_free(st);
	}
	/* 60,000 rows left over the same range of ids: exact again */
	evf_retention r = EVF_RETENTION_INIT;
	evf_retention_result res;
	r.older_than = evf_now() + 1000000;
	r.type = "big.a";
	r.chunk = 50000;
	EVF_OK_OR_FAIL(evf_purge(db, &r, &res));
	assert_int_equal(contract->exec_raw(analyze), 0);
	EVF_OK_OR_FAIL(evf_stats_get(db, &st));
	assert_false(st->estimated);
	assert_int_equal(st->total, N / 4 + 7);
	assert_int_equal(type_count(st, "big.b", EVF_STATE_DEAD), N / 4);
	evf_stats_free(st);
	evf_close(db);
}

static void test_queries_on_a_big_table(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	enum { CHUNK = 1000, N = 50000 };
	static evf_emit_item items[CHUNK];
	for (int i = 0; i < CHUNK; i++)
		items[i] = (evf_emit_item){ "bulk", "{}", EVF_EMIT_OPTIONS_INIT };
	int64_t rare[3];
	for (int i = 0; i < 3; i++)
		rare[i] = emit(db, "rare.kind", "{}");
	for (int done = 0; done < N; done += CHUNK)
		EVF_OK_OR_FAIL(evf_emit_batch(db, items, CHUNK, NULL));

	evf_filter f = EVF_FILTER_INIT;
	int n = 0;
	f.order = EVF_ORDER_ATTEMPTS;
	f.descending = true;
	f.limit = 25;
	f.budget_ms = 1;
	assert_int_equal(evf_query(db, &f, count_cb, &n), EVF_ETIMEDOUT);
	assert_non_null(strstr(evf_error_last(), "took over 1 ms"));
	assert_int_equal(n, 0);
	/* the same connection answers the next query, and without a budget
	 * (or with a filter of version 1, which has none) the sort finishes */
	f.budget_ms = 0;
	assert_int_equal(evf_query(db, &f, count_cb, &n), 0);
	assert_int_equal(n, 25);
	f.budget_ms = 1;
	f.version = 1;
	n = 0;
	assert_int_equal(evf_query(db, &f, count_cb, &n), 0);
	assert_int_equal(n, 25);
	/* an indexed walk is well inside a generous budget */
	evf_filter g = EVF_FILTER_INIT;
	g.limit = 25;
	g.budget_ms = 10000;
	n = 0;
	assert_int_equal(evf_query(db, &g, count_cb, &n), 0);
	assert_int_equal(n, 25);
	g.budget_ms = -1;
	assert_int_equal(evf_query(db, &g, count_cb, &n), EVF_EINVAL);
	g.budget_ms = 0;
	g.version = EVF_FILTER_VERSION + 1;
	assert_int_equal(evf_query(db, &g, count_cb, &n), EVF_EINVAL);
	assert_string_equal(evf_strerror(EVF_ETIMEDOUT), "time budget exceeded");

	/* pages by type: a common type (walked by id) and a rare one (found
	 * through the index) give the same rows as ever, newest first */
	page_walk w = { .order = EVF_ORDER_ID };
	evf_filter t = EVF_FILTER_INIT;
	t.type = "rare.*";
	t.descending = true;
	t.limit = 2;
	EVF_OK_OR_FAIL(evf_query(db, &t, walk_cb, &w));
	assert_int_equal(w.n, 2);
	assert_int_equal(w.ids[0], rare[2]);
	assert_int_equal(w.ids[1], rare[1]);
	t.after_id = rare[1];
	w.n = 0;
	EVF_OK_OR_FAIL(evf_query(db, &t, walk_cb, &w));
	assert_int_equal(w.n, 1);
	assert_int_equal(w.ids[0], rare[0]);
	t = (evf_filter)EVF_FILTER_INIT;
	t.type = "bulk";
	t.limit = 3;
	w.n = 0;
	EVF_OK_OR_FAIL(evf_query(db, &t, walk_cb, &w));
	assert_int_equal(w.n, 3);
	assert_int_equal(w.ids[0], rare[2] + 1);
	assert_int_equal(w.ids[2], rare[2] + 3);

	/* a limit caps a count */
	int64_t c;
	t = (evf_filter)EVF_FILTER_INIT;
	t.type = "bulk";
	EVF_OK_OR_FAIL(evf_count(db, &t, &c));
	assert_int_equal(c, N);
	t.limit = 101;
	EVF_OK_OR_FAIL(evf_count(db, &t, &c));
	assert_int_equal(c, 101);
	t.type = "rare.kind";
	EVF_OK_OR_FAIL(evf_count(db, &t, &c));
	assert_int_equal(c, 3);
	evf_close(db);
}

/* ---- retention ------------------------------------------------------------ */

static int stop_after_first(const evf_retention_result *so_far, void *user)
{
	(void)so_far;
	(void)user;
	return 1;
}

static void test_purge_archive_restore(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	int64_t ids[6];
	for (int i = 0; i < 6; i++)
		ids[i] = emit(db, i < 5 ? "r.done" : "r.live", "{\"n\": 12345678901234567890}");
	evf_filter f = EVF_FILTER_INIT;
	int64_t affected;
	f.ids = ids;
	f.nids = 4;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_MARK_PROCESSED, &f, 0, false, &affected));
	f.ids = &ids[4];
	f.nids = 1;
	EVF_OK_OR_FAIL(evf_act(db, EVF_ACTION_DEAD_LETTER, &f, 0, false, &affected));

	evf_retention r = EVF_RETENTION_INIT;
	evf_retention_result res;
	assert_int_equal(evf_purge(db, &r, &res), EVF_EINVAL); /* no age */
	r.older_than = evf_now() + 1000000;
	r.dry_run = true;
	EVF_OK_OR_FAIL(evf_purge(db, &r, &res));
	assert_int_equal(res.counts[EVF_STATE_DONE], 4);
	assert_int_equal(res.counts[EVF_STATE_DEAD], 1);
	assert_int_equal(res.total, 5);

	char dir[] = "/tmp/evf-contract-XXXXXX", path[64], path2[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/a.jsonl.gz", dir);
	snprintf(path2, sizeof path2, "%s/b.jsonl", dir);
	r.dry_run = false;
	r.to_file = path;
	r.purge = true;
	r.chunk = 2;
	r.progress = stop_after_first;
	EVF_OK_OR_FAIL(evf_archive(db, &r, &res));
	assert_true(res.interrupted);
	assert_int_equal(res.total, 2);
	assert_int_equal(res.purged, 2);
	r.progress = NULL;
	assert_int_equal(evf_archive(db, &r, &res), EVF_EREFUSED); /* never overwritten */
	r.append = true;
	EVF_OK_OR_FAIL(evf_archive(db, &r, &res));
	assert_int_equal(res.total, 3);
	assert_int_equal(res.chunks, 2);
	assert_int_equal(contract_count_state(db, EVF_STATE_DONE) + contract_count_state(db, EVF_STATE_DEAD), 0);
	assert_int_equal(contract_count_state(db, EVF_STATE_PENDING), 1);

	evf_restore_result rr;
	EVF_OK_OR_FAIL(evf_restore(db, path, 2, false, &rr));
	assert_int_equal(rr.read, 5);
	assert_int_equal(rr.inserted, 5);
	assert_false(rr.truncated);
	evf_event *ev = get(db, ids[4]);
	assert_int_equal(ev->state, EVF_STATE_DEAD);
	assert_non_null(strstr(ev->parameters, "12345678901234567890"));
	evf_event_free(ev);
	EVF_OK_OR_FAIL(evf_restore(db, path, 0, false, &rr));
	assert_int_equal(rr.skipped, 5);

	/* a plain file without purge, then into a table with it */
	r.to_file = path2;
	r.append = false;
	r.purge = false;
	r.states = 1u << EVF_STATE_DEAD;
	EVF_OK_OR_FAIL(evf_archive(db, &r, &res));
	assert_int_equal(res.total, 1);
	assert_int_equal(contract_count_state(db, EVF_STATE_DEAD), 1);
	r.to_file = NULL;
	r.to_table = "evf_contract_archive";
	r.states = 0;
	r.purge = true;
	EVF_OK_OR_FAIL(evf_archive(db, &r, &res));
	assert_int_equal(res.purged, 5);
	assert_int_equal(contract_count_state(db, EVF_STATE_DONE), 0);
	r.to_table = "bad name";
	assert_int_equal(evf_archive(db, &r, &res), EVF_EINVAL);

	r.to_table = NULL;
	r.states = 1u << EVF_STATE_PENDING;
	EVF_OK_OR_FAIL(evf_purge(db, &r, &res));
	assert_int_equal(res.counts[EVF_STATE_PENDING], 1);
	remove(path);
	remove(path2);
	rmdir(dir);
	evf_close(db);
}

static void test_state_rule_sql_matches_c(void **state)
{
	(void)state;
	evf_db *db = contract_db(NULL);
	/* make one event in each reachable state */
	emit(db, "p", "{}");
	evf_emit_options later = EVF_EMIT_OPTIONS_INIT;
	later.delay_ms = 3600000;
	EVF_OK_OR_FAIL(evf_emit(db, "s", "{}", &later, NULL));
	for (int i = 0; i < 3; i++)
		emit(db, "r", "{}");
	evf_event **evs;
	evf_claim cl = { .worker_id = "w", .limit = 3, .lock_ms = 60000, .types = (const char *[]){ "r" }, .ntypes = 1 };
	size_t n;
	EVF_OK_OR_FAIL(db->store->ops->claim(db->store, &cl, &evs, &n));
	evf_lease l[3];
	for (size_t i = 0; i < n; i++)
		l[i] = (evf_lease){ .id = evs[i]->id, .attempts = evs[i]->attempts };
	free_events(evs, n);
	evf_failure_rec fr[2] = {
		{ .lease = l[0], .message = "m", .retry_ms = 3600000 },
		{ .lease = l[1], .message = "m", .dead = true },
	};
	bool ap[2];
	EVF_OK_OR_FAIL(db->store->ops->fail_batch(db->store, "w", fr, 2, ap));
	/* the backoff counts from the moment the failure is stamped, exactly */
	evf_event *fe = get(db, l[0].id);
	assert_int_equal(fe->not_before - fe->last_error_at, 3600000000LL);
	evf_event_free(fe);
	/* l[2] stays running; a stuck one and a done one */
	emit(db, "k", "{}");
	emit(db, "d", "{}");
	cl.types = (const char *[]){ "k" };
	cl.lock_ms = 1;
	cl.limit = 1;
	EVF_OK_OR_FAIL(db->store->ops->claim(db->store, &cl, &evs, &n));
	free_events(evs, n);
	cl.types = (const char *[]){ "d" };
	cl.lock_ms = 60000;
	EVF_OK_OR_FAIL(db->store->ops->claim(db->store, &cl, &evs, &n));
	evf_lease ld = { .id = evs[0]->id, .attempts = evs[0]->attempts };
	free_events(evs, n);
	bool one;
	EVF_OK_OR_FAIL(db->store->ops->complete(db->store, "w", &ld, 1, &one));
	tu_sleep_ms(20);

	/* every state has exactly one event, by SQL and by C */
	int64_t per_c[EVF_STATE__COUNT] = { 0 };
	int64_t all[32] = { 0 };
	evf_filter f = EVF_FILTER_INIT;
	EVF_OK_OR_FAIL(evf_query(db, &f, collect, all));
	for (int64_t i = 1; i <= all[0]; i++)
		per_c[state_of(db, all[i])]++;
	for (int s = 0; s < EVF_STATE__COUNT; s++) {
		assert_int_equal(contract_count_state(db, (evf_state)s), 1);
		assert_int_equal(per_c[s], 1);
	}
	evf_stats *st;
	EVF_OK_OR_FAIL(evf_stats_get(db, &st));
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		assert_int_equal(st->counts[s], 1);
	evf_stats_free(st);

	/* the console's header agrees */
	evf_overview ov;
	EVF_OK_OR_FAIL(evf_overview_get(db, &ov));
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		assert_int_equal(ov.counts[s], 1);
	assert_int_equal(ov.total, 7);
	assert_false(ov.estimated);
	assert_int_equal(ov.workers, 1); /* the stuck one's holder is gone */
	assert_true(ov.oldest_ready > 0 && ov.oldest_ready <= ov.now);

	evf_error_group *g;
	size_t ng;
	EVF_OK_OR_FAIL(evf_error_groups_get(db, 10, &g, &ng));
	assert_int_equal(ng, 1);
	assert_string_equal(g[0].type, "r");
	assert_string_equal(g[0].message, "m");
	assert_int_equal(g[0].count, 2); /* the failed one and the dead one */
	assert_true(g[0].last_at > 0);
	evf_error_groups_free(g, ng);
	evf_close(db);
}

int contract_run(const contract_backend *b)
{
	contract = b;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_idempotent),
		cmocka_unit_test(test_emit_roundtrip),
		cmocka_unit_test(test_emit_invalid_json_writes_nothing),
		cmocka_unit_test(test_emit_big_batch),
		cmocka_unit_test(test_emit_keyless_batch),
		cmocka_unit_test(test_idempotency),
		cmocka_unit_test(test_claim_order_and_schedule),
		cmocka_unit_test(test_complete_and_stale_worker),
		cmocka_unit_test(test_complete_mixed_batch),
		cmocka_unit_test(test_extend_and_release),
		cmocka_unit_test(test_lost_lease_in_a_mixed_batch),
		cmocka_unit_test(test_lease_renewed_for_waiting_events),
		cmocka_unit_test(test_worker_outcomes),
	cmocka_unit_test(test_failed_then_done),
		cmocka_unit_test(test_activity_health_release),
		cmocka_unit_test(test_worker_batch_when_and_correlation),
		cmocka_unit_test(test_worker_selection_options),
		cmocka_unit_test(test_worker_max_attempts_and_requeue_errors),
		cmocka_unit_test(test_worker_stop_releases_unstarted),
		cmocka_unit_test(test_worker_concurrency),
		cmocka_unit_test(test_query_filters),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_purge_archive_restore),
		cmocka_unit_test(test_query_orders),
		cmocka_unit_test(test_queries_on_a_big_table),
		cmocka_unit_test(test_stats_estimated_on_a_big_table),
		cmocka_unit_test(test_state_rule_sql_matches_c),
		cmocka_unit_test(test_basic_table_from_original_package),
	};
	char group[64];
	snprintf(group, sizeof group, "contract/%s", b->name);
	int failed = _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
	if (b->extra && b->nextra) {
		snprintf(group, sizeof group, "%s/specific", b->name);
		failed += _cmocka_run_group_tests(group, b->extra, b->nextra, NULL, NULL);
	}
	return failed ? 1 : 0;
}
