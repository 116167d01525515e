/* test_state.c - the state rule and state names. */
#include "testutil.h"

#include <string.h>

static void test_state_rule(void **state)
{
	(void)state;
	evf_time now = 1000000000;
	evf_event ev;
	memset(&ev, 0, sizeof ev);
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_PENDING);
	ev.not_before = now + 1;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_SCHEDULED);
	ev.error = true;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_FAILED);
	ev.locked_until = now + 1;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_RUNNING);
	ev.locked_until = now;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_STUCK);
	ev.dead = true;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_DEAD);
	memset(&ev, 0, sizeof ev);
	ev.processed = true;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_DONE);
	/* how the original package recorded a final failure */
	ev.error = true;
	assert_int_equal(evfi_state_of(&ev, now), EVF_STATE_DEAD);
}

static void test_state_names(void **state)
{
	(void)state;
	for (int i = 0; i < EVF_STATE__COUNT; i++) {
		evf_state s;
		EVF_OK_OR_FAIL(evf_state_parse(&s, evf_state_name((evf_state)i)));
		assert_int_equal(s, i);
	}
	evf_state s;
	assert_int_equal(evf_state_parse(&s, "finished"), EVF_EINVAL);
	assert_non_null(strstr(evf_error_last(), "unknown state 'finished'"));
	unsigned mask;
	EVF_OK_OR_FAIL(evf_state_mask_parse(&mask, "failed,dead"));
	assert_int_equal(mask, (1u << EVF_STATE_FAILED) | (1u << EVF_STATE_DEAD));
	assert_int_equal(evf_state_mask_parse(&mask, "failed,,dead"), EVF_EINVAL);
	assert_int_equal(evf_state_mask_parse(&mask, "failed,"), EVF_EINVAL);
	assert_int_equal(evf_state_mask_parse(&mask, ",failed"), EVF_EINVAL);
	assert_int_equal(evf_state_mask_parse(&mask, "failed,nope"), EVF_EINVAL);
	assert_int_equal(evf_state_mask_parse(&mask, ""), EVF_EINVAL);
}

static void test_action_states(void **state)
{
	(void)state;
	unsigned running = 1u << EVF_STATE_RUNNING;
	for (int a = EVF_ACTION_REQUEUE; a <= EVF_ACTION_SET_MAX_ATTEMPTS; a++)
		assert_false(evf_action_states((evf_action)a) & running);
	assert_false(evf_action_states(EVF_ACTION_REQUEUE) & (1u << EVF_STATE_PENDING));
	assert_false(evf_action_states(EVF_ACTION_DEAD_LETTER) & (1u << EVF_STATE_DEAD));
	assert_string_equal(evf_action_name(EVF_ACTION_MARK_PROCESSED), "mark-processed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_rule),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_action_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
