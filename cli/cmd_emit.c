/*
 * cmd_emit.c - `evfctl emit`: add one event, or many from JSON lines.
 *
 * With --stdin every line is checked before the database is opened, and
 * the events go in with one evf_emit_batch() call, so a bad line leaves
 * the table exactly as it was.
 */
#include "cli.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* What --stdin collected: the parsed lines own the strings the items
 * point into. */
struct emit_batch {
	evf_emit_item *items;
	cJSON **lines;
	char **params;
	size_t n, cap;
};

static void batch_free(struct emit_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		cJSON_Delete(b->lines[i]);
		cJSON_free(b->params[i]);
	}
	free(b->items);
	free(b->lines);
	free(b->params);
}

static void batch_grow(struct emit_batch *b)
{
	size_t cap = b->cap ? b->cap * 2 : 64;
	void *items, *lines, *params;

	if (b->n < b->cap)
		return;
	items = realloc(b->items, cap * sizeof *b->items);
	if (items == NULL)
		cli_oom();
	b->items = items;
	lines = realloc(b->lines, cap * sizeof *b->lines);
	if (lines == NULL)
		cli_oom();
	b->lines = lines;
	params = realloc(b->params, cap * sizeof *b->params);
	if (params == NULL)
		cli_oom();
	b->params = params;
	b->cap = cap;
}

static bool is_blank(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0';
}

static bool valid_json(const char *text)
{
	cJSON *v = cJSON_ParseWithOpts(text, NULL, true);

	cJSON_Delete(v);
	return v != NULL;
}

/* A member that is absent or null counts as not given. */
static const cJSON *member(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsNull(v) ? NULL : v;
}

static bool whole_number(const cJSON *v, int min, int *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (d != floor(d) || d < min || d > INT_MAX)
		return false;
	*out = (int)d;
	return true;
}

static const char *const line_fields[] = {
	"type", "parameters", "key", "priority", "correlation_id",
	"max_attempts", "in", "at", NULL
};

/* Check one line and fill item from it; defaults come from the options. */
static int parse_line(const cli_ctx *ctx, size_t lineno, const cJSON *obj,
                      const evf_emit_options *defaults, evf_emit_item *item,
                      char **params)
{
	const cJSON *v, *field;
	int64_t ms;

	if (!cJSON_IsObject(obj))
		return cli_usage(ctx, "line %zu: not a JSON object", lineno);
	cJSON_ArrayForEach(field, obj) {
		size_t i = 0;

		while (line_fields[i] != NULL && strcmp(line_fields[i], field->string) != 0)
			i++;
		if (line_fields[i] == NULL)
			return cli_usage(ctx, "line %zu: unknown field \"%s\"", lineno, field->string);
	}

	item->opts = *defaults;
	v = member(obj, "type");
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return cli_usage(ctx, "line %zu: \"type\" must be a non-empty string", lineno);
	item->type = v->valuestring;

	v = member(obj, "parameters");
	if (v != NULL && (*params = cJSON_PrintUnformatted(v)) == NULL)
		cli_oom();
	item->parameters = *params; /* NULL means {} */

	if ((v = member(obj, "key")) != NULL) {
		if (!cJSON_IsString(v))
			return cli_usage(ctx, "line %zu: \"key\" must be a string", lineno);
		item->opts.key = v->valuestring;
	}
	if ((v = member(obj, "correlation_id")) != NULL) {
		if (!cJSON_IsString(v))
			return cli_usage(ctx, "line %zu: \"correlation_id\" must be a string", lineno);
		item->opts.correlation_id = v->valuestring;
	}
	if ((v = member(obj, "priority")) != NULL &&
	    !whole_number(v, INT_MIN, &item->opts.priority))
		return cli_usage(ctx, "line %zu: \"priority\" must be a whole number", lineno);
	if ((v = member(obj, "max_attempts")) != NULL &&
	    !whole_number(v, 1, &item->opts.max_attempts))
		return cli_usage(ctx, "line %zu: \"max_attempts\" must be a whole number >= 1", lineno);

	if (member(obj, "in") != NULL && member(obj, "at") != NULL)
		return cli_usage(ctx, "line %zu: give \"in\" or \"at\", not both", lineno);
	if ((v = member(obj, "in")) != NULL) {
		if (!cJSON_IsString(v) || evf_duration_parse(&ms, v->valuestring) < 0)
			return cli_usage(ctx, "line %zu: \"in\" must be a duration such as \"5m\"", lineno);
		item->opts.delay_ms = ms;
		item->opts.not_before = 0;
	}
	if ((v = member(obj, "at")) != NULL) {
		if (!cJSON_IsString(v) || evf_time_parse(&item->opts.not_before, v->valuestring) < 0)
			return cli_usage(ctx, "line %zu: \"at\" must be a time such as \"2026-01-02T03:04:05Z\"",
			                 lineno);
		item->opts.delay_ms = 0;
	}
	return CLI_EXIT_OK;
}

static int read_lines(const cli_ctx *ctx, const evf_emit_options *defaults,
                      struct emit_batch *b)
{
	char *line = NULL;
	size_t size = 0, lineno = 0;
	ssize_t len;
	int rc = CLI_EXIT_OK;

	while (rc == CLI_EXIT_OK && (len = getline(&line, &size, stdin)) >= 0) {
		lineno++;
		if (is_blank(line))
			continue;
		batch_grow(b);
		b->lines[b->n] = cJSON_ParseWithOpts(line, NULL, true);
		if (b->lines[b->n] == NULL) {
			rc = cli_usage(ctx, "line %zu: invalid JSON", lineno);
			break;
		}
		b->params[b->n] = NULL;
		b->n++; /* owned by the batch from here, even if the check fails */
		rc = parse_line(ctx, lineno, b->lines[b->n - 1], defaults,
		                &b->items[b->n - 1], &b->params[b->n - 1]);
	}
	if (rc == CLI_EXIT_OK && ferror(stdin))
		rc = cli_fail(ctx, "cannot read stdin");
	free(line);
	return rc;
}

static int emit_stdin(const cli_ctx *ctx, const evf_emit_options *defaults)
{
	struct emit_batch b = { 0 };
	evf_emit_result *results = NULL;
	evf_db *db = NULL;
	size_t dups = 0;
	int rc = read_lines(ctx, defaults, &b);

	if (rc == CLI_EXIT_OK)
		rc = cli_open_db(ctx, &db, false);
	if (rc == CLI_EXIT_OK && b.n > 0) {
		int err;

		results = calloc(b.n, sizeof *results);
		if (results == NULL)
			cli_oom();
		err = evf_emit_batch(db, b.items, b.n, results);
		if (err < 0)
			rc = cli_lib_error(ctx, err);
		for (size_t i = 0; err == 0 && i < b.n; i++)
			dups += results[i].duplicate;
	}
	if (rc == CLI_EXIT_OK) {
		if (ctx->json) {
			cJSON *obj = cli_json_object();

			cli_json_add_number(obj, "emitted", (double)b.n);
			cli_json_add_number(obj, "duplicates", (double)dups);
			cli_print_json(obj);
		} else {
			printf("emitted %zu events (%zu duplicates)\n", b.n, dups);
		}
	}
	free(results);
	if (db != NULL)
		evf_close(db);
	batch_free(&b);
	return rc;
}

static int emit_one(const cli_ctx *ctx, const char *type, const char *params,
                    const evf_emit_options *opts)
{
	evf_emit_result res = { 0, false };
	evf_db *db = NULL;
	int rc;

	if (type[0] == '\0')
		return cli_usage(ctx, "empty event type");
	if (params != NULL && !valid_json(params))
		return cli_usage(ctx, "parameters are not valid JSON: %s", params);
	rc = cli_open_db(ctx, &db, false);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = evf_emit(db, type, params, opts, &res);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else if (ctx->json) {
		cJSON *obj = cli_json_object();

		cli_json_add_number(obj, "id", (double)res.id);
		cli_json_add_bool(obj, "duplicate", res.duplicate);
		cli_print_json(obj);
		rc = CLI_EXIT_OK;
	} else {
		printf("%s %" PRId64 "\n", res.duplicate ? "duplicate" : "emitted", res.id);
		rc = CLI_EXIT_OK;
	}
	evf_close(db);
	return rc;
}

int cmd_emit(const cli_ctx *ctx, int argc, char **argv)
{
	enum {
		OPT_KEY = CLI_OPT_COMMAND, OPT_PRIORITY, OPT_IN, OPT_AT,
		OPT_CORRELATION_ID, OPT_MAX_ATTEMPTS, OPT_STDIN, OPT_NO_WAKE
	};
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "priority", required_argument, NULL, OPT_PRIORITY },
		{ "in", required_argument, NULL, OPT_IN },
		{ "at", required_argument, NULL, OPT_AT },
		{ "correlation-id", required_argument, NULL, OPT_CORRELATION_ID },
		{ "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
		{ "stdin", no_argument, NULL, OPT_STDIN },
		{ "no-wake", no_argument, NULL, OPT_NO_WAKE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	evf_emit_options opts = EVF_EMIT_OPTIONS_INIT;
	bool from_stdin = false, have_in = false, have_at = false;
	int c, rc = CLI_EXIT_OK;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_KEY:
			opts.key = optarg;
			break;
		case OPT_PRIORITY:
			rc = cli_parse_int(ctx, "--priority", optarg, INT_MIN, INT_MAX, &opts.priority);
			break;
		case OPT_IN:
			have_in = true;
			rc = cli_parse_duration(ctx, "--in", optarg, &opts.delay_ms);
			break;
		case OPT_AT:
			have_at = true;
			rc = cli_parse_time(ctx, "--at", optarg, &opts.not_before);
			break;
		case OPT_CORRELATION_ID:
			opts.correlation_id = optarg;
			break;
		case OPT_MAX_ATTEMPTS:
			rc = cli_parse_int(ctx, "--max-attempts", optarg, 1, INT_MAX, &opts.max_attempts);
			break;
		case OPT_STDIN:
			from_stdin = true;
			break;
		case OPT_NO_WAKE:
			rc = cli_set(ctx, "evf.wake", "no", "--no-wake");
			break;
		default:
			return cli_option_error(ctx, c, argv);
		}
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (have_in && have_at)
		return cli_usage(ctx, "give --in or --at, not both");
	/* inside an --exec handler: follow-up events join the handled event's
	 * chain, as evf_job_emit() does for C handlers */
	if (!opts.correlation_id) {
		const char *corr = getenv("EVF_CORRELATION_ID");
		if (corr && *corr)
			opts.correlation_id = corr;
	}

	if (from_stdin) {
		if (optind < argc)
			return cli_usage(ctx, "--stdin takes no TYPE or JSON argument");
		if (opts.key != NULL)
			return cli_usage(ctx, "--key cannot be used with --stdin: give \"key\" on each line");
		return emit_stdin(ctx, &opts);
	}
	if (optind >= argc)
		return cli_usage(ctx, "missing the event type");
	if (argc - optind > 2)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind + 2]);
	return emit_one(ctx, argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, &opts);
}
