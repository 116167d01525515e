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
static char *tail_message(const char *tail, size_t len)
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

/* One run of a command handler. */
typedef struct run {
	pid_t pid;
	int in, err;           /* our ends: its stdin, its stderr */
	int64_t started, timeout_ms;
	bool timed_out;
	char tail[STDERR_TAIL];
	size_t tail_len;
} run;

static bool past_deadline(const run *r)
{
	return r->timeout_ms > 0 && evfi_mono_ms() - r->started >= r->timeout_ms;
}

/* Start the command with the event's environment; 0 or an errno. */
static int run_start(run *r, const exec_handler *h, const evf_event *ev)
{
	int in[2] = { -1, -1 }, err[2] = { -1, -1 };
	char *envstore[4] = { NULL, NULL, NULL, NULL };
	char **env = build_env(ev, envstore);
	int e = 0;

	if (!env)
		return ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0)
		e = errno;
	r->started = evfi_mono_ms();
	r->timeout_ms = h->timeout_ms;
	if (!e)
		e = spawn(&r->pid, h->command, in[1], err[1], env);
	/* the child's ends are its own now; ours go too if it never started */
	if (in[1] >= 0)
		close(in[1]);
	if (err[1] >= 0)
		close(err[1]);
	if (e && in[0] >= 0)
		close(in[0]);
	if (e && err[0] >= 0)
		close(err[0]);
	free(env);
	for (int i = 0; i < 4; i++)
		free(envstore[i]);
	r->in = e ? -1 : in[0];
	r->err = e ? -1 : err[0];
	return e;
}

/* Feed the event to stdin and drain stderr together, so neither side can
 * block the other on a full pipe, until stderr closes or time runs out. */
static void run_pump(run *r, const char *json)
{
	size_t len = strlen(json), sent = 0;

	fcntl(r->in, F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p[2] = { { r->err, POLLIN, 0 }, { r->in, POLLOUT, 0 } };
		int timeout = -1;
		if (r->timeout_ms > 0) {
			int64_t left = r->timeout_ms - (evfi_mono_ms() - r->started);
			if (left <= 0) {
				r->timed_out = true;
				break;
			}
			timeout = left > 1000 ? 1000 : (int)left;
		}
		if (poll(p, r->in >= 0 ? 2 : 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			char buf[4096];
			ssize_t got = read(r->err, buf, sizeof buf);
			if (got > 0)
				tail_add(r->tail, &r->tail_len, buf, (size_t)got);
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				break;
		}
		if (r->in >= 0 && p[1].revents) {
			ssize_t w = send(r->in, json + sent, len - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				sent = len; /* the handler stopped reading: fine */
			if (sent >= len) {
				close(r->in);
				r->in = -1;
			}
		}
	}
	if (r->in >= 0)
		close(r->in);
	close(r->err);
	r->in = r->err = -1;
}

/* Wait for the process with the same deadline (it may outlive its stderr,
 * or a grandchild may hold it); past it, kill the whole group. */
static int run_reap(run *r)
{
	int status = 0;
	for (;;) {
		if (r->timed_out) {
			kill(-r->pid, SIGKILL);
			kill(r->pid, SIGKILL);
			while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
				;
			return status;
		}
		pid_t w = waitpid(r->pid, &status, r->timeout_ms > 0 ? WNOHANG : 0);
		if (w == r->pid)
			return status;
		if (w < 0 && errno != EINTR)
			return 127 << 8;
		if (w == 0) {
			if (past_deadline(r))
				r->timed_out = true;
			else
				usleep(2000);
		}
	}
}

/* Exit 0 succeeds, 75 retries later, 65 fails for good, anything else
 * (or a signal, or the timeout) is a retryable failure. */
static int run_verdict(evf_job *job, const run *r, int status)
{
	char *msg = tail_message(r->tail, r->tail_len);
	int rc = -1;
	if (r->timed_out) {
		evf_job_fail(job, 0, "TIMEOUT", true, "timed out after %lld ms%s%s",
		             (long long)r->timeout_ms, msg ? ": " : "", msg ? msg : "");
	} else if (WIFSIGNALED(status)) {
		if (msg)
			evf_job_fail(job, 0, "SIGNAL", true, "%s", msg);
		else
			evf_job_fail(job, 0, "SIGNAL", true, "handler killed by signal %d",
			             WTERMSIG(status));
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
	} else {
		rc = 0;
	}
	free(msg);
	return rc;
}

static int exec_run(evf_job *job, const evf_event *ev, void *user)
{
	run r = { .pid = -1, .in = -1, .err = -1 };
	char *json = evf_event_to_json(ev, false);
	int e = json ? run_start(&r, user, ev) : ENOMEM;

	if (e) {
		free(json);
		evf_job_fail(job, 0, "EXEC", true, "cannot start handler: %s", strerror(e));
		return -1;
	}
	run_pump(&r, json);
	free(json);
	return run_verdict(job, &r, run_reap(&r));
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
