#!/bin/sh
# test_orders.sh on PostgreSQL.
EVF_CLI_BACKEND=pg
export EVF_CLI_BACKEND
exec sh "${EVF_TEST_SRCDIR:-$(dirname "$0")/../..}/tests/examples/test_orders.sh"
