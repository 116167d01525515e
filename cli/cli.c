/*
 * cli.c - the evfctl entry point and the helpers every command shares.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- reporting ----------------------------------------------------------- */

static void vreport(const cli_ctx *ctx, const char *fmt, va_list ap)
{
	fflush(stdout); /* keep the order of output and error on a terminal */
	if (ctx != NULL && ctx->cmd != NULL)
		fprintf(stderr, "evfctl: %s: ", ctx->cmd->name);
	else
		fputs("evfctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_fail(const cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAIL;
}

int cli_usage(const cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

int cli_lib_error(const cli_ctx *ctx, int rc)
{
	cli_fail(ctx, "%s", evf_error_last());
	if (rc == EVF_EINVAL || rc == EVF_EREFUSED)
		return CLI_EXIT_USAGE;
	return CLI_EXIT_FAIL;
}

int cli_option_error(const cli_ctx *ctx, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (c == ':')
		return cli_usage(ctx, "option '%s' needs an argument", arg);
	if (strncmp(arg, "--", 2) == 0)
		return cli_usage(ctx, "unknown option '%.*s'",
		                 (int)strcspn(arg, "="), arg);
	if (optopt > 0 && optopt < UCHAR_MAX && isprint(optopt))
		return cli_usage(ctx, "unknown option '-%c'", optopt);
	return cli_usage(ctx, "unknown option '%s'", arg);
}

int cli_parse_no_options(const cli_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		}
		return cli_option_error(ctx, c, argv);
	}
	return -1;
}

/* ---- JSON output -------------------------------------------------------- */

_Noreturn void cli_oom(void)
{
	fputs("evfctl: out of memory\n", stderr);
	exit(CLI_EXIT_FAIL);
}

cJSON *cli_json_object(void)
{
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL)
		cli_oom();
	return obj;
}

cJSON *cli_json_array(void)
{
	cJSON *arr = cJSON_CreateArray();

	if (arr == NULL)
		cli_oom();
	return arr;
}

void cli_json_add_number(cJSON *obj, const char *key, double value)
{
	if (cJSON_AddNumberToObject(obj, key, value) == NULL)
		cli_oom();
}

void cli_json_add_bool(cJSON *obj, const char *key, bool value)
{
	if (cJSON_AddBoolToObject(obj, key, value) == NULL)
		cli_oom();
}

void cli_json_add_string(cJSON *obj, const char *key, const char *value)
{
	if (cJSON_AddStringToObject(obj, key, value) == NULL)
		cli_oom();
}

void cli_json_add_item(cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL || !cJSON_AddItemToObject(obj, key, item))
		cli_oom();
}

void cli_print_json(cJSON *obj)
{
	char *text = cJSON_PrintUnformatted(obj);

	cJSON_Delete(obj);
	if (text == NULL)
		cli_oom();
	puts(text);
	cJSON_free(text);
}

/* ---- the database ------------------------------------------------------------ */

int cli_open_db(const cli_ctx *ctx, evf_db **out, bool create)
{
	evf_options opts = EVF_OPTIONS_INIT;
	int rc;

	if (ctx->db_url == NULL)
		return cli_usage(ctx, "no database given: use --db URL or set "
		                 "EVF_DATABASE_URL (or database in evf.conf)");
	evf_settings_options(ctx->settings, &opts);
	opts.create = create;
	rc = evf_open(out, ctx->db_url, &opts);
	if (rc < 0)
		return cli_lib_error(ctx, rc);
	return CLI_EXIT_OK;
}

int cli_open_no_args(const cli_ctx *ctx, int argc, char **argv, bool create, evf_db **db)
{
	int rc = cli_parse_no_options(ctx, argc, argv);

	*db = NULL;
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	return cli_open_db(ctx, db, create);
}

int cli_table_command(const cli_ctx *ctx, int argc, char **argv, bool create,
                      int (*fn)(evf_db *db), const char *done)
{
	evf_db *db;
	int rc = cli_open_no_args(ctx, argc, argv, create, &db);

	if (!db)
		return rc;
	rc = fn(db);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else if (ctx->json) {
		cJSON *obj = cli_json_object();

		cli_json_add_string(obj, "database", evf_db_display_url(db));
		cli_json_add_string(obj, "table", evf_db_table(db));
		cli_print_json(obj);
		rc = CLI_EXIT_OK;
	} else {
		printf("%s %s in %s\n", done, evf_db_table(db), evf_db_display_url(db));
		rc = CLI_EXIT_OK;
	}
	evf_close(db);
	return rc;
}

int cli_set(const cli_ctx *ctx, const char *key, const char *value,
            const char *flag)
{
	if (evf_settings_set(ctx->settings, key, value, flag) < 0)
		return cli_usage(ctx, "%s", evf_error_last());
	return CLI_EXIT_OK;
}

/* ---- values ------------------------------------------------------------------ */

int cli_parse_int64(const cli_ctx *ctx, const char *what, const char *text,
                    int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	/* strtoll would skip blanks and accept '+'; a count is digits only. */
	if (!isdigit((unsigned char)text[0]) &&
	    !(text[0] == '-' && isdigit((unsigned char)text[1])))
		return cli_usage(ctx, "bad number for %s: '%s'", what, text);
	errno = 0;
	v = strtoll(text, &end, 10);
	if (*end != '\0')
		return cli_usage(ctx, "bad number for %s: '%s'", what, text);
	if (errno == ERANGE || v < min || v > max) {
		if (max == INT64_MAX)
			return cli_usage(ctx, "bad number for %s: '%s' (must be %" PRId64 " or more)",
			                 what, text, min);
		return cli_usage(ctx, "bad number for %s: '%s' (must be from %" PRId64 " to %" PRId64 ")",
		                 what, text, min, max);
	}
	*out = v;
	return CLI_EXIT_OK;
}

int cli_parse_int(const cli_ctx *ctx, const char *what, const char *text,
                  int min, int max, int *out)
{
	int64_t v;
	int rc = cli_parse_int64(ctx, what, text, min, max, &v);

	if (rc == CLI_EXIT_OK)
		*out = (int)v;
	return rc;
}

int cli_parse_duration(const cli_ctx *ctx, const char *what, const char *text,
                       int64_t *out_ms)
{
	if (evf_duration_parse(out_ms, text) < 0)
		return cli_usage(ctx, "bad duration for %s: '%s' (e.g. 500ms, 30s, 5m, 2h, 7d, 1h30m)",
		                 what, text);
	return CLI_EXIT_OK;
}

int cli_parse_time(const cli_ctx *ctx, const char *what, const char *text,
                   evf_time *out)
{
	if (evf_time_parse(out, text) < 0)
		return cli_usage(ctx, "bad time for %s: '%s' (e.g. 2026-01-02T03:04:05Z, @1767323045)",
		                 what, text);
	return CLI_EXIT_OK;
}

int cli_parse_time_or_ago(const cli_ctx *ctx, const char *what,
                          const char *text, evf_time *out)
{
	if (evf_when_parse(out, text, evf_now()) == 0)
		return CLI_EXIT_OK;
	return cli_usage(ctx, "bad time or duration for %s: '%s' (e.g. 2026-01-02T03:04:05Z, @1767323045, 2h)",
	                 what, text);
}

int cli_parse_states(const cli_ctx *ctx, const char *what, const char *text,
                     unsigned *out_mask)
{
	char names[128] = "";
	size_t len = 0;

	if (evf_state_mask_parse(out_mask, text) == 0 && *out_mask != 0)
		return CLI_EXIT_OK;
	for (int s = 0; s < EVF_STATE__COUNT; s++) {
		int n = snprintf(names + len, sizeof names - len, "%s%s",
		                 s ? ", " : "", evf_state_name((evf_state)s));
		if (n < 0 || (size_t)n >= sizeof names - len)
			break;
		len += (size_t)n;
	}
	return cli_usage(ctx, "unknown state in %s: '%s' (states: %s)", what, text, names);
}

int cli_parse_ids(const cli_ctx *ctx, int argc, char **argv,
                  int64_t **out, size_t *out_n)
{
	int64_t *ids = NULL;

	*out = NULL;
	*out_n = 0;
	if (argc <= 0)
		return CLI_EXIT_OK;
	ids = calloc((size_t)argc, sizeof *ids);
	if (ids == NULL)
		cli_oom();
	for (int i = 0; i < argc; i++) {
		char *end;

		errno = 0;
		if (!isdigit((unsigned char)argv[i][0]) ||
		    (ids[i] = strtoll(argv[i], &end, 10), *end != '\0') ||
		    errno == ERANGE || ids[i] < 1) {
			free(ids);
			return cli_usage(ctx, "bad event id '%s'", argv[i]);
		}
	}
	*out = ids;
	*out_n = (size_t)argc;
	return CLI_EXIT_OK;
}

/* ---- filter options -------------------------------------------------------- */

int cli_filter_option(const cli_ctx *ctx, evf_filter *f, int opt,
                      const char *arg)
{
	switch (opt) {
	case CLI_OPT_STATE:
		return cli_parse_states(ctx, "--state", arg, &f->states);
	case CLI_OPT_TYPE:
		if (arg[0] == '\0')
			return cli_usage(ctx, "empty event type for --type");
		f->type = arg;
		return CLI_EXIT_OK;
	case CLI_OPT_SINCE:
		return cli_parse_time_or_ago(ctx, "--since", arg, &f->since);
	case CLI_OPT_UNTIL:
		return cli_parse_time_or_ago(ctx, "--until", arg, &f->until);
	case CLI_OPT_ERRORS:
		f->errors = true;
		return CLI_EXIT_OK;
	case CLI_OPT_CORRELATION_ID:
		f->correlation_id = arg;
		return CLI_EXIT_OK;
	case CLI_OPT_TEXT:
		f->text = arg;
		return CLI_EXIT_OK;
	default:
		return -1;
	}
}

bool cli_filter_given(const evf_filter *f)
{
	return f->states != 0 || f->type != NULL || f->since != 0 ||
	       f->until != 0 || f->errors || f->correlation_id != NULL ||
	       f->text != NULL;
}

/* ---- the action commands ------------------------------------------------------ */

void cli_print_action_result(const cli_ctx *ctx, evf_action action,
                             int arg, bool dry_run, int64_t n)
{
	const char *would = dry_run ? "would " : "";

	if (ctx->json) {
		cJSON *obj = cli_json_object();

		cli_json_add_string(obj, "action", evf_action_name(action));
		cli_json_add_number(obj, "affected", (double)n);
		cli_json_add_bool(obj, "dry_run", dry_run);
		if (action == EVF_ACTION_SET_MAX_ATTEMPTS)
			cli_json_add_number(obj, "max_attempts", arg);
		cli_print_json(obj);
		return;
	}
	switch (action) {
	case EVF_ACTION_REQUEUE:
		printf("%s%s %" PRId64 " events\n", would, dry_run ? "requeue" : "requeued", n);
		break;
	case EVF_ACTION_MARK_PROCESSED:
		printf("%s%s %" PRId64 " events processed\n", would, dry_run ? "mark" : "marked", n);
		break;
	case EVF_ACTION_DEAD_LETTER:
		printf("%s%s %" PRId64 " events\n", would,
		       dry_run ? "dead-letter" : "dead-lettered", n);
		break;
	case EVF_ACTION_SET_MAX_ATTEMPTS:
		printf("%sset max attempts to %d on %" PRId64 " events\n", would, arg, n);
		break;
	case EVF_ACTION_RELEASE:
		printf("%s%s %" PRId64 " events\n", would, dry_run ? "release" : "released", n);
		break;
	}
}

int cli_run_action(const cli_ctx *ctx, evf_action action, int argc, char **argv)
{
	enum { OPT_DRY_RUN = CLI_OPT_COMMAND, OPT_ALL };
	static const struct option longopts[] = {
		CLI_FILTER_LONG_OPTIONS,
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	evf_filter filter = EVF_FILTER_INIT;
	bool dry_run = false;
	int64_t *ids = NULL, affected = 0;
	size_t nids = 0;
	int c, rc, arg = 0;
	evf_db *db = NULL;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case OPT_ALL:
			filter.all = true;
			break;
		case '?':
		case ':':
			return cli_option_error(ctx, c, argv);
		default:
			rc = cli_filter_option(ctx, &filter, c, optarg);
			if (rc != CLI_EXIT_OK)
				return rc > 0 ? rc : cli_option_error(ctx, '?', argv);
		}
	}
	if (action == EVF_ACTION_SET_MAX_ATTEMPTS) {
		if (optind >= argc)
			return cli_usage(ctx, "missing the new maximum number of attempts");
		rc = cli_parse_int(ctx, "the maximum number of attempts", argv[optind],
		                   1, INT_MAX, &arg);
		if (rc != CLI_EXIT_OK)
			return rc;
		optind++;
	}
	rc = cli_parse_ids(ctx, argc - optind, argv + optind, &ids, &nids);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (nids == 0 && !cli_filter_given(&filter) && !filter.all) {
		free(ids);
		return cli_usage(ctx, "refusing to touch every event without --all");
	}
	filter.ids = ids;
	filter.nids = nids;

	rc = cli_open_db(ctx, &db, false);
	if (rc == CLI_EXIT_OK) {
		int err = evf_act(db, action, &filter, arg, dry_run, &affected);

		if (err < 0)
			rc = cli_lib_error(ctx, err);
		else
			cli_print_action_result(ctx, action, arg, dry_run, affected);
	}
	if (db != NULL)
		evf_close(db);
	free(ids);
	return rc;
}

/* ---- the entry point ---------------------------------------------------------- */

/* `help`, and --help anywhere among a command's options: what must work
 * even when the config file is broken. */
static bool asks_for_help(const cli_command *cmd, int argc, char **argv)
{
	if (cmd->exec == cmd_help)
		return true;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

/* The settings: defaults, the config file, the environment, then the
 * global flags.  A broken file fails every command but help. */
static int load_settings(cli_ctx *ctx, const char *config, const char *db,
                         const char *table, const char *log_format,
                         int argc, char **argv)
{
	const cli_command *cmd = ctx->cmd;
	int rc;

	if (evf_settings_new(&ctx->settings) < 0)
		cli_oom();
	ctx->cmd = NULL; /* the file's messages name the file, not the command */
	if (evf_settings_load(ctx->settings, config) < 0) {
		if (!asks_for_help(cmd, argc, argv))
			return cli_usage(ctx, "%s", evf_error_last());
		evf_settings_free(ctx->settings);
		if (evf_settings_new(&ctx->settings) < 0)
			cli_oom();
	}
	if ((db != NULL && (rc = cli_set(ctx, "evf.database", db, "--db")) != CLI_EXIT_OK) ||
	    (table != NULL && (rc = cli_set(ctx, "evf.table", table, "--table")) != CLI_EXIT_OK) ||
	    (log_format != NULL &&
	     (rc = cli_set(ctx, "evf.log_format", log_format, "--log-format")) != CLI_EXIT_OK))
		return rc;
	ctx->cmd = cmd;
	ctx->db_url = ctx->settings->evf.database;
	ctx->table = ctx->settings->evf.table;
	ctx->log_format = ctx->settings->evf.log_format;
	return CLI_EXIT_OK;
}

int cli_main(int argc, char **argv)
{
	enum { OPT_DB = CLI_OPT_COMMAND, OPT_TABLE, OPT_JSON, OPT_LOG_FORMAT, OPT_CONFIG };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "db", required_argument, NULL, OPT_DB },
		{ "table", required_argument, NULL, OPT_TABLE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	cli_ctx ctx = { 0 };
	const char *config = NULL, *db = NULL, *table = NULL, *log_format = NULL;
	int c, rc;

	opterr = 0;
	optind = 0;
	/* '+': stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			config = optarg;
			break;
		case OPT_DB:
			db = optarg;
			break;
		case OPT_TABLE:
			table = optarg;
			break;
		case OPT_JSON:
			ctx.json = true;
			break;
		case OPT_LOG_FORMAT:
			log_format = optarg;
			break;
		case 'h':
			cli_main_help();
			return CLI_EXIT_OK;
		case 'V':
			printf("evfctl %s\n", EVF_VERSION_STRING);
			return CLI_EXIT_OK;
		default:
			return cli_option_error(&ctx, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage(&ctx, "no command given (try 'evfctl --help')");
	rc = cli_command_find(&ctx.cmd, argv[optind]);
	if (rc != CLI_EXIT_OK)
		return rc;

	argc -= optind;
	argv += optind;
	/* `evfctl stats --json` means what `evfctl --json stats` does: the
	 * option is taken out wherever it stands (up to a "--") */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--json") != 0)
			continue;
		ctx.json = true;
		memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
		argc--;
		i--;
	}
	rc = load_settings(&ctx, config, db, table, log_format, argc, argv);
	if (rc == CLI_EXIT_OK) {
		optind = 0; /* a full reset of getopt for the command's own parse */
		rc = ctx.cmd->exec(&ctx, argc, argv);
	}
	evf_settings_free(ctx.settings);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_fail(&ctx, "cannot write the output: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	return rc;
}
