#!/bin/sh
# The concurrency test on PostgreSQL: four workers drain 20,000 events,
# each handled exactly once.
EVF_STRESS_BACKEND=pg
EVF_STRESS_EVENTS=${EVF_STRESS_EVENTS_PG:-20000}
export EVF_STRESS_BACKEND EVF_STRESS_EVENTS
exec sh "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/stress/test_concurrency.sh"
