/* SPDX-License-Identifier: MIT */
/*
 * ufo-file-backed: a UFO whose chunks live in a file.
 *
 * populate reads a chunk with pread(2); writeback writes it with pwrite(2)
 * and returns only after fdatasync(2), so an evicted chunk is on disk before
 * its memory is dropped.  The program creates a file of uint64 a[i] = i
 * (larger than the budget, so updates are evicted and written back while it
 * runs), updates every STRIDE-th element through the UFO, frees the object
 * (which writes back what is still dirty), then checks the file with plain
 * read(2), no UFO involved.
 *
 *   ufo-file-backed [--file PATH] [--size BYTES] [--budget BYTES]
 *                   [--chunk BYTES] [--keep]
 *
 * Without --file a temporary file in $TMPDIR (or /tmp) is used, and removed
 * at the end unless --keep is given.  A file named by --file is truncated,
 * rewritten, and kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ufo.h"

#define STRIDE 3          /* every STRIDE-th element is updated */
#define IO_BLOCK (1 << 20) /* bytes per read/write when creating/checking */

struct opts {
	const char *path;
	size_t size, budget, chunk;
	bool keep;
};

/* A non-zero byte count, "64M" or "1G" style (ufo_parse_size). */
static int parse_size(const char *s, size_t *out)
{
	uint64_t v;

	if (ufo_parse_size(s, &v) || !v || v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static uint64_t initial_value(uint64_t i) { return i; }
static uint64_t updated_value(uint64_t i) { return 3 * i + 1; }

static uint64_t expected_value(uint64_t i)
{
	return i % STRIDE ? initial_value(i) : updated_value(i);
}

/* ------------------------------------------------------------ callbacks */

/* Both callbacks return 0 or -errno; libufo retries a failure and, if it
 * persists, raises SIGBUS in the faulting thread (populate) or keeps the
 * chunk dirty and resident (writeback). */

static int file_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	int fd = *(int *)user;
	size_t len = (end - start) * sizeof(uint64_t);
	off_t off = (off_t)(start * sizeof(uint64_t));

	for (size_t done = 0; done < len;) {
		ssize_t r = pread(fd, (char *)dst + done, len - done,
				  off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* the file was truncated under us */
		done += (size_t)r;
	}
	return 0;
}

static int file_writeback(void *user, uint64_t start, uint64_t end,
			  const void *src)
{
	int fd = *(int *)user;
	size_t len = (end - start) * sizeof(uint64_t);
	off_t off = (off_t)(start * sizeof(uint64_t));

	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(fd, (const char *)src + done, len - done,
				   off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return fdatasync(fd) ? -errno : 0;
}

/* ----------------------------------------------------------- plain file */

/* Writes n elements of initial_value() with write(2).  Returns 0 or -errno. */
static int file_create(int fd, uint64_t n)
{
	static uint64_t buf[IO_BLOCK / sizeof(uint64_t)];
	const uint64_t per = IO_BLOCK / sizeof(uint64_t);

	for (uint64_t i = 0; i < n; i += per) {
		uint64_t m = n - i < per ? n - i : per;
		for (uint64_t j = 0; j < m; j++)
			buf[j] = initial_value(i + j);
		for (size_t done = 0; done < m * sizeof(uint64_t);) {
			ssize_t w = write(fd, (char *)buf + done,
					  m * sizeof(uint64_t) - done);
			if (w < 0 && errno != EINTR)
				return -errno;
			done += w > 0 ? (size_t)w : 0;
		}
	}
	return fsync(fd) ? -errno : 0;
}

/* Reads the file back with read(2) and checks every element.  Returns 0,
 * -EIO on the first wrong element (reported), or -errno. */
static int file_verify(int fd, uint64_t n)
{
	static uint64_t buf[IO_BLOCK / sizeof(uint64_t)];
	uint64_t i = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	while (i < n) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0 || r % sizeof(uint64_t)) {
			fprintf(stderr, "ufo-file-backed: file ends early or "
				"unaligned at element %llu\n",
				(unsigned long long)i);
			return -EIO;
		}
		for (size_t j = 0; j < (size_t)r / sizeof(uint64_t); j++, i++) {
			if (buf[j] == expected_value(i))
				continue;
			fprintf(stderr, "ufo-file-backed: element %llu is %llu "
				"in the file, expected %llu\n",
				(unsigned long long)i,
				(unsigned long long)buf[j],
				(unsigned long long)expected_value(i));
			return -EIO;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ UFO */

/* Updates every STRIDE-th element through the UFO, checking the value the
 * populate callback brought in first. */
static int update_elements(struct ufo_obj *obj)
{
	uint64_t *a = ufo_body(obj);
	uint64_t n = ufo_elem_count(obj);

	for (uint64_t i = 0; i < n; i += STRIDE) {
		if (a[i] != initial_value(i)) {
			fprintf(stderr, "ufo-file-backed: element %llu read "
				"%llu through the UFO, expected %llu\n",
				(unsigned long long)i, (unsigned long long)a[i],
				(unsigned long long)initial_value(i));
			return -EIO;
		}
		a[i] = updated_value(i);
	}
	return 0;
}

static void print_stats(const struct ufo_ctx *ctx)
{
	struct ufo_stats st;

	ufo_ctx_stats(ctx, &st);
	printf("faults %llu, write faults %llu, evictions %llu, "
	       "writebacks %llu (%.1f MiB), writeback errors %llu\n",
	       (unsigned long long)st.faults,
	       (unsigned long long)st.wp_faults,
	       (unsigned long long)st.evictions,
	       (unsigned long long)st.writebacks,
	       (double)st.writeback_bytes / (1 << 20),
	       (unsigned long long)st.writeback_errors);
}

static int create_ctx(const struct opts *o, struct ufo_ctx **ctx)
{
	struct ufo_config cfg;
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	err = ufo_ctx_create(&cfg, ctx);
	if (err == -EPERM || err == -EACCES)
		fprintf(stderr, "ufo-file-backed: userfaultfd refused (%s): "
			"run as root, or allow it with "
			"'sysctl vm.unprivileged_userfaultfd=1'\n",
			strerror(-err));
	else if (err)
		fprintf(stderr, "ufo-file-backed: cannot create context: %s\n",
			strerror(-err));
	return err;
}

/* Maps the file as a UFO, updates it, frees it.  Returns 0 or -errno. */
static int update_through_ufo(const struct opts *o, int fd, uint64_t n)
{
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	int err = create_ctx(o, &ctx);

	if (err)
		return err;
	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = n;
	p.chunk_size = o->chunk;
	p.populate = file_populate;
	p.writeback = file_writeback;
	p.user = &fd;
	err = ufo_create(ctx, &p, &obj);
	if (err) {
		fprintf(stderr, "ufo-file-backed: ufo_create: %s\n",
			strerror(-err));
		ufo_ctx_destroy(ctx);
		return err;
	}
	err = update_elements(obj);
	int ferr = ufo_free(obj); /* writes back what is still dirty */
	if (ferr)
		fprintf(stderr, "ufo-file-backed: ufo_free: writeback failed: "
			"%s\n", strerror(-ferr));
	print_stats(ctx);
	ufo_ctx_destroy(ctx);
	return err ? err : ferr;
}

/* ----------------------------------------------------------------- main */

static int open_file(struct opts *o, char *tmpl, size_t tmpl_len)
{
	int fd;

	if (o->path) {
		fd = open(o->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0644);
	} else {
		const char *dir = getenv("TMPDIR");
		snprintf(tmpl, tmpl_len, "%s/ufo-file-backed.XXXXXX",
			 dir && *dir ? dir : "/tmp");
		fd = mkostemp(tmpl, O_CLOEXEC);
		o->path = tmpl;
	}
	if (fd < 0)
		fprintf(stderr, "ufo-file-backed: cannot create %s: %s\n",
			o->path, strerror(errno));
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ufo-file-backed [--file PATH] [--size BYTES] "
		   "[--budget BYTES] [--chunk BYTES] [--keep]\n"
		   "  defaults: a temporary file, --size 256M --budget 64M "
		   "--chunk 1M\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .size = 256 << 20, .budget = 64 << 20,
			    .chunk = 1 << 20 };
	while ((c = getopt_long(argc, argv, "f:s:b:c:kh", lo, NULL)) != -1) {
		size_t *dst = c == 's' ? &o->size : c == 'b' ? &o->budget
				: c == 'c' ? &o->chunk : NULL;
		if (c == 'f') {
			o->path = optarg;
		} else if (c == 'k') {
			o->keep = true;
		} else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (!dst || parse_size(optarg, dst)) {
			if (dst)
				fprintf(stderr, "ufo-file-backed: bad size "
					"'%s'\n", optarg);
			return -EINVAL;
		}
	}
	if (optind != argc || o->size < sizeof(uint64_t))
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	char tmpl[4096];
	struct opts o;
	int fd, err;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	uint64_t n = o.size / sizeof(uint64_t);
	bool temporary = !o.path;
	fd = open_file(&o, tmpl, sizeof(tmpl));
	if (fd < 0)
		return 1;
	printf("file %s: %llu elements (%.1f MiB), budget %.1f MiB\n", o.path,
	       (unsigned long long)n, (double)o.size / (1 << 20),
	       (double)o.budget / (1 << 20));

	err = file_create(fd, n);
	if (err)
		fprintf(stderr, "ufo-file-backed: writing %s: %s\n", o.path,
			strerror(-err));
	if (!err)
		err = update_through_ufo(&o, fd, n);
	if (!err) {
		err = file_verify(fd, n);
		if (err && err != -EIO)
			fprintf(stderr, "ufo-file-backed: reading %s: %s\n",
				o.path, strerror(-err));
	}
	if (!err)
		printf("check ok: every %d%s element updated in the file, the "
		       "rest untouched\n", STRIDE, STRIDE == 3 ? "rd" : "th");
	close(fd);
	if (temporary && !o.keep)
		unlink(o.path);
	return err ? 1 : 0;
}
