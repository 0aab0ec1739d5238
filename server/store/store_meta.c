/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "store_meta.h"

void obj_file_name(char *buf, uint64_t id, const char *suffix)
{
	snprintf(buf, OBJ_FILE_MAX, "%016" PRIx64 "%s", id, suffix);
}

int fsync_dir(int dirfd)
{
	return fsync(dirfd) ? -errno : 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int atomic_replace(int dirfd, const char *name, const void *buf, size_t len)
{
	char tmp[NAME_MAX + 1];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, len);
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	if (!rc && renameat(dirfd, tmp, dirfd, name))
		rc = -errno;
	if (rc) {
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	return fsync_dir(dirfd);
}

int meta_write(int objfd, const struct store_obj *o)
{
	struct meta_disk m = { 0 };
	char file[OBJ_FILE_MAX];

	m.magic = htole32(META_MAGIC);
	m.format = htole32(META_FORMAT);
	m.id = htole64(o->id);
	m.size = htole64(o->size);
	m.chunk_size = htole32(o->chunk_size);
	m.name_len = htole16(o->name_len);
	memcpy(m.name, o->name, o->name_len);
	m.csum = htole64(XXH3_64bits(&m, offsetof(struct meta_disk, csum)));
	obj_file_name(file, o->id, META_SUFFIX);
	return atomic_replace(objfd, file, &m, sizeof(m));
}

static int read_exact(int dirfd, const char *file, void *buf, size_t len)
{
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	close(fd);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EBADMSG;
}

int meta_read(int objfd, const char *file, struct store_obj *o)
{
	struct meta_disk m;
	int rc = read_exact(objfd, file, &m, sizeof(m));

	if (rc)
		return rc;
	if (le32toh(m.magic) != META_MAGIC ||
	    le32toh(m.format) != META_FORMAT ||
	    le64toh(m.csum) != XXH3_64bits(&m, offsetof(struct meta_disk, csum)))
		return -EBADMSG;
	o->id = le64toh(m.id);
	o->size = le64toh(m.size);
	o->chunk_size = le32toh(m.chunk_size);
	o->name_len = le16toh(m.name_len);
	if (o->name_len > WIRE_MAX_NAME || wire_check_name(m.name, o->name_len))
		return -EBADMSG;
	memcpy(o->name, m.name, o->name_len);
	o->name[o->name_len] = '\0';
	return 0;
}

int counter_read(int dirfd, uint64_t *next)
{
	char buf[32] = { 0 }, *end;
	int fd = openat(dirfd, STORE_COUNTER, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*next = 1;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	errno = 0;
	*next = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || !*next)
		return -EBADMSG;
	return 0;
}

int counter_write(int dirfd, uint64_t next)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", next);

	return atomic_replace(dirfd, STORE_COUNTER, buf, (size_t)n);
}

int pread_all(int fd, void *buf, size_t len, off_t off, size_t *got)
{
	char *p = buf;

	*got = 0;
	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		p += n;
		off += n;
		len -= (size_t)n;
		*got += (size_t)n;
	}
	return 0;
}

/* ---- node id */

int node_id_load(int dirfd, uint8_t out[WIRE_NODE_ID])
{
	size_t got;
	int fd = openat(dirfd, NODE_ID_FILE, O_RDONLY | O_CLOEXEC), rc;

	if (fd >= 0) {
		rc = pread_all(fd, out, WIRE_NODE_ID, 0, &got);
		close(fd);
		if (rc)
			return rc;
		return got == WIRE_NODE_ID ? 0 : -EBADMSG;
	}
	if (errno != ENOENT)
		return -errno;
	wire_random(out, WIRE_NODE_ID);
	return atomic_replace(dirfd, NODE_ID_FILE, out, WIRE_NODE_ID);
}
