/* testutil.h - helpers shared by the cmocka suites. */
#ifndef EVF_TESTUTIL_H
#define EVF_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "evf_internal.h"

/* Fail the test with the library's message when rc is not 0. */
#define EVF_OK_OR_FAIL(expr) do { int rc_ = (expr); \
	if (rc_ != 0) fail_msg("%s -> %d: %s", #expr, rc_, evf_error_last()); } while (0)

/* A fresh directory for this process's files (removed at exit). */
const char *tu_tmpdir(void);
/* A unique path inside tu_tmpdir(). */
char *tu_path(const char *stem);
void tu_sleep_ms(int ms);

#endif
