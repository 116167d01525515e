#!/bin/sh
# The kill -9 test on PostgreSQL.
EVF_STRESS_BACKEND=pg
export EVF_STRESS_BACKEND
exec sh "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/stress/test_crash.sh"
