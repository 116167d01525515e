/*
 * exec.c - handlers that are commands in any language.
 *
 * The command runs under /bin/sh -c in a process group of its own, so a
 * Ctrl-C at the worker's terminal lets the running handler finish (the
 * worker stops after it) and a timeout can kill the whole group.  The
 * event goes to its stdin over a socket pair: send(MSG_NOSIGNAL) means a
 * handler that exits without reading cannot kill the worker with SIGPIPE.
 */
#include "evf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STDERR_TAIL 1024
#define EX_DATAERR_CODE 65
#define EX_TEMPFAIL_CODE 75

typedef struct exec_handler {
	char *command;
	int64_t timeout_ms;
} exec_handler;

static void exec_free(void *p)
{
	exec_handler *h = p;
	if (h)
		free(h->command);
	free(h);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start `sh -c command` in a process group of its own with the given
 * stdin and stderr (stdout joins stderr: it is the worker's log, not its
 * output).  posix_spawn is about twice as fast as fork+exec here, which is
 * most of the cost of a small handler. */
static int spawn(pid_t *pid, const char *command, int in_fd, int err_fd, char *const env[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)))
		return rc;
	if ((rc = posix_spawnattr_init(&at))) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	if (!(rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) &&
	    !(rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2)) &&
	    !(rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 1)) &&
	    !(rc = posix_spawnattr_setpgroup(&at, 0)) &&
	    !(rc = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(rc = posix_spawnattr_setsigdefault(&at, &dfl)) &&
	    !(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                         POSIX_SPAWN_SETSIGDEF))) {
		char *const argv[] = { (char *)"sh", (char *)"-c", (char *)command, NULL };
		rc = posix_spawn(pid, "/bin/sh", &fa, &at, argv, env);
	}
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

extern char **environ;

/* environ plus the EVF_* variables of this event. */
static char **build_env(const evf_event *ev, char *store[4])
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 5, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "EVF_EVENT_", 10) && strncmp(environ[i], "EVF_ATTEMPT=", 12) &&
		    strncmp(environ[i], "EVF_CORRELATION_ID=", 19))
			env[k++] = environ[i];
	evfi_buf b[4] = { { 0 } };
	evfi_buf_printf(&b[0], "EVF_EVENT_ID=%lld", (long long)ev->id);
	evfi_buf_printf(&b[1], "EVF_EVENT_TYPE=%s", ev->type);
	evfi_buf_printf(&b[2], "EVF_ATTEMPT=%d", ev->attempts);
	evfi_buf_printf(&b[3], "EVF_CORRELATION_ID=%s", ev->correlation_id ? ev->correlation_id : "");
	for (int i = 0; i < 4; i++) {
		store[i] = b[i].data;
		if (!store[i]) {
			for (int j = 0; j < i; j++)
				free(store[j]);
			free(env);
			return NULL;
		}
		env[k++] = store[i];
	}
	env[k] = NULL;
	return env;
}

/* Keep the last STDERR_TAIL bytes the handler wrote to stderr. */
static void tail_add(char *tail, size_t *len, const char *buf, size_t n)
{
	if (n >= STDERR_TAIL) {
		memcpy(tail, buf + n - STDERR_TAIL, STDERR_TAIL);
		*len = STDERR_TAIL;
		return;
	}
	if (*len + n > STDERR_TAIL) {
		size_t drop = *len + n - STDERR_TAIL;
		memmove(tail, tail + drop, *len - drop);
		*len -= drop;
	}
	memcpy(tail + *len, buf, n);
	*len += n;
}

/* The error message: the tail of stderr without trailing blank lines. */
static char *tail_message(char *tail, size_t len)
{
	while (len && (tail[len - 1] == '\n' || tail[len - 1] == '\r' ||
	               tail[len - 1] == ' ' || tail[len - 1] == '\t'))
		len--;
	size_t start = 0;
	while (start < len && (tail[start] == '\n' || tail[start] == ' '))
		start++;
	if (start >= len)
		return NULL;
	char *m = malloc(len - start + 1);
	if (m) {
		memcpy(m, tail + start, len - start);
		m[len - start] = '\0';
	}
	return m;
}

static int exec_run(evf_job *job, const evf_event *ev, void *user)
{
	exec_handler *h = user;
	int in[2] = { -1, -1 }, err[2] = { -1, -1 };
	char *envstore[4] = { NULL, NULL, NULL, NULL };
	char tail[STDERR_TAIL];
	size_t tail_len = 0;
	int status = 0;
	bool timed_out = false;

	char *json = evf_event_to_json(ev, false);
	char **env = json ? build_env(ev, envstore) : NULL;
	if (!json || !env) {
		free(json);
		free(env);
		return evf_job_fail(job, 0, "ENOMEM", true, "out of memory starting handler"), -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0)
				close(in[i]);
			if (err[i] >= 0)
				close(err[i]);
		}
		free(json);
		free(env);
		for (int i = 0; i < 4; i++)
			free(envstore[i]);
		evf_job_fail(job, 0, "EXEC", true, "cannot start handler: %s", strerror(e));
		return -1;
	}
	int64_t started = mono_ms();
	pid_t pid = -1;
	int serr = spawn(&pid, h->command, in[1], err[1], env);
	close(in[1]);
	close(err[1]);
	free(env);
	for (int i = 0; i < 4; i++)
		free(envstore[i]);
	if (serr) {
		close(in[0]);
		close(err[0]);
		free(json);
		evf_job_fail(job, 0, "EXEC", true, "cannot start handler: %s", strerror(serr));
		return -1;
	}

	/* Feed stdin and drain stderr together, so neither side can block the
	 * other on a full pipe. */
	size_t json_len = strlen(json), sent = 0;
	fcntl(in[0], F_SETFL, O_NONBLOCK);
	if (json_len == 0) {
		close(in[0]);
		in[0] = -1;
	}
	bool err_open = true;
	while (err_open) {
		struct pollfd p[2] = { { err[0], POLLIN, 0 }, { in[0], POLLOUT, 0 } };
		int timeout = -1;
		if (h->timeout_ms > 0) {
			int64_t left = h->timeout_ms - (mono_ms() - started);
			if (left <= 0) {
				timed_out = true;
				break;
			}
			timeout = left > 1000 ? 1000 : (int)left;
		}
		int r = poll(p, in[0] >= 0 ? 2 : 1, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			char buf[4096];
			ssize_t got = read(err[0], buf, sizeof buf);
			if (got > 0)
				tail_add(tail, &tail_len, buf, (size_t)got);
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				err_open = false;
		}
		if (in[0] >= 0 && p[1].revents) {
			ssize_t w = send(in[0], json + sent, json_len - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				sent = json_len; /* the handler stopped reading: fine */
			if (sent >= json_len) {
				close(in[0]);
				in[0] = -1;
			}
		}
	}
	if (in[0] >= 0)
		close(in[0]);
	close(err[0]);
	free(json);

	/* stderr closed; the process may still run (it closed stderr, or a
	 * grandchild keeps it).  Wait with the same deadline. */
	for (;;) {
		if (timed_out) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		pid_t r = waitpid(pid, &status, h->timeout_ms > 0 ? WNOHANG : 0);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = 127 << 8;
			break;
		}
		if (r == 0) {
			if (mono_ms() - started >= h->timeout_ms)
				timed_out = true;
			else
				usleep(2000);
		}
	}

	char *msg = tail_message(tail, tail_len);
	int rc = 0;
	if (timed_out) {
		evf_job_fail(job, 0, "TIMEOUT", true, "timed out after %lld ms%s%s",
		             (long long)h->timeout_ms, msg ? ": " : "", msg ? msg : "");
		rc = -1;
	} else if (WIFSIGNALED(status)) {
		if (msg)
			evf_job_fail(job, 0, "SIGNAL", true, "%s", msg);
		else
			evf_job_fail(job, 0, "SIGNAL", true, "handler killed by signal %d",
			             WTERMSIG(status));
		rc = -1;
	} else if (WEXITSTATUS(status) != 0) {
		int code = WEXITSTATUS(status);
		char codebuf[32];
		snprintf(codebuf, sizeof codebuf, "EXIT_%d", code);
		bool retryable = code != EX_DATAERR_CODE;
		const char *name = code == EX_TEMPFAIL_CODE ? "EX_TEMPFAIL"
		                 : code == EX_DATAERR_CODE ? "EX_DATAERR" : codebuf;
		if (msg)
			evf_job_fail(job, 0, name, retryable, "%s", msg);
		else
			evf_job_fail(job, 0, name, retryable, "handler exited with status %d", code);
		rc = -1;
	}
	free(msg);
	return rc;
}

int evf_register_exec(evf_worker *w, const char *type, const char *command,
                      int64_t timeout_ms)
{
	if (!command || !*command)
		return evfi_fail(EVF_EINVAL, "empty command for type %s", type ? type : "?");
	if (timeout_ms < 0)
		return evfi_fail(EVF_EINVAL, "negative handler timeout");
	exec_handler *h = calloc(1, sizeof *h);
	if (!h || !(h->command = strdup(command))) {
		free(h);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	h->timeout_ms = timeout_ms;
	evf_handler_options o = EVF_HANDLER_OPTIONS_INIT;
	o.user = h;
	o.user_free = exec_free;
	int rc = evf_register(w, type, exec_run, &o);
	if (rc)
		exec_free(h);
	return rc;
}
