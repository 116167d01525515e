/* test_json.c - parameter validation and the JSON form of events. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void test_validate(void **state)
{
	(void)state;
	const char *good[] = { "{}", "[]", "1", "\"s\"", "null", "{\"a\":[1,2,{\"b\":\"\\u00e9\"}]}", " {} " };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		EVF_OK_OR_FAIL(evfi_json_validate(good[i]));
	const char *bad[] = { "", "{", "{a:1}", "{} {}", "[1,]", "'x'", "{\"a\":1}garbage" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(evfi_json_validate(bad[i]), EVF_EINVAL);
		assert_non_null(strstr(evf_error_last(), "invalid JSON"));
	}
}

static void test_event_json(void **state)
{
	(void)state;
	evf_event ev;
	memset(&ev, 0, sizeof ev);
	ev.id = 42;
	ev.type = "order.created";
	ev.parameters = "{\"n\":1}";
	ev.date = 1000000;
	ev.error_message = "boom \"quoted\"";
	ev.state = EVF_STATE_FAILED;
	char *s = evf_event_to_json(&ev, false);
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(j, "id")->valuedouble, 42);
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "parameters")));
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "failed");
	assert_string_equal(cJSON_GetObjectItem(j, "error_message")->valuestring, "boom \"quoted\"");
	assert_string_equal(cJSON_GetObjectItem(j, "date")->valuestring, "1970-01-01 00:00:01.000000");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "locked_until")));
	cJSON_Delete(j);
	free(s);
}

static void test_log_lines(void **state)
{
	(void)state;
	evf_event ev;
	memset(&ev, 0, sizeof ev);
	ev.id = 7;
	ev.type = "mail.send";
	ev.attempts = 2;
	ev.correlation_id = "c-1";
	evf_outcome o = { .event = &ev, .ok = false, .applied = true, .error_code = "E",
	                  .error_message = "smtp said \"no\"", .retry_at = 2000000, .duration_ms = 1.5 };
	char *line = evfi_log_line(EVF_LOG_LOGFMT, "host:1:abcd", &o);
	assert_non_null(strstr(line, " msg=retry id=7 type=mail.send attempts=2 correlation_id=c-1 worker=host:1:abcd"));
	assert_non_null(strstr(line, "error=\"smtp said \\\"no\\\"\""));
	free(line);
	line = evfi_log_line(EVF_LOG_JSON, "w", &o);
	cJSON *j = cJSON_Parse(line);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, "retry");
	assert_string_equal(cJSON_GetObjectItem(j, "correlation_id")->valuestring, "c-1");
	cJSON_Delete(j);
	free(line);

	/* warnings: what the worker lets pass, with the error when there is one */
	line = evfi_log_warning(EVF_LOG_LOGFMT, "w", "lease renewal failed", "server \"gone\"");
	assert_non_null(strstr(line, " level=warn msg=\"lease renewal failed\" worker=w "
	                             "error=\"server \\\"gone\\\"\""));
	free(line);
	line = evfi_log_warning(EVF_LOG_LOGFMT, "w", "metrics: off", NULL);
	assert_null(strstr(line, "error="));
	free(line);
	line = evfi_log_warning(EVF_LOG_JSON, "w", "lease renewal failed", "gone");
	j = cJSON_Parse(line);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
	assert_string_equal(cJSON_GetObjectItem(j, "error")->valuestring, "gone");
	cJSON_Delete(j);
	free(line);
}

/* The decimal writer behind the id lists of claims and completions. */
static void test_buf_add_int(void **state)
{
	(void)state;
	const int64_t v[] = { 0, 7, -7, 1234567890123, INT64_MAX, INT64_MIN };
	evfi_buf b = { 0 };
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		if (i)
			evfi_buf_add(&b, ",", 1);
		evfi_buf_add_int(&b, v[i]);
	}
	assert_false(b.oom);
	assert_string_equal(b.data, "0,7,-7,1234567890123,9223372036854775807,"
	                            "-9223372036854775808");
	evfi_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_buf_add_int),
		cmocka_unit_test(test_event_json),
		cmocka_unit_test(test_log_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
