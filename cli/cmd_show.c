/*
 * cmd_show.c - `evfctl show ID`: every column of one event.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static void show_text(const char *name, const char *value)
{
	printf("%-16s %s\n", name, value != NULL ? value : "-");
}

static void show_time(const char *name, evf_time t)
{
	char buf[40];

	show_text(name, t != 0 ? evf_time_format(buf, sizeof buf, t) : NULL);
}

static void show_bool(const char *name, bool value)
{
	show_text(name, value ? "yes" : "no");
}

/* Print text indented by two spaces, line by line.  cJSON_Print() lays
 * JSON out with tabs, and raw tabs never occur inside its strings (they are
 * escaped), so each tab can become spaces: two per level of indentation,
 * one after a key. */
static void show_block(const char *name, const char *text)
{
	printf("%s:\n", name);
	while (text != NULL && *text != '\0') {
		fputs("  ", stdout);
		while (*text == '\t') {
			fputs("  ", stdout);
			text++;
		}
		for (; *text != '\0' && *text != '\n'; text++)
			putchar(*text == '\t' ? ' ' : *text);
		putchar('\n');
		if (*text == '\n')
			text++;
	}
}

static void show_human(const evf_event *ev)
{
	char buf[64];
	cJSON *params = cJSON_Parse(ev->parameters);
	char *pretty = params != NULL ? cJSON_Print(params) : NULL;

	snprintf(buf, sizeof buf, "%" PRId64, ev->id);
	show_text("id:", buf);
	show_text("type:", ev->type);
	show_text("state:", evf_state_name(ev->state));
	show_time("date:", ev->date);
	snprintf(buf, sizeof buf, "%d/%d", ev->attempts, ev->max_attempts);
	show_text("attempts:", buf);
	snprintf(buf, sizeof buf, "%d", ev->priority);
	show_text("priority:", buf);
	show_time("not_before:", ev->not_before);
	show_text("idempotency_key:", ev->idempotency_key);
	show_text("correlation_id:", ev->correlation_id);
	show_bool("processed:", ev->processed);
	show_time("processed_at:", ev->processed_at);
	show_bool("error:", ev->error);
	show_bool("dead:", ev->dead);
	show_text("error_code:", ev->error_code);
	show_time("last_error_at:", ev->last_error_at);
	show_text("locked_by:", ev->locked_by);
	show_time("locked_until:", ev->locked_until);
	/* The stored text when it does not parse, rather than nothing. */
	show_block("parameters", pretty != NULL ? pretty : ev->parameters);
	/* Tables from the original package store "" rather than NULL. */
	if (ev->error_message != NULL && ev->error_message[0] != '\0')
		show_block("error_message", ev->error_message);
	cJSON_free(pretty);
	cJSON_Delete(params);
}

int cmd_show(const cli_ctx *ctx, int argc, char **argv)
{
	evf_db *db = NULL;
	evf_event *ev = NULL;
	int64_t id;
	int rc = cli_parse_no_options(ctx, argc, argv);

	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return cli_usage(ctx, "missing the event id");
	if (argc - optind > 1)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind + 1]);
	rc = cli_parse_int64(ctx, "the event id", argv[optind], 1, INT64_MAX, &id);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = cli_open_db(ctx, &db, false);
	if (rc != CLI_EXIT_OK)
		return rc;

	rc = evf_get(db, id, &ev);
	if (rc == EVF_ENOTFOUND) {
		rc = cli_fail(ctx, "no event with id %" PRId64, id);
	} else if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else if (ctx->json) {
		char *json = evf_event_to_json(ev, true);

		if (json == NULL)
			cli_oom();
		puts(json);
		free(json);
	} else {
		show_human(ev);
	}
	if (ev != NULL)
		evf_event_free(ev);
	evf_close(db);
	return rc;
}
