/* test_settings.c - evf.conf parsing, the environment, flags, lookup and
 * the display of settings. */
#include "testutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------- */

static int unset_env(const evf_setting *st, void *user)
{
	(void)user;
	if (st->env)
		unsetenv(st->env);
	return 0;
}

/* No EVF_* variable of anybody's shell leaks into a test. */
static int clean_env(void **state)
{
	evf_settings *s;

	(void)state;
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	evf_settings_foreach(s, unset_env, NULL);
	evf_settings_free(s);
	unsetenv("EVF_CONFIG");
	return 0;
}

static char *write_conf(const char *text)
{
	char *path = tu_path("evf.conf");
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load `text` as the config file into *out; returns what load returned.
 * *path (may be NULL) gets the file's path, the caller's to free. */
static int load_text(evf_settings **out, const char *text, char **path)
{
	char *p = write_conf(text);
	int rc;

	EVF_OK_OR_FAIL(evf_settings_new(out));
	rc = evf_settings_load(*out, p);
	if (path)
		*path = p;
	else
		free(p);
	return rc;
}

struct found {
	const char *name;
	char value[256], source[256], env[64];
	bool seen, unset;
};

static int find_cb(const evf_setting *st, void *user)
{
	struct found *f = user;

	if (strcmp(st->name, f->name))
		return 0;
	f->seen = true;
	f->unset = st->value == NULL;
	snprintf(f->value, sizeof f->value, "%s", st->value ? st->value : "");
	snprintf(f->source, sizeof f->source, "%s", st->source);
	snprintf(f->env, sizeof f->env, "%s", st->env ? st->env : "");
	return 0;
}

static struct found lookup_setting(const evf_settings *s, const char *name)
{
	struct found f;

	memset(&f, 0, sizeof f);
	f.name = name;
	assert_int_equal(evf_settings_foreach(s, find_cb, &f), 0);
	if (!f.seen)
		fail_msg("no setting %s", name);
	return f;
}

static void expect_setting(const evf_settings *s, const char *name, const char *value,
                         const char *source)
{
	struct found f = lookup_setting(s, name);

	assert_string_equal(f.value, value);
	if (source && strncmp(source, "file:", 5) == 0) {
		/* "file::3" stands for any file, line 3 */
		size_t n = strlen(f.source), m = strlen(source + 5);
		if (strncmp(f.source, "file:", 5) || n < m || strcmp(f.source + n - m, source + 5))
			fail_msg("%s: source '%s', not '%s'", name, f.source, source);
	} else if (source) {
		assert_string_equal(f.source, source);
	}
}

/* The file `text` fails to load with a message holding `want`. */
static void expect_load_error(const char *text, const char *want)
{
	evf_settings *s;
	int rc = load_text(&s, text, NULL);

	if (rc != EVF_EINVAL)
		fail_msg("'%s' loaded (rc %d) instead of failing with '%s'", text, rc, want);
	if (!strstr(evf_error_last(), want))
		fail_msg("'%s': message '%s' lacks '%s'", text, evf_error_last(), want);
	evf_settings_free(s);
}

/* ---- tests ------------------------------------------------------------------ */

static int count_cb(const evf_setting *st, void *user)
{
	(void)st;
	(*(int *)user)++;
	return 0;
}

/* The variable of each key follows the rule of evf.conf(5). */
static int env_rule_cb(const evf_setting *st, void *user)
{
	char want[80];
	const char *dot = strchr(st->name, '.');

	(void)user;
	assert_non_null(dot);
	if (!strcmp(st->name, "evf.database"))
		snprintf(want, sizeof want, "EVF_DATABASE_URL");
	else if (!strncmp(st->name, "evf.", 4))
		snprintf(want, sizeof want, "EVF_%s", dot + 1);
	else
		snprintf(want, sizeof want, "EVF_%s", st->name);
	for (char *p = want; *p; p++)
		*p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	assert_non_null(st->env);
	assert_string_equal(st->env, want);
	assert_string_equal(st->source, "default");
	return 0;
}

static void test_defaults(void **state)
{
	evf_settings *s;
	int n = 0;

	(void)state;
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	assert_null(s->evf.database);
	assert_string_equal(s->evf.table, "evf_event");
	assert_int_equal(s->evf.max_attempts, 5);
	assert_int_equal(s->evf.backoff_base_ms, 1000);
	assert_int_equal(s->evf.backoff_max_ms, 3600000);
	assert_int_equal(s->evf.lock_timeout_ms, 300000);
	assert_int_equal(s->evf.poll_interval_ms, 1000);
	assert_int_equal(s->evf.busy_timeout_ms, 10000);
	assert_int_equal(s->evf.batch_size, 100);
	assert_int_equal(s->concurrency, 1);
	assert_true(s->evf.listen);
	assert_true(s->wake);
	assert_int_equal(s->evf.exec_timeout_ms, 0);
	assert_null(s->evf.worker_name);
	assert_int_equal(s->evf.log_format, EVF_LOG_LOGFMT);
	assert_int_equal(s->evf.log_level, EVF_LOG_LEVEL_INFO);
	assert_int_equal(s->nhandlers, 0);
	assert_null(s->metrics.textfile);
	assert_null(s->metrics.statsd);
	assert_int_equal(s->metrics.interval_ms, 5000);
	assert_int_equal(s->health.stuck_warning, 1);
	assert_int_equal(s->health.stuck_critical, 10);
	assert_int_equal(s->health.oldest_ready_warning_ms, 300000);
	assert_int_equal(s->health.oldest_ready_critical_ms, 1800000);
	assert_int_equal(s->health.window_ms, 900000);
	assert_true(s->health.failure_ratio_warning == 0.1);
	assert_true(s->health.failure_ratio_critical == 0.5);
	assert_int_equal(s->health.dead_warning, 1);
	assert_int_equal(s->health.dead_critical, 100);
	assert_int_equal(s->health.idle_queue_ms, 300000);
	assert_null(evf_settings_path(s));

	assert_int_equal(evf_settings_foreach(s, count_cb, &n), 0);
	assert_int_equal(n, 29);
	evf_settings_foreach(s, env_rule_cb, NULL);
	expect_setting(s, "evf.lock_timeout", "5m", "default");
	expect_setting(s, "evf.listen", "yes", "default");
	expect_setting(s, "health.failure_ratio_warning", "0.1", "default");
	assert_true(lookup_setting(s, "evf.database").unset);
	evf_settings_free(s);
	evf_settings_free(NULL);
}

static void test_every_type(void **state)
{
	evf_settings *s;
	char *path, src[600];

	(void)state;
	EVF_OK_OR_FAIL(load_text(&s,
		"# a comment\n"
		"; another\n"
		"   # an indented one\n"
		"\n"
		"[evf]\n"
		"database = \"postgresql://bob:s3cret@db.example/app\"\n"   /* 6 */
		"table=jobs\n"
		"  max_attempts   =   7  \n"
		"backoff_base = 500ms\n"
		"backoff_max = 1h30m\r\n"                                    /* 10: CRLF */
		"lock_timeout = 90\n"
		"poll_interval = 2s\n"
		"busy_timeout = 1m\n"
		"batch_size = 10000\n"
		"listen = off\n"
		"exec_timeout = 1500ms\n"
		"worker_name = \"  spaced name  \"\n"
		"log_format = json\n"
		"log_level = warning\n"
		"[handlers]\n"                                               /* 20 */
		"order.created = /bin/handle --x=1; echo '#not a comment'\n"
		"* = cat >/dev/null\n"
		"[ metrics ]\n"
		"textfile = /var/lib/x.prom\n"
		"statsd = [::1]:8125\n"
		"interval = 1s\n"
		"[health]\n"
		"stuck_warning = 2\n"
		"stuck_critical = 2\n"
		"oldest_ready_warning = 1m\n"                                /* 30 */
		"oldest_ready_critical = 2m\n"
		"window = 1h\n"
		"failure_ratio_warning = 0\n"
		"failure_ratio_critical = 1\n"
		"dead_warning = 5\n"
		"dead_critical = 50\n"
		"idle_queue = 10m\n"
		"[evf]\n"
		"; the same section again\n", &path));
	assert_string_equal(evf_settings_path(s), path);
	assert_string_equal(s->evf.database, "postgresql://bob:s3cret@db.example/app");
	assert_string_equal(s->evf.table, "jobs");
	assert_int_equal(s->evf.max_attempts, 7);
	assert_int_equal(s->evf.backoff_base_ms, 500);
	assert_int_equal(s->evf.backoff_max_ms, 5400000);
	assert_int_equal(s->evf.lock_timeout_ms, 90000);
	assert_int_equal(s->evf.poll_interval_ms, 2000);
	assert_int_equal(s->evf.busy_timeout_ms, 60000);
	assert_int_equal(s->evf.batch_size, 10000);
	assert_false(s->evf.listen);
	assert_int_equal(s->evf.exec_timeout_ms, 1500);
	assert_string_equal(s->evf.worker_name, "  spaced name  ");
	assert_int_equal(s->evf.log_format, EVF_LOG_JSON);
	assert_int_equal(s->evf.log_level, EVF_LOG_LEVEL_WARNING);
	assert_int_equal(s->nhandlers, 2);
	assert_string_equal(s->handlers[0].type, "order.created");
	assert_string_equal(s->handlers[0].command, "/bin/handle --x=1; echo '#not a comment'");
	assert_string_equal(s->handlers[1].type, "*");
	assert_string_equal(s->handlers[1].command, "cat >/dev/null");
	assert_string_equal(s->metrics.textfile, "/var/lib/x.prom");
	assert_string_equal(s->metrics.statsd, "[::1]:8125");
	assert_int_equal(s->metrics.interval_ms, 1000);
	assert_int_equal(s->health.stuck_warning, 2);
	assert_int_equal(s->health.stuck_critical, 2);
	assert_int_equal(s->health.oldest_ready_warning_ms, 60000);
	assert_int_equal(s->health.oldest_ready_critical_ms, 120000);
	assert_int_equal(s->health.window_ms, 3600000);
	assert_true(s->health.failure_ratio_warning == 0);
	assert_true(s->health.failure_ratio_critical == 1);
	assert_int_equal(s->health.dead_warning, 5);
	assert_int_equal(s->health.dead_critical, 50);
	assert_int_equal(s->health.idle_queue_ms, 600000);

	/* display: masked password, canonical durations, sources with lines */
	snprintf(src, sizeof src, "file:%s:6", path);
	expect_setting(s, "evf.database", "postgresql://bob:***@db.example/app", src);
	snprintf(src, sizeof src, "file:%s:10", path);
	expect_setting(s, "evf.backoff_max", "1h30m", src);
	expect_setting(s, "evf.lock_timeout", "1m30s", NULL);
	expect_setting(s, "evf.exec_timeout", "1s500ms", NULL);
	expect_setting(s, "evf.listen", "no", NULL);
	expect_setting(s, "evf.log_level", "warning", NULL);
	snprintf(src, sizeof src, "file:%s:21", path);
	expect_setting(s, "handlers.order.created", "/bin/handle --x=1; echo '#not a comment'", src);
	assert_string_equal(lookup_setting(s, "handlers.*").env, "");
	expect_setting(s, "health.failure_ratio_critical", "1", NULL);
	evf_settings_free(s);
	free(path);
}

static void test_booleans(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	char text[64];
	evf_settings *s;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof text, "[evf]\nlisten = %s\nwake = %s\n", no[i], no[i]);
		EVF_OK_OR_FAIL(load_text(&s, text, NULL));
		assert_false(s->evf.listen);
		assert_false(s->wake);
		EVF_OK_OR_FAIL(evf_settings_set(s, "evf.listen", yes[i], "--listen"));
		assert_true(s->evf.listen);
		evf_settings_free(s);
	}
}

static void test_errors(void **state)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "[evf]\nbatchsize = 3\n", ":2: unknown key 'batchsize' in [evf]" },
		{ "[evf]\n\n[evf2]\n", ":3: unknown section [evf2]" },
		{ "batch_size = 3\n", ":1: key 'batch_size' before any section" },
		{ "[evf]\nbatch_size 3\n", ":2: expected 'key = value' or '[section]'" },
		{ "[evf\n", ":1: malformed section header" },
		{ "[evf] x\n", ":1: malformed section header" },
		{ "[evf]\n= 3\n", ":2: no key before '='" },
		{ "[evf]\ntable = \"jobs\n", ":2: unterminated quote" },
		{ "[evf]\ntable = \"\n", ":2: unterminated quote" },
		{ "[evf]\ntable =\n", ":2: empty value for table in [evf]" },
		{ "[evf]\ntable = \"\"\n", ":2: empty value for table in [evf]" },
		{ "[evf]\nbatch_size = 1\n# x\nbatch_size = 2\n",
		  ":4: 'batch_size' in [evf] is already set on line 2" },
		{ "[handlers]\nx = a\nx = b\n", ":3: a second handler for 'x'" },
		{ "[handlers]\nx =\n", ":2: empty command for 'x'" },
		{ "[evf]\ntable = a-b\n", ":2: bad table name for table in [evf]: 'a-b'" },
		{ "[evf]\ndatabase = mysql://h/db\n", ":2: bad database URL for database in [evf]" },
		/* durations */
		{ "[evf]\nlock_timeout = 5 minutes\n", ":2: bad duration for lock_timeout in [evf]: '5 minutes'" },
		{ "[evf]\nlock_timeout = 0\n", ":2: bad duration for lock_timeout in [evf]: '0' (must be longer than 0)" },
		{ "[evf]\npoll_interval = -1s\n", ":2: bad duration for poll_interval in [evf]" },
		{ "[metrics]\ninterval = 5x\n", ":2: bad duration for interval in [metrics]" },
		{ "[health]\nwindow = 1h 30m\n", ":2: bad duration for window in [health]" },
		/* booleans */
		{ "[evf]\nlisten = maybe\n", ":2: bad boolean for listen in [evf]: 'maybe'" },
		{ "[evf]\nlisten = YES\n", ":2: bad boolean for listen in [evf]" },
		/* numbers */
		{ "[evf]\nbatch_size = 0\n", ":2: bad number for batch_size in [evf]: '0' (must be from 1 to 10000)" },
		{ "[evf]\nbatch_size = 10001\n", ":2: bad number for batch_size in [evf]" },
		{ "[evf]\nbatch_size = +5\n", ":2: bad number for batch_size in [evf]" },
		{ "[evf]\nbatch_size = 5x\n", ":2: bad number for batch_size in [evf]" },
		{ "[evf]\nmax_attempts = 99999999999\n", ":2: bad number for max_attempts in [evf]" },
		{ "[health]\ndead_warning = -1\n", ":2: bad number for dead_warning in [health]" },
		/* ratios */
		{ "[health]\nfailure_ratio_warning = 1.5\n", ":2: bad ratio for failure_ratio_warning in [health]: '1.5'" },
		{ "[health]\nfailure_ratio_warning = 1e-1\n", ":2: bad ratio" },
		{ "[health]\nfailure_ratio_warning = 0.1.2\n", ":2: bad ratio" },
		{ "[health]\nfailure_ratio_warning = nan\n", ":2: bad ratio" },
		{ "[health]\nfailure_ratio_warning = -0.1\n", ":2: bad ratio" },
		/* enumerations and addresses */
		{ "[evf]\nlog_format = xml\n", ":2: unknown log format 'xml' for log_format in [evf]" },
		{ "[evf]\nlog_level = debug\n", ":2: unknown log level 'debug' for log_level in [evf]" },
		{ "[metrics]\nstatsd = localhost\n", ":2: bad address for statsd in [metrics]: 'localhost'" },
		{ "[metrics]\nstatsd = localhost:0\n", ":2: bad address" },
		{ "[metrics]\nstatsd = localhost:65536\n", ":2: bad address" },
		{ "[metrics]\nstatsd = :8125\n", ":2: bad address" },
		{ "[metrics]\nstatsd = localhost:\n", ":2: bad address" },
		{ "[metrics]\nstatsd = ::1:8125\n", ":2: bad address" },
		/* thresholds, checked once the file is in */
		{ "[health]\nstuck_warning = 20\n", "health.stuck_warning = 20 (file:" },
		{ "[health]\nfailure_ratio_critical = 0.05\n",
		  "health.failure_ratio_warning = 0.1 (default) must not be above "
		  "health.failure_ratio_critical = 0.05 (file:" },
		{ "[health]\noldest_ready_critical = 1m\n", "must not be above health.oldest_ready_critical = 1m" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_load_error(cases[i].text, cases[i].want);
}

static void test_thresholds_in_order(void **state)
{
	evf_settings *s;

	(void)state;
	/* warning above the default critical, then critical raised: fine */
	EVF_OK_OR_FAIL(load_text(&s, "[health]\nstuck_warning = 20\nstuck_critical = 30\n", NULL));
	assert_int_equal(s->health.stuck_warning, 20);
	evf_settings_free(s);
}

static void test_missing_files(void **state)
{
	evf_settings *s;
	char *path = tu_path("absent");

	(void)state;
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	assert_int_equal(evf_settings_load(s, path), EVF_ENOTFOUND);
	assert_non_null(strstr(evf_error_last(), path));
	setenv("EVF_CONFIG", path, 1);
	assert_int_equal(evf_settings_load(s, NULL), EVF_ENOTFOUND);
	assert_non_null(strstr(evf_error_last(), "named by EVF_CONFIG"));
	/* a directory exists but is no file */
	assert_int_equal(evf_settings_load(s, tu_tmpdir()), EVF_ERROR);
	unsetenv("EVF_CONFIG");
	evf_settings_free(s);
	free(path);
}

static void test_environment(void **state)
{
	evf_settings *s;
	char *path = write_conf("[evf]\nbatch_size = 50\ntable = from_file\n"
	                        "[health]\nwindow = 1h\n");

	(void)state;
	setenv("EVF_BATCH_SIZE", "70", 1);
	setenv("EVF_TABLE", "", 1); /* empty: unset */
	setenv("EVF_HEALTH_IDLE_QUEUE", "2m", 1);
	setenv("EVF_DATABASE_URL", "host=/tmp dbname=x password=pw", 1);
	setenv("EVF_CONFIG", path, 1);
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	EVF_OK_OR_FAIL(evf_settings_load(s, NULL));
	assert_string_equal(evf_settings_path(s), path);
	assert_int_equal(s->evf.batch_size, 70);
	expect_setting(s, "evf.batch_size", "70", "env EVF_BATCH_SIZE");
	expect_setting(s, "evf.table", "from_file", "file::3");
	expect_setting(s, "health.window", "1h", "file::5");
	expect_setting(s, "health.idle_queue", "2m", "env EVF_HEALTH_IDLE_QUEUE");
	expect_setting(s, "evf.database", "host=/tmp dbname=x password=***", "env EVF_DATABASE_URL");

	/* a flag beats the variable */
	EVF_OK_OR_FAIL(evf_settings_set(s, "evf.batch_size", "80", "--batch-size"));
	expect_setting(s, "evf.batch_size", "80", "--batch-size");
	evf_settings_free(s);

	/* a bad variable names itself */
	setenv("EVF_LISTEN", "perhaps", 1);
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	assert_int_equal(evf_settings_load(s, NULL), EVF_EINVAL);
	assert_string_equal(evf_error_last(), "bad boolean for EVF_LISTEN: 'perhaps' "
	                    "(use yes, no, true, false, on, off, 1 or 0)");
	evf_settings_free(s);
	setenv("EVF_LISTEN", "no", 1);
	setenv("EVF_HEALTH_DEAD_CRITICAL", "0.5", 1);
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	assert_int_equal(evf_settings_load(s, NULL), EVF_EINVAL);
	assert_non_null(strstr(evf_error_last(), "bad number for EVF_HEALTH_DEAD_CRITICAL: '0.5'"));
	evf_settings_free(s);
	clean_env(NULL);
	free(path);
}

static void test_set(void **state)
{
	evf_settings *s;

	(void)state;
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	EVF_OK_OR_FAIL(evf_settings_set(s, "evf.database", "sqlite:/tmp/x.db", "--db"));
	assert_string_equal(s->evf.database, "sqlite:/tmp/x.db");
	expect_setting(s, "evf.database", "sqlite:/tmp/x.db", "--db");
	EVF_OK_OR_FAIL(evf_settings_set(s, "evf.worker_name", "w1", NULL));
	expect_setting(s, "evf.worker_name", "w1", "evf.worker_name");

	/* a bad value changes nothing, and names the flag */
	assert_int_equal(evf_settings_set(s, "evf.lock_timeout", "soon", "--lock-timeout"), EVF_EINVAL);
	assert_string_equal(evf_error_last(), "bad duration for --lock-timeout: 'soon' "
	                    "(e.g. 500ms, 30s, 5m, 2h, 7d, 1h30m)");
	expect_setting(s, "evf.lock_timeout", "5m", "default");
	assert_int_equal(evf_settings_set(s, "evf.table", "no good", "--table"), EVF_EINVAL);
	assert_string_equal(s->evf.table, "evf_event");
	assert_int_equal(evf_settings_set(s, "evf.database", "", "--db"), EVF_EINVAL);
	assert_string_equal(evf_error_last(), "empty value for --db");
	assert_string_equal(s->evf.database, "sqlite:/tmp/x.db");

	/* unknown keys; handlers are not keys */
	assert_int_equal(evf_settings_set(s, "evf.batchsize", "1", "--x"), EVF_EINVAL);
	assert_int_equal(evf_settings_set(s, "batch_size", "1", "--x"), EVF_EINVAL);
	assert_int_equal(evf_settings_set(s, "handlers.x", "true", "--exec"), EVF_EINVAL);
	assert_int_equal(evf_settings_set(s, NULL, "1", "--x"), EVF_EINVAL);
	assert_int_equal(evf_settings_set(s, "evf.batch_size", NULL, "--x"), EVF_EINVAL);

	/* a threshold set out of order is refused, and nothing changes */
	assert_int_equal(evf_settings_set(s, "health.dead_warning", "200", "--dead-warning"), EVF_EINVAL);
	assert_string_equal(evf_error_last(), "health.dead_warning = 200 (--dead-warning) "
	                    "must not be above health.dead_critical = 100 (default)");
	assert_int_equal(s->health.dead_warning, 1);
	EVF_OK_OR_FAIL(evf_settings_set(s, "health.dead_critical", "300", "--dead-critical"));
	EVF_OK_OR_FAIL(evf_settings_set(s, "health.dead_warning", "200", "--dead-warning"));
	assert_int_equal(s->health.dead_warning, 200);
	evf_settings_free(s);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_lookup(void **state)
{
	char base[400], work[450], xdg[450], home[450], p[600], cwd[1024];
	evf_settings *s;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof cwd));
	snprintf(base, sizeof base, "%s/lookup", tu_tmpdir());
	snprintf(work, sizeof work, "%s/work", base);
	snprintf(xdg, sizeof xdg, "%s/xdg", base);
	snprintf(home, sizeof home, "%s/home", base);
	mkdir(base, 0700);
	mkdir(work, 0700);
	mkdir(xdg, 0700);
	snprintf(p, sizeof p, "%s/evf", xdg);
	mkdir(p, 0700);
	mkdir(home, 0700);
	snprintf(p, sizeof p, "%s/.config", home);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/.config/evf", home);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/.config/evf/evf.conf", home);
	write_file(p, "[evf]\nbatch_size = 3\n");
	snprintf(p, sizeof p, "%s/evf/evf.conf", xdg);
	write_file(p, "[evf]\nbatch_size = 2\n");
	snprintf(p, sizeof p, "%s/evf.conf", work);
	write_file(p, "[evf]\nbatch_size = 1\n");
	assert_int_equal(chdir(work), 0);
	setenv("HOME", home, 1);
	setenv("XDG_CONFIG_HOME", xdg, 1);

	/* ./evf.conf first */
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	EVF_OK_OR_FAIL(evf_settings_load(s, NULL));
	assert_string_equal(evf_settings_path(s), "./evf.conf");
	assert_int_equal(s->evf.batch_size, 1);
	evf_settings_free(s);

	/* then $XDG_CONFIG_HOME/evf/evf.conf */
	assert_int_equal(unlink(p), 0);
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	EVF_OK_OR_FAIL(evf_settings_load(s, NULL));
	assert_int_equal(s->evf.batch_size, 2);
	evf_settings_free(s);

	/* ~/.config/evf/evf.conf when XDG_CONFIG_HOME is unset */
	unsetenv("XDG_CONFIG_HOME");
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	EVF_OK_OR_FAIL(evf_settings_load(s, NULL));
	assert_int_equal(s->evf.batch_size, 3);
	evf_settings_free(s);

	/* an XDG_CONFIG_HOME without the file does not fall back to ~/.config;
	 * with no file at all the defaults stand (unless this machine has
	 * /etc/evf/evf.conf) */
	setenv("XDG_CONFIG_HOME", work, 1);
	EVF_OK_OR_FAIL(evf_settings_new(&s));
	if (access("/etc/evf/evf.conf", F_OK) != 0) {
		EVF_OK_OR_FAIL(evf_settings_load(s, NULL));
		assert_null(evf_settings_path(s));
		assert_int_equal(s->evf.batch_size, 100);
	}
	evf_settings_free(s);
	unsetenv("XDG_CONFIG_HOME");
	assert_int_equal(chdir(cwd), 0);
}

static int stop_at_second(const evf_setting *st, void *user)
{
	(void)st;
	return ++*(int *)user == 2 ? 42 : 0;
}

struct order {
	char names[40][64];
	int n;
};

static int order_cb(const evf_setting *st, void *user)
{
	struct order *o = user;

	if (o->n < 40)
		snprintf(o->names[o->n++], sizeof o->names[0], "%s", st->name);
	return 0;
}

static void test_foreach_and_options(void **state)
{
	evf_settings *s;
	struct order o = { .n = 0 };
	int n = 0;

	(void)state;
	EVF_OK_OR_FAIL(load_text(&s, "[handlers]\nb = true\na = false\n"
	                         "[evf]\nlisten = no\nworker_name = w\n"
	                         "max_attempts = 9\nbusy_timeout = 2s\n", NULL));
	/* a second file replaces the handlers of the first */
	char *other = write_conf("[handlers]\nc = true\n");
	EVF_OK_OR_FAIL(evf_settings_load(s, other));
	assert_int_equal(s->nhandlers, 1);
	assert_string_equal(s->handlers[0].type, "c");
	free(other);
	evf_settings_free(s);
	EVF_OK_OR_FAIL(load_text(&s, "[handlers]\nb = true\na = false\n"
	                         "[evf]\nlisten = no\nworker_name = w\nwake = no\n"
	                         "max_attempts = 9\nbusy_timeout = 2s\n", NULL));
	assert_int_equal(evf_settings_foreach(s, stop_at_second, &n), 42);
	assert_int_equal(n, 2);
	evf_settings_foreach(s, order_cb, &o);
	assert_int_equal(o.n, 31);
	assert_string_equal(o.names[9], "evf.concurrency");
	assert_string_equal(o.names[11], "evf.wake");
	assert_string_equal(o.names[15], "evf.log_level");
	assert_string_equal(o.names[16], "handlers.b");
	assert_string_equal(o.names[17], "handlers.a");
	assert_string_equal(o.names[18], "metrics.textfile");

	evf_options opts = EVF_OPTIONS_INIT;
	opts.create = true;
	evf_settings_options(s, &opts);
	assert_int_equal(opts.version, EVF_OPTIONS_VERSION);
	assert_true(opts.create);
	assert_string_equal(opts.table, "evf_event");
	assert_int_equal(opts.max_attempts, 9);
	assert_int_equal(opts.busy_timeout_ms, 2000);
	assert_int_equal(opts.lock_timeout_ms, 300000);
	assert_int_equal(opts.poll_interval_ms, 1000);
	assert_int_equal(opts.backoff_base_ms, 1000);
	assert_int_equal(opts.backoff_max_ms, 3600000);
	assert_true(opts.no_listen);
	assert_true(opts.no_wake);

	evf_worker_options w = EVF_WORKER_OPTIONS_INIT;
	w.once = true;
	EVF_OK_OR_FAIL(evf_settings_set(s, "evf.batch_size", "7", "--batch-size"));
	EVF_OK_OR_FAIL(evf_settings_set(s, "evf.log_format", "json", "--log-format"));
	EVF_OK_OR_FAIL(evf_settings_set(s, "evf.concurrency", "6", "--concurrency"));
	evf_settings_worker_options(s, &w);
	assert_int_equal(w.concurrency, 6);
	assert_true(w.once);
	assert_string_equal(w.name, "w");
	assert_int_equal(w.batch_size, 7);
	assert_int_equal(w.lock_timeout_ms, 300000);
	assert_int_equal(w.poll_interval_ms, 1000);
	assert_int_equal(w.log_format, EVF_LOG_JSON);
	assert_int_equal(w.nrates, 0);
	/* a version 2 struct ends before concurrency: never written */
	struct { evf_worker_options o; int guard; } v2 = { EVF_WORKER_OPTIONS_INIT, 0 };
	v2.o.version = 2;
	v2.o.concurrency = 0;
	evf_settings_worker_options(s, &v2.o);
	assert_int_equal(v2.o.concurrency, 0);
	evf_settings_free(s);
}

static void test_rates(void **state)
{
	(void)state;
	double r;
	EVF_OK_OR_FAIL(evf_rate_parse(&r, "10/s"));
	assert_true(r == 10);
	EVF_OK_OR_FAIL(evf_rate_parse(&r, "90/m"));
	assert_true(r == 1.5);
	EVF_OK_OR_FAIL(evf_rate_parse(&r, "0.5/h"));
	assert_true(fabs(r - 0.5 / 3600) < 1e-12);
	const char *bad[] = { "", "5", "0/s", "-1/s", "x/s", "5/d", "5/s ", " 5/s", "inf/s",
	                      "nan/s", "5/", "/s" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(evf_rate_parse(&r, bad[i]), EVF_EINVAL);

	evf_settings *s;
	EVF_OK_OR_FAIL(load_text(&s, "[rates]\nmail.* = 10/s\n* = 100/m\n"
	                         "[global_rates]\nmail.* = 1/s\n", NULL));
	assert_int_equal(s->nrates, 3);
	assert_string_equal(s->rates[0].type, "mail.*");
	assert_true(s->rates[0].per_second == 10 && !s->rates[0].global);
	assert_true(s->rates[2].per_second == 1 && s->rates[2].global);
	evf_worker_options w = EVF_WORKER_OPTIONS_INIT;
	evf_settings_worker_options(s, &w);
	assert_int_equal(w.nrates, 3);
	evf_settings_free(s);
	assert_int_equal(load_text(&s, "[rates]\na = 1/s\na = 2/s\n", NULL), EVF_EINVAL);
	assert_non_null(strstr(evf_error_last(), "a second rate for 'a'"));
	evf_settings_free(s);
	assert_int_equal(load_text(&s, "[global_rates]\na = 2/d\n", NULL), EVF_EINVAL);
	assert_non_null(strstr(evf_error_last(), ":2: [global_rates] a: bad rate"));
	evf_settings_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, clean_env),
		cmocka_unit_test_setup(test_rates, clean_env),
		cmocka_unit_test_setup(test_every_type, clean_env),
		cmocka_unit_test_setup(test_booleans, clean_env),
		cmocka_unit_test_setup(test_errors, clean_env),
		cmocka_unit_test_setup(test_thresholds_in_order, clean_env),
		cmocka_unit_test_setup(test_missing_files, clean_env),
		cmocka_unit_test_setup(test_environment, clean_env),
		cmocka_unit_test_setup(test_set, clean_env),
		cmocka_unit_test_setup(test_lookup, clean_env),
		cmocka_unit_test_setup(test_foreach_and_options, clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
