#!/bin/sh
# test_concurrency.sh on PostgreSQL.
EVF_CLI_BACKEND=pg
export EVF_CLI_BACKEND
exec sh "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/cli/test_concurrency.sh"
