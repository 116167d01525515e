/* testutil.c - temp dirs and small helpers for the cmocka suites. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static void remove_dir(void)
{
	char cmd[300];
	if (dir[0] && !getenv("EVF_TEST_KEEP")) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

const char *tu_tmpdir(void)
{
	if (!dir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/evf-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(1);
		}
		atexit(remove_dir);
	}
	return dir;
}

char *tu_path(const char *stem)
{
	static int n;
	char *p = malloc(512);
	snprintf(p, 512, "%s/%s-%d.db", tu_tmpdir(), stem, ++n);
	return p;
}

void tu_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}
