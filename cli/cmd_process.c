/*
 * cmd_process.c - `evfctl process`: the worker.
 *
 * Handlers come from --exec commands (else [handlers] of evf.conf) and
 * --plugin shared objects; the claim loop, leases, retries and logging
 * belong to the library.  Here we only wire the options to it, filter the
 * log by log_level, turn SIGINT/SIGTERM into evf_worker_stop() and print
 * the counters at the end (of all threads: --concurrency is the
 * library's).
 */
#include "cli.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

struct exec_handler {
	char *type;
	const char *command; /* points into argv */
};

struct process_args {
	evf_worker_options wopts;
	struct exec_handler *execs;
	size_t nexecs;
	const char **plugins;
	size_t nplugins;
	char *types_text; /* --types, split in place at the commas */
	const char **types;
	evf_rate_limit *rates; /* --rate and --rate-global: types point into argv */
	size_t nrates;
};

/* The signal handler's only way to the worker; evf_worker_stop() is
 * async-signal-safe. */
static evf_worker *volatile signalled_worker;

static void stop_on_signal(int sig)
{
	(void)sig;
	if (signalled_worker != NULL)
		evf_worker_stop(signalled_worker);
}

static int install_signal_handlers(const cli_ctx *ctx)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = stop_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: an idle worker's sleep should end at once. */
	sa.sa_flags = 0;
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		return cli_fail(ctx, "cannot install the signal handlers");
	return CLI_EXIT_OK;
}

/* The level a worker's log line carries ("level=warn" in logfmt,
 * "level":"warn" in JSON); lines without one are always shown. */
static evf_log_level line_level(const char *line)
{
	const char *p = strstr(line, "level=");
	size_t skip = 6;

	if (line[0] == '{') {
		p = strstr(line, "\"level\":\"");
		skip = 9;
	}
	if (p == NULL)
		return EVF_LOG_LEVEL_ERROR;
	p += skip;
	if (strncmp(p, "info", 4) == 0)
		return EVF_LOG_LEVEL_INFO;
	if (strncmp(p, "warn", 4) == 0)
		return EVF_LOG_LEVEL_WARNING;
	return EVF_LOG_LEVEL_ERROR;
}

/* log_user points at the evf_log_level of the settings. */
static void log_to_stderr(void *user, const char *line)
{
	const evf_log_level *level = user;

	if (line_level(line) <= *level)
		fprintf(stderr, "%s\n", line);
}

static void args_free(struct process_args *a)
{
	for (size_t i = 0; i < a->nexecs; i++)
		free(a->execs[i].type);
	free(a->execs);
	free(a->plugins);
	free(a->types_text);
	free(a->types);
	for (size_t i = 0; i < a->nrates; i++)
		free((char *)a->rates[i].type);
	free(a->rates);
}

/* TYPE=RATE: the type may hold '=', the rate never does. */
static int add_rate(const cli_ctx *ctx, struct process_args *a, const char *spec,
                    bool global)
{
	const char *flag = global ? "--rate-global" : "--rate";
	const char *eq = strrchr(spec, '=');
	evf_rate_limit *r = &a->rates[a->nrates];

	if (eq == NULL || eq == spec || eq[1] == '\0')
		return cli_usage(ctx, "bad %s '%s': use TYPE=N/s, N/m or N/h", flag, spec);
	if (evf_rate_parse(&r->per_second, eq + 1) < 0)
		return cli_usage(ctx, "bad %s '%s': %s", flag, spec, evf_error_last());
	for (size_t i = 0; i < a->nrates; i++)
		if (a->rates[i].global == global && strlen(a->rates[i].type) == (size_t)(eq - spec) &&
		    !strncmp(a->rates[i].type, spec, (size_t)(eq - spec)))
			return cli_usage(ctx, "bad %s '%s': a second rate for that type", flag, spec);
	r->type = strndup(spec, (size_t)(eq - spec));
	if (r->type == NULL)
		cli_oom();
	r->global = global;
	a->nrates++;
	return CLI_EXIT_OK;
}

static int add_exec(const cli_ctx *ctx, struct process_args *a, const char *spec)
{
	const char *eq = strchr(spec, '=');

	if (eq == NULL || eq == spec || eq[1] == '\0')
		return cli_usage(ctx, "bad --exec '%s': use TYPE=COMMAND", spec);
	a->execs[a->nexecs].type = strndup(spec, (size_t)(eq - spec));
	if (a->execs[a->nexecs].type == NULL)
		cli_oom();
	a->execs[a->nexecs].command = eq + 1;
	a->nexecs++;
	return CLI_EXIT_OK;
}

static int set_types(const cli_ctx *ctx, struct process_args *a, const char *list)
{
	size_t n = 1;
	char *p;

	free(a->types_text);
	free(a->types);
	a->types_text = strdup(list);
	if (a->types_text == NULL)
		cli_oom();
	for (p = a->types_text; *p != '\0'; p++)
		n += *p == ',';
	a->types = calloc(n, sizeof *a->types);
	if (a->types == NULL)
		cli_oom();
	a->wopts.ntypes = 0;
	for (p = a->types_text;; p++) {
		char *comma = strchr(p, ',');

		if (comma != NULL)
			*comma = '\0';
		if (*p == '\0')
			return cli_usage(ctx, "empty type in --types '%s'", list);
		a->types[a->wopts.ntypes++] = p;
		if (comma == NULL)
			break;
		p = comma;
	}
	a->wopts.types = a->types;
	return CLI_EXIT_OK;
}

static int parse_args(const cli_ctx *ctx, struct process_args *a, int argc, char **argv)
{
	enum {
		OPT_EXEC = CLI_OPT_COMMAND, OPT_EXEC_TIMEOUT, OPT_PLUGIN, OPT_TYPES,
		OPT_LIMIT, OPT_BATCH_SIZE, OPT_ONCE, OPT_OLDER_THAN, OPT_ONLY_ERRORS,
		OPT_MAX_ATTEMPTS, OPT_REQUEUE_ERRORS, OPT_LOCK_TIMEOUT,
		OPT_POLL_INTERVAL, OPT_NAME, OPT_NO_LISTEN, OPT_METRICS_TEXTFILE,
		OPT_STATSD, OPT_METRICS_INTERVAL, OPT_CONCURRENCY, OPT_RATE, OPT_RATE_GLOBAL
	};
	static const struct option longopts[] = {
		{ "exec", required_argument, NULL, OPT_EXEC },
		{ "exec-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT },
		{ "plugin", required_argument, NULL, OPT_PLUGIN },
		{ "types", required_argument, NULL, OPT_TYPES },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "batch-size", required_argument, NULL, OPT_BATCH_SIZE },
		{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "rate-global", required_argument, NULL, OPT_RATE_GLOBAL },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "older-than", required_argument, NULL, OPT_OLDER_THAN },
		{ "only-errors", no_argument, NULL, OPT_ONLY_ERRORS },
		{ "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
		{ "requeue-errors", no_argument, NULL, OPT_REQUEUE_ERRORS },
		{ "lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT },
		{ "poll-interval", required_argument, NULL, OPT_POLL_INTERVAL },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "no-listen", no_argument, NULL, OPT_NO_LISTEN },
		{ "metrics-textfile", required_argument, NULL, OPT_METRICS_TEXTFILE },
		{ "statsd", required_argument, NULL, OPT_STATSD },
		{ "metrics-interval", required_argument, NULL, OPT_METRICS_INTERVAL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	evf_worker_options *w = &a->wopts;
	int c, rc = CLI_EXIT_OK;

	/* Each --exec or --plugin takes at least one argument. */
	a->execs = calloc((size_t)argc, sizeof *a->execs);
	a->plugins = calloc((size_t)argc, sizeof *a->plugins);
	a->rates = calloc((size_t)argc, sizeof *a->rates);
	if (a->execs == NULL || a->plugins == NULL || a->rates == NULL)
		cli_oom();
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return 0;
		case OPT_EXEC:
			rc = add_exec(ctx, a, optarg);
			break;
		case OPT_EXEC_TIMEOUT:
			rc = cli_set(ctx, "evf.exec_timeout", optarg, "--exec-timeout");
			break;
		case OPT_PLUGIN:
			a->plugins[a->nplugins++] = optarg;
			break;
		case OPT_TYPES:
			rc = set_types(ctx, a, optarg);
			break;
		case OPT_LIMIT:
			rc = cli_parse_int64(ctx, "--limit", optarg, 0, INT64_MAX, &w->limit);
			break;
		case OPT_BATCH_SIZE:
			rc = cli_set(ctx, "evf.batch_size", optarg, "--batch-size");
			break;
		case OPT_RATE:
		case OPT_RATE_GLOBAL:
			rc = add_rate(ctx, a, optarg, c == OPT_RATE_GLOBAL);
			break;
		case OPT_CONCURRENCY:
			rc = cli_set(ctx, "evf.concurrency", optarg, "--concurrency");
			break;
		case OPT_ONCE:
			w->once = true;
			break;
		case OPT_OLDER_THAN:
			rc = cli_parse_duration(ctx, "--older-than", optarg, &w->older_than_ms);
			break;
		case OPT_ONLY_ERRORS:
			w->only_errors = true;
			break;
		case OPT_MAX_ATTEMPTS:
			rc = cli_parse_int(ctx, "--max-attempts", optarg, 1, INT_MAX, &w->max_attempts);
			break;
		case OPT_REQUEUE_ERRORS:
			w->requeue_errors = true;
			break;
		case OPT_LOCK_TIMEOUT:
			rc = cli_set(ctx, "evf.lock_timeout", optarg, "--lock-timeout");
			break;
		case OPT_POLL_INTERVAL:
			rc = cli_set(ctx, "evf.poll_interval", optarg, "--poll-interval");
			break;
		case OPT_NAME:
			rc = cli_set(ctx, "evf.worker_name", optarg, "--name");
			break;
		case OPT_NO_LISTEN:
			rc = cli_set(ctx, "evf.listen", "no", "--no-listen");
			break;
		case OPT_METRICS_TEXTFILE:
			if (optarg[0] == '\0')
				return cli_usage(ctx, "empty path for --metrics-textfile");
			rc = cli_set(ctx, "metrics.textfile", optarg, "--metrics-textfile");
			break;
		case OPT_STATSD:
			rc = cli_set(ctx, "metrics.statsd", optarg, "--statsd");
			break;
		case OPT_METRICS_INTERVAL:
			rc = cli_set(ctx, "metrics.interval", optarg, "--metrics-interval");
			break;
		default:
			return cli_option_error(ctx, c, argv);
		}
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	if (a->nexecs == 0 && a->nplugins == 0 && ctx->settings->nhandlers == 0)
		return cli_usage(ctx, "no handler: give --exec TYPE=COMMAND or --plugin "
		                 "FILE.so, or TYPE = COMMAND under [handlers] in evf.conf");
	return -1;
}

/* --exec replaces the [handlers] of the file entirely. */
static int setup_handlers(const cli_ctx *ctx, const struct process_args *a, evf_worker *w)
{
	const evf_settings *s = ctx->settings;
	size_t n = a->nexecs ? a->nexecs : s->nhandlers;

	for (size_t i = 0; i < n; i++) {
		const char *type = a->nexecs ? a->execs[i].type : s->handlers[i].type;
		const char *command = a->nexecs ? a->execs[i].command : s->handlers[i].command;
		int rc = evf_register_exec(w, type, command, s->evf.exec_timeout_ms);

		if (rc < 0)
			return cli_lib_error(ctx, rc);
	}
	for (size_t i = 0; i < a->nplugins; i++) {
		/* A plugin that cannot load is a setup failure, not bad usage. */
		if (evf_load_plugin(w, a->plugins[i]) < 0)
			return cli_fail(ctx, "%s", evf_error_last());
	}
	return CLI_EXIT_OK;
}

static void print_summary(const cli_ctx *ctx, const evf_worker_counters *n)
{
	if (ctx->json) {
		cJSON *obj = cli_json_object();

		cli_json_add_number(obj, "processed", (double)n->processed);
		cli_json_add_number(obj, "failed", (double)n->failed);
		cli_json_add_number(obj, "retried", (double)n->retried);
		cli_json_add_number(obj, "dead", (double)n->dead);
		cli_json_add_number(obj, "skipped", (double)n->skipped);
		cli_json_add_number(obj, "lost", (double)n->lost);
		cli_print_json(obj);
		return;
	}
	printf("processed %" PRId64 ", failed %" PRId64 " (retrying %" PRId64
	       ", dead %" PRId64 "), skipped %" PRId64 "\n",
	       n->processed, n->failed, n->retried, n->dead, n->skipped);
}

int cmd_process(const cli_ctx *ctx, int argc, char **argv)
{
	struct process_args a;
	evf_worker_counters counters;
	evf_worker *worker = NULL;
	evf_db *db = NULL;
	int rc;

	memset(&a, 0, sizeof a);
	a.wopts = (evf_worker_options)EVF_WORKER_OPTIONS_INIT;
	rc = parse_args(ctx, &a, argc, argv);
	if (rc >= 0)
		goto out;
	evf_settings_worker_options(ctx->settings, &a.wopts);
	if (a.nrates) { /* the flags replace [rates] and [global_rates] */
		a.wopts.rates = a.rates;
		a.wopts.nrates = a.nrates;
	}
	a.wopts.log = log_to_stderr;
	a.wopts.log_user = &ctx->settings->evf.log_level;

	rc = cli_open_db(ctx, &db, false);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = evf_worker_new(&worker, db, &a.wopts);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
		goto out;
	}
	rc = setup_handlers(ctx, &a, worker);
	if (rc != CLI_EXIT_OK)
		goto out;
	signalled_worker = worker;
	rc = install_signal_handlers(ctx);
	if (rc != CLI_EXIT_OK)
		goto out;

	rc = evf_worker_run(worker);
	evf_worker_counters_get(worker, &counters);
	print_summary(ctx, &counters);
	rc = rc < 0 ? cli_fail(ctx, "%s", evf_error_last()) : CLI_EXIT_OK;
out:
	signalled_worker = NULL;
	if (worker != NULL)
		evf_worker_free(worker);
	if (db != NULL)
		evf_close(db);
	args_free(&a);
	return rc;
}
