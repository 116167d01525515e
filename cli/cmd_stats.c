/*
 * cmd_stats.c - `evfctl stats`: counts by state, then by type and state.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static cJSON *state_counts_json(const int64_t counts[EVF_STATE__COUNT])
{
	cJSON *obj = cli_json_object();

	for (int s = 0; s < EVF_STATE__COUNT; s++)
		cli_json_add_number(obj, evf_state_name((evf_state)s), (double)counts[s]);
	return obj;
}

/* What `stats` shows beside the counts: activity in the last minute and
 * hour (unknown on a basic table) and the oldest ready event. */
struct stats_extra {
	evf_activity *minute, *hour;
	evf_time now, oldest_ready;
};

static const evf_activity_counts none = { 0, 0, 0 };

static const evf_activity_counts *type_activity(const evf_activity *a, const char *type)
{
	for (size_t i = 0; i < a->ntypes; i++)
		if (strcmp(a->types[i].type, type) == 0)
			return &a->types[i].c;
	return &none;
}

static cJSON *rate_json(const evf_activity_counts *c, double seconds)
{
	cJSON *obj = cli_json_object();

	cli_json_add_number(obj, "processed", (double)c->completed);
	cli_json_add_number(obj, "failed", (double)c->failed);
	cli_json_add_number(obj, "processed_per_s", (double)c->completed / seconds);
	cli_json_add_number(obj, "failed_per_s", (double)c->failed / seconds);
	return obj;
}

static cJSON *window_json(const evf_activity_counts *m, const evf_activity_counts *h)
{
	cJSON *obj = cli_json_object();

	cli_json_add_item(obj, "1m", rate_json(m, 60));
	cli_json_add_item(obj, "1h", rate_json(h, 3600));
	return obj;
}

static void print_json(const evf_stats *st, const struct stats_extra *x)
{
	cJSON *obj = cli_json_object(), *types = cli_json_object();

	cli_json_add_number(obj, "total", (double)st->total);
	if (!cJSON_AddBoolToObject(obj, "estimated", st->estimated))
		cli_oom();
	cli_json_add_item(obj, "states", state_counts_json(st->counts));
	for (size_t i = 0; i < st->ntypes; i++)
		cli_json_add_item(types, st->types[i].type,
		                  state_counts_json(st->types[i].counts));
	cli_json_add_item(obj, "types", types);
	if (x->oldest_ready)
		cli_json_add_number(obj, "oldest_ready_age_s",
		                    (double)(x->now - x->oldest_ready) / 1e6);
	else if (cJSON_AddNullToObject(obj, "oldest_ready_age_s") == NULL)
		cli_oom();
	if (!x->minute->available) {
		if (cJSON_AddNullToObject(obj, "throughput") == NULL)
			cli_oom();
		cli_print_json(obj);
		return;
	}
	cJSON *tp = window_json(&x->minute->all, &x->hour->all), *tt = cli_json_object();
	for (size_t i = 0; i < st->ntypes; i++) {
		const char *t = st->types[i].type;
		cli_json_add_item(tt, t, window_json(type_activity(x->minute, t),
		                                     type_activity(x->hour, t)));
	}
	cli_json_add_item(tp, "types", tt);
	cli_json_add_item(obj, "throughput", tp);
	cli_print_json(obj);
}

static void print_rates(const char *label, int width, const evf_activity_counts *m,
                        const evf_activity_counts *h)
{
	printf("%-*s %15.2f %15.2f %15.4f %15.4f\n", width, label,
	       (double)m->completed / 60, (double)m->failed / 60,
	       (double)h->completed / 3600, (double)h->failed / 3600);
}

static void print_throughput(const evf_stats *st, const struct stats_extra *x, int width)
{
	char age[32];

	if (x->oldest_ready)
		printf("\noldest ready event waiting %s\n",
		       evf_duration_format(age, sizeof age, (x->now - x->oldest_ready) / 1000));
	else
		puts("\nno event is ready");
	if (!x->minute->available) {
		puts("throughput unknown: a basic table records no completion times "
		     "('evfctl migrate' adds them)");
		return;
	}
	printf("\n%-*s %15s %15s %15s %15s\n", width, "THROUGHPUT", "processed/s 1m",
	       "failed/s 1m", "processed/s 1h", "failed/s 1h");
	print_rates("all", width, &x->minute->all, &x->hour->all);
	for (size_t i = 0; i < st->ntypes; i++) {
		const char *t = st->types[i].type;
		print_rates(t, width, type_activity(x->minute, t), type_activity(x->hour, t));
	}
}

static void print_human(const evf_stats *st, const struct stats_extra *x)
{
	int width = 10; /* "THROUGHPUT" */

	for (size_t i = 0; i < st->ntypes; i++) {
		int len = (int)strlen(st->types[i].type);

		if (len > width)
			width = len;
	}
	printf("%-10s %10" PRId64 "\n", "total", st->total);
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		printf("%-10s %10" PRId64 "\n", evf_state_name((evf_state)s), st->counts[s]);
	if (st->estimated)
		puts("(done estimated from a sample: the table is large)");
	print_throughput(st, x, width);
	if (st->ntypes == 0)
		return;

	printf("\n%-*s", width, "TYPE");
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		printf(" %9s", evf_state_name((evf_state)s));
	printf(" %9s\n", "total");
	for (size_t i = 0; i < st->ntypes; i++) {
		int64_t total = 0;

		printf("%-*s", width, st->types[i].type);
		for (int s = 0; s < EVF_STATE__COUNT; s++) {
			printf(" %9" PRId64, st->types[i].counts[s]);
			total += st->types[i].counts[s];
		}
		printf(" %9" PRId64 "\n", total);
	}
}

int cmd_stats(const cli_ctx *ctx, int argc, char **argv)
{
	evf_db *db;
	evf_stats *st = NULL;
	int rc = cli_open_no_args(ctx, argc, argv, false, &db);

	if (!db)
		return rc;
	struct stats_extra x = { NULL, NULL, 0, 0 };
	evf_overview ov;
	int err = evf_stats_get(db, &st);
	if (err == 0)
		err = evf_overview_get(db, &ov);
	if (err == 0) {
		/* the database's clock, so that PostgreSQL hosts agree */
		x.now = ov.now ? ov.now : evf_now();
		x.oldest_ready = ov.oldest_ready;
		err = evf_activity_get(db, x.now - 60 * (evf_time)1000000, &x.minute);
	}
	if (err == 0)
		err = evf_activity_get(db, x.now - 3600 * (evf_time)1000000, &x.hour);
	if (err < 0) {
		rc = cli_lib_error(ctx, err);
	} else {
		if (ctx->json)
			print_json(st, &x);
		else
			print_human(st, &x);
		rc = CLI_EXIT_OK;
	}
	evf_activity_free(x.minute);
	evf_activity_free(x.hour);
	evf_stats_free(st);
	evf_close(db);
	return rc;
}
