/* SPDX-License-Identifier: MIT */
/*
 * ufoctl: the put and get commands.  They check and open both ends, then
 * hand the copy to transfer.c.  Neither leaves a half-made result behind
 * that it made itself: put deletes an object it created when the copy
 * fails, get removes the regular file it was writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ufoctl.h"

/* "ufoctl: <what> <path>: <error>"; returns err (a -errno). */
static int report(int err, const char *what, const char *path)
{
	fail(err, "%s %s", what, path);
	return err;
}

/* ----------------------------------------------------------------- put */

struct put_args {
	bool create;     /* --create: the object must be new */
	bool chunk_set;
	uint32_t chunk;
};

enum { OPT_CREATE = 256, OPT_CHUNK, OPT_NO_SPARSE };

static int put_option(void *ctx, int c, const char *arg)
{
	struct put_args *a = ctx;

	if (c == OPT_CREATE) {
		a->create = true;
		return PARSE_CONTINUE;
	}
	a->chunk_set = true;
	return chunk_option(find_command("put"), arg, &a->chunk) ?
		       EXIT_USAGE : PARSE_CONTINUE;
}

/* Size of the file open as fd: 0 or -errno.  Block devices have a size
 * only through lseek; pipes and the like have none, and transfer.c reads
 * pieces at offsets, out of order, so they cannot be put. */
static int source_size(int fd, uint64_t *size)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISBLK(st.st_mode))
		return -ESPIPE;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	*size = (uint64_t)end;
	return 0;
}

/* Opens path for reading and gets its size: 0 or -errno, reported. */
static int open_source(const char *path, int *fd, uint64_t *size)
{
	int err;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return report(-errno, "open", path);
	err = source_size(*fd, size);
	if (err) {
		close(*fd);
		fail(err, "put %s: not a regular file or block device", path);
	}
	return err;
}

/* Finds or creates the destination of a put.  0 with *created telling
 * whether it is new, or -errno (reported). */
static int put_target(struct ufoctl *g, const char *name, uint64_t size,
		      const struct put_args *a, struct ufo_remote_info *info,
		      bool *created)
{
	int rc = ufo_client_stat(g->client, name, info);

	*created = false;
	if (rc == -ENOENT) {
		rc = create_object(g, name, size, a->chunk, info);
		*created = rc == 0;
		return rc;
	}
	if (rc) {
		fail_remote(rc, "stat '%s' on %s", name, g->server);
		return rc;
	}
	if (a->create) {
		fail(-EEXIST, "put --create '%s' on %s (delete it first, or "
		     "drop --create to overwrite)", name, g->server);
		return -EEXIST;
	}
	if (a->chunk_set)
		warning("--chunk ignored: object '%s' exists", name);
	return 0;
}

/* An existing object must hold the whole file; a larger one keeps its
 * bytes past the file's end, which is worth a word. */
static int check_fit(const char *path, uint64_t size,
		     const struct ufo_remote_info *info)
{
	if (size > info->size) {
		fail(-EFBIG, "put: %s (%" PRIu64 " bytes) is larger than "
		     "object '%s' (%" PRIu64 " bytes)", path, size, info->name,
		     info->size);
		return -EFBIG;
	}
	if (size < info->size)
		warning("%s (%" PRIu64 " bytes) is smaller than object '%s' "
		     "(%" PRIu64 " bytes): the rest is left as it was", path,
		     size, info->name, info->size);
	return 0;
}

static int put_file(struct ufoctl *g, const char *path, const char *name,
		    const struct put_args *a)
{
	struct ufo_remote_info info;
	uint64_t size = 0;
	bool created = false;
	int fd, rc;

	if (open_source(path, &fd, &size))
		return EXIT_FAILED;
	rc = ufoctl_connect(g);
	if (!rc && (put_target(g, name, size, a, &info, &created) ||
		    check_fit(path, size, &info)))
		rc = EXIT_FAILED;
	if (!rc)
		rc = transfer_put(g, fd, path, &info, size);
	close(fd);
	if (rc == EXIT_FAILED && created) {
		int err = ufo_client_delete(g->client, name);

		if (err)
			warning("object '%s' was created but is incomplete; "
			     "deleting it failed: %s", name, strerror(-err));
		else
			fprintf(stderr, "ufoctl: deleted the incomplete object "
				"'%s'\n", name);
	}
	return rc;
}

int cmd_put(struct ufoctl *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "create", no_argument, NULL, OPT_CREATE },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = find_command("put");
	struct put_args a = { 0 };
	int first, rc;

	rc = parse_command_options(cmd, argc, argv, "", longopts, put_option,
				   &a, &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if ((rc = want_operands(cmd, argc - first, 2)) ||
	    (rc = name_operand(cmd, argv[first + 1])))
		return rc;
	return put_file(g, argv[first], argv[first + 1], &a);
}

/* ----------------------------------------------------------------- get */

/* Where a get writes. */
struct destination {
	const char *path;      /* "-" is standard output */
	int fd;
	bool regular;          /* a regular file we opened: fsync it, remove
				* it on failure */
	enum get_output output;
};

/* Opens dst->path for writing; a regular file is truncated to size, so
 * that zero blocks may be skipped (when sparse).  Standard output is
 * written in order from where it stands, whatever it is (it may be a file
 * opened for appending).  0 or -errno, reported. */
static int open_destination(struct destination *dst, uint64_t size,
			    bool sparse)
{
	struct stat st;

	if (!strcmp(dst->path, "-")) {
		dst->fd = STDOUT_FILENO;
		dst->output = GET_STREAM;
		return 0;
	}
	dst->fd = open(dst->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		       0666);
	if (dst->fd < 0)
		return report(-errno, "open", dst->path);
	dst->regular = fstat(dst->fd, &st) == 0 && S_ISREG(st.st_mode);
	if (dst->regular && ftruncate(dst->fd, (off_t)size)) {
		int err = -errno;

		close(dst->fd);
		unlink(dst->path);
		fail(err, "extend %s to %" PRIu64 " bytes", dst->path, size);
		return err;
	}
	if (dst->regular)
		dst->output = sparse ? GET_SPARSE : GET_PLAIN;
	else if (lseek(dst->fd, 0, SEEK_CUR) < 0) /* a pipe, a socket */
		dst->output = GET_STREAM;
	else
		dst->output = GET_PLAIN;
	return 0;
}

/* fsync reports write-back errors that pwrite could not (ENOSPC, EIO). */
static int close_destination(struct destination *dst, bool ok)
{
	int rc = 0;

	if (ok && dst->regular && fsync(dst->fd))
		rc = fail(-errno, "write %s", dst->path);
	if (dst->fd != STDOUT_FILENO && close(dst->fd) && ok && !rc)
		rc = fail(-errno, "close %s", dst->path);
	return rc;
}

static int get_object(struct ufoctl *g, const char *name, const char *path,
		      bool sparse)
{
	struct destination dst = { .path = path };
	struct ufo_remote_info info;
	int rc;

	if ((rc = ufoctl_connect(g)))
		return rc;
	if (ufoctl_stat(g, name, &info) ||
	    open_destination(&dst, info.size, sparse))
		return EXIT_FAILED;
	rc = transfer_get(g, dst.fd, path, &info, dst.output);
	if (close_destination(&dst, rc == 0))
		rc = EXIT_FAILED;
	if (rc && dst.regular && unlink(path) == 0)
		fprintf(stderr, "ufoctl: removed incomplete %s\n", path);
	return rc;
}

static int get_option(void *ctx, int c, const char *arg)
{
	*(bool *)ctx = false; /* --no-sparse, the only option */
	return PARSE_CONTINUE;
}

int cmd_get(struct ufoctl *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no-sparse", no_argument, NULL, OPT_NO_SPARSE },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = find_command("get");
	bool sparse = true;
	int first, rc;

	rc = parse_command_options(cmd, argc, argv, "", longopts, get_option,
				   &sparse, &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if ((rc = want_operands(cmd, argc - first, 2)) ||
	    (rc = name_operand(cmd, argv[first])))
		return rc;
	return get_object(g, argv[first], argv[first + 1], sparse);
}
