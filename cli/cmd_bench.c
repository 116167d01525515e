/*
 * cmd_bench.c - `evfctl bench`: how fast this database drains, emits and
 * wakes up, measured on a scratch table that is dropped afterwards.
 */
#include "cli.h"
#include "bench.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

enum {
	OPT_PHASE = CLI_OPT_COMMAND,
	OPT_EVENTS,
	OPT_WORKERS,
	OPT_BATCH,
	OPT_CONCURRENCY,
	OPT_DURATION,
	OPT_MAX_ROWS,
	OPT_POLL,
	OPT_KEEP,
	OPT_SCRATCH
};

#define DEFAULT_PHASES (BENCH_EMIT | BENCH_DRAIN | BENCH_LATENCY | BENCH_MIXED)

static int parse_phases(const cli_ctx *ctx, const char *text, unsigned *out)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "emit", BENCH_EMIT }, { "drain", BENCH_DRAIN }, { "latency", BENCH_LATENCY },
		{ "mixed", BENCH_MIXED }, { "scale", BENCH_SCALE },
		{ "all", DEFAULT_PHASES | BENCH_SCALE },
	};
	const char *p = text;
	*out = 0;
	while (*p) {
		size_t n = strcspn(p, ","), i;
		for (i = 0; i < sizeof names / sizeof *names; i++)
			if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n))
				break;
		if (i == sizeof names / sizeof *names)
			return cli_usage(ctx, "unknown phase '%.*s' (emit, drain, latency, mixed, "
			                 "scale, all)", (int)n, p);
		*out |= names[i].bit;
		p += n;
		if (*p == ',')
			p++;
	}
	return *out ? CLI_EXIT_OK : cli_usage(ctx, "empty --phase");
}

static void report_json(const bench_config *c, const bench_results *r)
{
	cJSON *o = cli_json_object();
	cli_json_add_string(o, "durability", r->durability);
	cli_json_add_number(o, "events", (double)c->events);
	cli_json_add_number(o, "workers", c->workers);
	cli_json_add_number(o, "batch_size", c->batch_size);
	cli_json_add_number(o, "concurrency", c->concurrency);
	if (c->phases & BENCH_EMIT) {
		cli_json_add_number(o, "emit_per_s", r->emit_per_s);
		cli_json_add_number(o, "emit_single_per_s", r->emit_single_per_s);
		if (r->pg)
			cli_json_add_number(o, "emit_single_no_wake_per_s",
			                    r->emit_single_no_wake_per_s);
	}
	if (c->phases & BENCH_DRAIN) {
		cli_json_add_number(o, "drain_per_s", r->drain_per_s);
		cli_json_add_number(o, "drain_exec_per_s", r->drain_exec_per_s);
		cli_json_add_number(o, "worker_max_rss_kb", (double)r->worker_max_rss_kb);
	}
	if (c->phases & BENCH_LATENCY) {
		cJSON *l = cli_json_object();
		cli_json_add_number(l, "p50", r->latency_p50);
		cli_json_add_number(l, "p95", r->latency_p95);
		cli_json_add_number(l, "p99", r->latency_p99);
		cli_json_add_number(l, "samples", (double)r->latency_samples);
		cli_json_add_number(l, "poll_interval_ms", (double)c->poll_ms);
		cli_json_add_item(o, "latency_ms", l);
	}
	if (c->phases & BENCH_MIXED) {
		cJSON *m = cli_json_object();
		cli_json_add_number(m, "seconds", c->duration_ms / 1e3);
		cli_json_add_number(m, "emit_per_s", r->mixed_emit_per_s);
		cli_json_add_number(m, "drain_per_s", r->mixed_drain_per_s);
		cli_json_add_item(o, "mixed", m);
	}
	if (c->phases & BENCH_SCALE) {
		cJSON *a = cli_json_array();
		for (size_t i = 0; i < r->nscale; i++) {
			cJSON *p = cli_json_object();
			cli_json_add_number(p, "rows", (double)r->scale[i].rows);
			cli_json_add_number(p, "claim_ms", r->scale[i].claim_ms);
			cli_json_add_number(p, "overview_ms", r->scale[i].overview_ms);
			cli_json_add_number(p, "stats_ms", r->scale[i].stats_ms);
			cJSON_AddItemToArray(a, p);
		}
		cli_json_add_item(o, "scale", a);
	}
	cli_print_json(o);
}

static void report_text(const bench_config *c, const bench_results *r)
{
	printf("%s\n%" PRId64 " events, %d worker%s, batch size %d, %d client%s\n\n", r->durability,
	       c->events, c->workers, c->workers == 1 ? "" : "s", c->batch_size, c->concurrency,
	       c->concurrency == 1 ? "" : "s");
	if (c->phases & BENCH_EMIT) {
		printf("emit, batched (COPY on PostgreSQL)  %12.0f events/s\n", r->emit_per_s);
		printf("emit, one per transaction         %12.0f events/s\n", r->emit_single_per_s);
		if (r->pg && r->emit_single_no_wake_per_s > 0)
			printf("  the same without wake-ups       %12.0f events/s (with them: %.0f%%)\n",
			       r->emit_single_no_wake_per_s,
			       100 * r->emit_single_per_s / r->emit_single_no_wake_per_s);
	}
	if (c->phases & BENCH_DRAIN) {
		printf("drain, in-process no-op handler   %12.0f events/s\n", r->drain_per_s);
		printf("drain, --exec /bin/true (%" PRId64 ")%*s%12.0f events/s\n", r->exec_events,
		       (int)(10 - snprintf(NULL, 0, "%" PRId64, r->exec_events)), "",
		       r->drain_exec_per_s);
		printf("worker peak resident set          %12ld KB\n", r->worker_max_rss_kb);
	}
	if (c->phases & BENCH_LATENCY)
		printf("idle wake-up latency              p50 %.2f ms, p95 %.2f ms, p99 %.2f ms "
		       "(%" PRId64 " events, poll %" PRId64 " ms)\n", r->latency_p50, r->latency_p95,
		       r->latency_p99, r->latency_samples, c->poll_ms);
	if (c->phases & BENCH_MIXED)
		printf("mixed for %.0f s                    emit %.0f/s, drain %.0f/s\n",
		       c->duration_ms / 1e3, r->mixed_emit_per_s, r->mixed_drain_per_s);
	if (c->phases & BENCH_SCALE) {
		printf("\n%12s %12s %12s %12s\n", "rows", "claim ms", "overview ms", "stats ms");
		for (size_t i = 0; i < r->nscale; i++)
			printf("%12" PRId64 " %12.2f %12.2f %12.2f\n", r->scale[i].rows,
			       r->scale[i].claim_ms, r->scale[i].overview_ms, r->scale[i].stats_ms);
	}
}

/* The scratch table is dropped at the end: it must not hold anything. */
static int refuse_existing(const cli_ctx *ctx, const bench_config *cfg)
{
	evf_options o = EVF_OPTIONS_INIT;
	evf_db *db;
	int rc;
	o.table = cfg->table;
	o.create = true;
	if ((rc = evf_open(&db, cfg->url, &o)) < 0)
		return cli_lib_error(ctx, rc);
	/* an event table, or any other table (evf_drop refuses those too) */
	rc = evf_schema_extended(db);
	bool exists = rc >= 0 || (rc == EVF_ESCHEMA && !strstr(evf_error_last(), "does not exist"));
	evf_close(db);
	if (exists)
		return cli_usage(ctx, "table %s exists; bench drops its scratch table, so it "
		                 "needs a new name", cfg->table);
	if (rc < 0 && rc != EVF_ESCHEMA)
		return cli_lib_error(ctx, rc);
	return CLI_EXIT_OK;
}

int cmd_bench(const cli_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "phase", required_argument, NULL, OPT_PHASE },
		{ "events", required_argument, NULL, OPT_EVENTS },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "batch-size", required_argument, NULL, OPT_BATCH },
		{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "max-rows", required_argument, NULL, OPT_MAX_ROWS },
		{ "poll-interval", required_argument, NULL, OPT_POLL },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "scratch-table", required_argument, NULL, OPT_SCRATCH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bench_config cfg = {
		.phases = DEFAULT_PHASES, .events = 100000, .workers = 2, .batch_size = 100,
		.concurrency = 1, .duration_ms = 5000, .max_rows = 1000000, .poll_ms = 50,
	};
	bench_results res;
	const char *scratch = NULL;
	bool keep = false;
	int c, rc = CLI_EXIT_OK;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_PHASE:
			rc = parse_phases(ctx, optarg, &cfg.phases);
			break;
		case OPT_EVENTS:
			rc = cli_parse_int64(ctx, "--events", optarg, 10, 100000000, &cfg.events);
			break;
		case OPT_WORKERS:
			rc = cli_parse_int(ctx, "--workers", optarg, 1, 64, &cfg.workers);
			break;
		case OPT_BATCH:
			rc = cli_parse_int(ctx, "--batch-size", optarg, 1, 10000, &cfg.batch_size);
			break;
		case OPT_CONCURRENCY:
			rc = cli_parse_int(ctx, "--concurrency", optarg, 1, 64, &cfg.concurrency);
			break;
		case OPT_DURATION:
			rc = cli_parse_duration(ctx, "--duration", optarg, &cfg.duration_ms);
			if (rc == CLI_EXIT_OK && cfg.duration_ms < 100)
				rc = cli_usage(ctx, "--duration must be at least 100ms");
			break;
		case OPT_MAX_ROWS:
			rc = cli_parse_int64(ctx, "--max-rows", optarg, 1000, 10000000, &cfg.max_rows);
			break;
		case OPT_POLL:
			rc = cli_parse_duration(ctx, "--poll-interval", optarg, &cfg.poll_ms);
			if (rc == CLI_EXIT_OK && cfg.poll_ms < 1)
				rc = cli_usage(ctx, "--poll-interval must be at least 1ms");
			break;
		case OPT_KEEP:
			keep = true;
			break;
		case OPT_SCRATCH:
			scratch = optarg;
			break;
		default:
			return cli_option_error(ctx, c, argv);
		}
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	if (ctx->db_url == NULL)
		return cli_usage(ctx, "no database given: use --db URL or set EVF_DATABASE_URL");
	if (scratch)
		snprintf(cfg.table, sizeof cfg.table, "%s", scratch);
	else
		snprintf(cfg.table, sizeof cfg.table, "evf_bench_%ld", (long)getpid());
	cfg.url = ctx->db_url;
	if ((rc = refuse_existing(ctx, &cfg)) != CLI_EXIT_OK)
		return rc;
	if (!ctx->json)
		fprintf(stderr, "evfctl: bench: scratch table %s%s\n", cfg.table,
		        keep ? " (kept)" : "");

	rc = bench_run(&cfg, &res);
	if (rc < 0)
		rc = cli_lib_error(ctx, rc);
	else if (ctx->json)
		report_json(&cfg, &res);
	else
		report_text(&cfg, &res);
	if (!keep) {
		evf_options o = EVF_OPTIONS_INIT;
		evf_db *db;
		o.table = cfg.table;
		if (evf_open(&db, cfg.url, &o) == 0) {
			if (evf_drop(db) < 0 && rc == CLI_EXIT_OK)
				rc = cli_lib_error(ctx, EVF_ESTORE);
			evf_close(db);
		}
	}
	return rc;
}
