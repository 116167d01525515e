/* backoff.c - when to retry a failed event. */
#include "evf_internal.h"

/* Exponential (base * 2^(attempts-1)), capped, with "equal jitter": half
 * the delay is fixed and half random, so retries of events that failed
 * together spread out but never come back sooner than half the step. */
int64_t evf_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, double r)
{
	if (attempts < 1)
		attempts = 1;
	if (base_ms < 0)
		base_ms = 0;
	if (r < 0 || r >= 1)
		r = 0;
	int64_t d = base_ms;
	for (int i = 1; i < attempts && d < max_ms; i++)
		d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
	if (max_ms > 0 && d > max_ms)
		d = max_ms;
	return d / 2 + (int64_t)((double)(d - d / 2) * r);
}
