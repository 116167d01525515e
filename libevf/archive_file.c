/*
 * archive_file.c - the archive file format: one event per line as a JSON
 * object with every column, gzip-compressed when the name ends in ".gz".
 *
 * Each chunk is written with one write() and fsync'd before the caller
 * deletes its rows; a gzip file gets one gzip member per chunk (readers,
 * gunzip and zcat included, read concatenated members as one stream), so
 * an interruption can only leave the last, not yet acknowledged, chunk
 * incomplete.  Appending first cuts such a tail off (its rows were never
 * deleted, so they are archived again); reading takes the complete lines
 * before it, ignores the rest (a cut line, a cut gzip member's remainder,
 * bytes a crash left) and says so.
 */
#include "evf_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK 65536

static bool gz_name(const char *path)
{
	size_t n = strlen(path);
	return n > 3 && !strcmp(path + n - 3, ".gz");
}

static int sys_fail(const char *what, const char *path)
{
	return evfi_fail(errno == ENOENT ? EVF_ENOTFOUND : EVF_ERROR, "%s %s: %s", what,
	                 path, strerror(errno));
}

/* ---- reading -------------------------------------------------------------- */

typedef struct reader {
	const char *path;
	evfi_line_fn fn;
	void *user;
	evfi_buf line;     /* a line split across blocks */
	size_t lineno;
	int rc;
} reader;

/* Split decoded bytes into lines for the callback. */
static void feed(reader *r, const char *p, size_t n)
{
	while (n > 0 && !r->rc) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		evfi_buf_add(&r->line, p, take);
		if (r->line.oom) {
			r->rc = evfi_fail(EVF_ENOMEM, "out of memory");
			return;
		}
		if (!nl)
			return;
		r->lineno++;
		if (r->fn && r->line.len > 0)
			r->rc = r->fn(r->line.data, r->line.len, r->lineno, r->user);
		r->line.len = 0;
		p = nl + 1;
		n -= take + 1;
	}
}

int evfi_archive_read(const char *path, evfi_line_fn fn, void *user,
                      int64_t *good_end, bool *truncated)
{
	reader r = { .path = path, .fn = fn, .user = user };
	unsigned char in[BLOCK];
	char out[BLOCK];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int64_t consumed = 0, safe = 0; /* safe: where a cut keeps only whole data */
	bool gz = false, started = false, member_open = false;
	z_stream z = { 0 };
	ssize_t got;

	*truncated = false;
	if (fd < 0)
		return sys_fail("cannot open", path);
	while (!r.rc && (got = read(fd, in, sizeof in)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r.rc = sys_fail("cannot read", path);
			break;
		}
		if (!started) {
			started = true;
			gz = got >= 2 && in[0] == 0x1f && in[1] == 0x8b;
			if (gz && inflateInit2(&z, 15 + 16) != Z_OK) {
				r.rc = evfi_fail(EVF_ENOMEM, "out of memory");
				break;
			}
		}
		if (!gz) {
			for (ssize_t i = 0; i < got; i++)
				if (in[i] == '\n')
					safe = consumed + i + 1;
			feed(&r, (const char *)in, (size_t)got);
			consumed += got;
			continue;
		}
		z.next_in = in;
		z.avail_in = (uInt)got;
		while (!r.rc && z.avail_in > 0) {
			z.next_out = (Bytef *)out;
			z.avail_out = sizeof out;
			member_open = true;
			int zr = inflate(&z, Z_NO_FLUSH);
			size_t produced = sizeof out - z.avail_out;
			int64_t at = consumed + (got - (ssize_t)z.avail_in);
			feed(&r, out, produced);
			if (zr == Z_STREAM_END) {
				safe = at;
				member_open = false;
				inflateReset(&z);
			} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
				if (safe > 0) {
					/* whole chunks, then what a crash left (a cut
					 * member, zeros): a tail to ignore */
					member_open = true;
					goto done;
				}
				r.rc = evfi_fail(EVF_EINVAL, "%s: corrupt gzip data near byte %lld",
				                 path, (long long)at);
			}
		}
		consumed += got;
	}
done:
	if (gz)
		inflateEnd(&z);
	close(fd);
	if (!r.rc && (r.line.len > 0 || (gz && member_open)))
		*truncated = true; /* an interrupted last chunk */
	evfi_buf_free(&r.line);
	if (good_end)
		*good_end = safe;
	return r.rc;
}

/* ---- writing ---------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len, const char *path)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_fail("cannot write", path);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The directory entry of a new file must survive a crash too. */
static void sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

int evfi_archive_open(evfi_archive_out *a, const char *path, bool append)
{
	bool truncated = false;
	int64_t good_end = 0;
	struct stat st;
	memset(a, 0, sizeof *a);
	a->gz = gz_name(path);
	a->path = path;
	a->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_EXCL), 0600);
	if (a->fd < 0) {
		if (errno == EEXIST)
			return evfi_fail(EVF_EREFUSED, "%s exists; archives are never overwritten "
			                 "(add to it with append)", path);
		return sys_fail("cannot create", path);
	}
	/* one archive job per file: two at once would cut each other's tail */
	if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
		int rc = errno == EWOULDBLOCK
			? evfi_fail(EVF_EBUSY, "%s is being written by another archive job", path)
			: sys_fail("cannot lock", path);
		close(a->fd);
		return rc;
	}
	if (fstat(a->fd, &st) != 0 || st.st_size == 0) {
		sync_dir(path); /* the new file's name must survive a crash too */
		return 0;
	}
	/* cut off a chunk an interruption left half-written (O_APPEND writes
	 * go to the new end) */
	int rc = evfi_archive_read(path, NULL, NULL, &good_end, &truncated);
	if (rc == 0 && (truncated || good_end < st.st_size) && ftruncate(a->fd, good_end) != 0)
		rc = sys_fail("cannot repair the end of", path);
	if (rc)
		close(a->fd);
	return rc;
}

/* One gzip member holding `len` bytes. */
static int gzip_member(const char *data, size_t len, evfi_buf *out)
{
	z_stream z = { 0 };
	if (len > UINT_MAX / 2) /* zlib counts in uInt */
		return evfi_fail(EVF_EINVAL, "a chunk of %zu bytes is too large to compress; "
		                 "use a smaller chunk", len);
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	size_t cap = deflateBound(&z, (uLong)len) + 64;
	out->data = malloc(cap);
	if (!out->data) {
		deflateEnd(&z);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data;
	z.avail_out = (uInt)cap;
	int zr = deflate(&z, Z_FINISH);
	out->len = z.total_out;
	deflateEnd(&z);
	return zr == Z_STREAM_END ? 0 : evfi_fail(EVF_ERROR, "gzip compression failed");
}

int evfi_archive_write(evfi_archive_out *a, const char *data, size_t len)
{
	evfi_buf packed = { 0 };
	int rc = 0;
	if (len == 0)
		return 0;
	if (a->gz) {
		if ((rc = gzip_member(data, len, &packed)))
			goto out;
		data = packed.data;
		len = packed.len;
	}
	if ((rc = write_all(a->fd, data, len, a->path)))
		goto out;
	if (fsync(a->fd) != 0)
		rc = sys_fail("cannot sync", a->path);
out:
	evfi_buf_free(&packed);
	return rc;
}

int evfi_archive_close(evfi_archive_out *a)
{
	int rc = 0;
	if (a->fd >= 0 && close(a->fd) != 0)
		rc = sys_fail("cannot close", a->path);
	a->fd = -1;
	return rc;
}
