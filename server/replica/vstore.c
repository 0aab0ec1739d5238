/* SPDX-License-Identifier: MIT */
/*
 * Replication state of stored objects; vstore.h states the contracts and
 * the crash ordering.  Everything here runs under the object's vlock,
 * which serialises "compare versions, then write" for VWRITE and DISCARD.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "store_meta.h"
#include "vstore.h"

#define VER_BATCH 512 /* versions per pread/pwrite */

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static uint64_t nblocks(const struct store_obj *o)
{
	return (o->size + o->chunk_size - 1) / o->chunk_size;
}

/* Recorded versions of [first, first + n), n <= VER_BATCH; past the
 * file's end (never written) they are 0. */
static int file_versions(struct store_obj *o, uint64_t first, uint32_t n,
			 uint64_t *out)
{
	size_t got;
	int rc = pread_all(o->rep->vfd, out, (size_t)n * 8, (off_t)(first * 8), &got);

	if (rc)
		return rc;
	memset((char *)out + got, 0, (size_t)n * 8 - got);
	for (uint32_t i = 0; i < n; i++)
		out[i] = le64toh(out[i]);
	return 0;
}

/* The version a new write is compared with: recorded or pending. */
static void add_pending(const struct store_obj *o, uint64_t first, uint32_t n,
			uint64_t *v)
{
	for (const struct vpend *p = o->rep->pending; p; p = p->next) {
		uint64_t lo = p->first > first ? p->first : first;
		uint64_t hi = p->first + p->count < first + n ? p->first + p->count
							      : first + n;
		for (uint64_t b = lo; b < hi; b++)
			if (v[b - first] < p->version)
				v[b - first] = p->version;
	}
}

/* The versions of the next batch of blocks from b (at most VER_BATCH,
 * none past end) into v, pending ones included when asked: the count, or
 * -errno. */
static int batch_versions(struct store_obj *o, uint64_t b, uint64_t end,
			  bool pending, uint64_t *v)
{
	uint32_t n = (uint32_t)(end - b < VER_BATCH ? end - b : VER_BATCH);
	int rc = file_versions(o, b, n, v);

	if (rc)
		return rc;
	if (pending)
		add_pending(o, b, n, v);
	return (int)n;
}

/* ---- attach / detach */

static int open_side(int objdir, uint64_t id, const char *suffix, int flags)
{
	char file[OBJ_FILE_MAX];

	obj_file_name(file, id, suffix);
	return openat(objdir, file, O_RDWR | O_CREAT | O_CLOEXEC | flags, 0600);
}

static int place_load(struct store_obj *o)
{
	uint8_t buf[sizeof(struct wire_placement) +
		    WIRE_MAX_MEMBERS * WIRE_NODE_ID + 8];
	struct wire_placement w;
	char file[OBJ_FILE_MAX];
	uint64_t csum;
	size_t got, body;
	int fd, rc;

	obj_file_name(file, o->id, PLACE_SUFFIX);
	fd = openat(o->rep->objdir, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = pread_all(fd, buf, sizeof(buf), 0, &got);
	close(fd);
	if (rc)
		return rc;
	if (got < sizeof(w) + 8)
		return -EBADMSG;
	wire_get_placement(buf, got, &w);
	body = sizeof(w) + (size_t)w.nmembers * WIRE_NODE_ID;
	if (w.nmembers > WIRE_MAX_MEMBERS || got != body + 8)
		return -EBADMSG;
	wire_get_u64s(buf + body, 8, &csum, 1);
	if (csum != XXH3_64bits(buf, body))
		return -EBADMSG;
	o->rep->place->epoch = w.epoch;
	o->rep->place->group_size = w.group_size;
	o->rep->place->replicas = w.replicas;
	o->rep->place->write_quorum = w.write_quorum;
	o->rep->place->nmembers = w.nmembers;
	memcpy(o->rep->place->members, buf + sizeof(w),
	       (size_t)o->rep->place->nmembers * WIRE_NODE_ID);
	return 0;
}

int vstore_attach(int objdir, struct store_obj *o)
{
	struct vobj *v = calloc(1, sizeof(*v));
	off_t end;
	int rc;

	if (!v)
		return -ENOMEM;
	v->vfd = v->hfd = -1;
	pthread_mutex_init(&v->vlock, NULL);
	v->objdir = objdir;
	o->rep = v; /* detach frees it, whatever fails below */
	o->rep->place = calloc(1, sizeof(*o->rep->place));
	if (!o->rep->place)
		return -ENOMEM;
	o->rep->vfd = open_side(objdir, o->id, VER_SUFFIX, 0);
	o->rep->hfd = o->rep->vfd < 0 ? -1 : open_side(objdir, o->id, HINTS_SUFFIX,
					     O_APPEND);
	if (o->rep->vfd < 0 || o->rep->hfd < 0)
		return -errno;
	end = lseek(o->rep->hfd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	o->rep->nhints = (uint64_t)end / sizeof(struct wire_hint);
	rc = place_load(o);
	if (rc)
		log_err("object %s: placement file: %s", o->name, strerror(-rc));
	return rc;
}

void vstore_detach(struct store_obj *o)
{
	struct vpend *p, *next;

	if (!o->rep)
		return;
	if (o->rep->vfd >= 0)
		close(o->rep->vfd);
	if (o->rep->hfd >= 0)
		close(o->rep->hfd);
	for (p = o->rep->pending; p; p = next) {
		next = p->next;
		free(p);
	}
	free(o->rep->place);
	pthread_mutex_destroy(&o->rep->vlock);
	free(o->rep);
	o->rep = NULL;
}

void vstore_remove(int objdir, uint64_t id)
{
	static const char *const suffixes[] = { VER_SUFFIX, PLACE_SUFFIX,
						HINTS_SUFFIX };
	char file[OBJ_FILE_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		obj_file_name(file, id, suffixes[i]);
		unlinkat(objdir, file, 0);
	}
}

/* ---- versioned writes */

static int check_blocks(const struct store_obj *o, uint64_t off, uint64_t len)
{
	if (off % o->chunk_size)
		return -EINVAL;
	if (len % o->chunk_size && off + len != o->size)
		return -EINVAL;
	return 0;
}

/* Writes the runs of blocks in [first, first + n) that want[] marks. */
static int write_marked(struct store_obj *o, uint64_t first, uint32_t n,
			const bool *want, const char *buf, uint64_t buf_first,
			uint64_t end)
{
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i;
		uint64_t lo, hi;
		int rc;

		if (!want[i]) {
			i++;
			continue;
		}
		while (j < n && want[j])
			j++;
		lo = (first + i) * o->chunk_size;
		hi = (first + j) * o->chunk_size;
		if (hi > end)
			hi = end;
		rc = store_write(o, lo, buf + (lo - buf_first * o->chunk_size),
				 (uint32_t)(hi - lo));
		if (rc)
			return rc;
		i = j;
	}
	return 0;
}

static int write_locked(struct store_obj *o, uint64_t off, const char *buf,
			uint32_t len, uint64_t version, uint64_t *applied)
{
	uint64_t first = off / o->chunk_size, end = off + len;
	uint64_t count = (len + o->chunk_size - 1) / o->chunk_size;
	uint64_t v[VER_BATCH];
	bool want[VER_BATCH];

	*applied = 0;
	for (uint64_t b = first; b < first + count;) {
		int n = batch_versions(o, b, first + count, true, v), rc;

		if (n < 0)
			return n;
		for (int i = 0; i < n; i++) {
			want[i] = v[i] < version;
			*applied += want[i];
		}
		rc = write_marked(o, b, (uint32_t)n, want, buf, first, end);
		if (rc)
			return rc;
		b += (uint64_t)n;
	}
	return 0;
}

int vstore_write(struct store_obj *o, uint64_t off, const void *buf,
		 uint32_t len, uint64_t version, struct vpend **out)
{
	struct vpend *p = calloc(1, sizeof(*p));
	uint64_t applied = 0;
	int rc;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	if (!len || !version || check_blocks(o, off, len)) {
		free(p);
		return -EINVAL;
	}
	pthread_mutex_lock(&o->rep->vlock);
	rc = write_locked(o, off, buf, len, version, &applied);
	if (!rc && applied) {
		/* Pending until the committer records it (vstore.h). */
		p->first = off / o->chunk_size;
		p->count = (len + o->chunk_size - 1) / o->chunk_size;
		p->version = version;
		p->next = o->rep->pending;
		o->rep->pending = p;
		*out = p;
		p = NULL;
	}
	pthread_mutex_unlock(&o->rep->vlock);
	free(p);
	return rc;
}

static void pending_unlink(struct store_obj *o, struct vpend *p)
{
	for (struct vpend **pp = &o->rep->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

/* Raises the recorded versions of p's blocks to p->version; a block
 * already at or above it (a later write committed first) keeps its own. */
static int record_locked(struct store_obj *o, const struct vpend *p)
{
	uint64_t v[VER_BATCH];

	for (uint64_t b = p->first; b < p->first + p->count;) {
		int n = batch_versions(o, b, p->first + p->count, false, v), rc;

		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			v[i] = htole64(v[i] < p->version ? p->version : v[i]);
		rc = pwrite_all(o->rep->vfd, v, (size_t)n * 8, (off_t)(b * 8));
		if (rc)
			return rc;
		b += (uint64_t)n;
	}
	return 0;
}

int vstore_commit(struct store_obj *o, struct vpend *p, int durable_rc)
{
	int rc = durable_rc;

	pthread_mutex_lock(&o->rep->vlock);
	if (!rc)
		rc = record_locked(o, p);
	pending_unlink(o, p);
	pthread_mutex_unlock(&o->rep->vlock);
	free(p);
	return rc;
}

int vstore_sync(struct store_obj *o)
{
	return fdatasync(o->rep->vfd) ? -errno : 0;
}

int vstore_versions(struct store_obj *o, uint64_t first, uint32_t count,
		    uint64_t *out, uint32_t *got)
{
	uint64_t total = nblocks(o);
	int rc = 0;

	*got = 0;
	if (first >= total)
		return 0;
	if (count > total - first)
		count = (uint32_t)(total - first);
	pthread_mutex_lock(&o->rep->vlock);
	for (uint32_t i = 0; !rc && i < count; i += VER_BATCH)
		rc = file_versions(o, first + i,
				   count - i < VER_BATCH ? count - i : VER_BATCH,
				   out + i);
	pthread_mutex_unlock(&o->rep->vlock);
	if (!rc)
		*got = count;
	return rc;
}

/* ---- discard */

/* Zeroes the versions first (durably), then punches the data: a crash in
 * between leaves data under version 0, which is never trusted. */
static int drop_run(struct store_obj *o, uint64_t b, uint64_t n)
{
	static const uint64_t zeros[VER_BATCH];
	uint64_t lo = b * o->chunk_size, hi = (b + n) * o->chunk_size;
	int rc = 0;

	for (uint64_t i = 0; !rc && i < n; i += VER_BATCH)
		rc = pwrite_all(o->rep->vfd, zeros,
				(size_t)(n - i < VER_BATCH ? n - i : VER_BATCH) * 8,
				(off_t)((b + i) * 8));
	if (!rc && fdatasync(o->rep->vfd))
		rc = -errno;
	if (hi > o->size)
		hi = o->size;
	if (!rc && fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     (off_t)lo, (off_t)(hi - lo)))
		rc = errno == EOPNOTSUPP ? 0 : -errno;
	return rc;
}

static int discard_locked(struct store_obj *o, uint64_t first, uint64_t count,
			  uint64_t max_version, uint64_t *dropped)
{
	uint64_t v[VER_BATCH];

	for (uint64_t b = first; b < first + count;) {
		/* pending: a write in flight is kept */
		int n = batch_versions(o, b, first + count, true, v), rc;

		if (n < 0)
			return n;
		for (int i = 0; i < n;) {
			int j = i;

			while (j < n && v[j] && v[j] <= max_version)
				j++;
			if (j == i) {
				i++;
				continue;
			}
			rc = drop_run(o, b + i, j - i);
			if (rc)
				return rc;
			*dropped += j - i;
			i = j;
		}
		b += (uint64_t)n;
	}
	return 0;
}

int vstore_discard(struct store_obj *o, uint64_t off, uint64_t len,
		   uint64_t max_version, uint64_t *dropped)
{
	int rc;

	*dropped = 0;
	if (!len || check_blocks(o, off, len))
		return -EINVAL;
	pthread_mutex_lock(&o->rep->vlock);
	rc = discard_locked(o, off / o->chunk_size,
			    (len + o->chunk_size - 1) / o->chunk_size,
			    max_version, dropped);
	pthread_mutex_unlock(&o->rep->vlock);
	return rc;
}

/* ---- placement */

static bool place_equal(const struct placement *a, const struct placement *b)
{
	return a->epoch == b->epoch && a->group_size == b->group_size &&
	       a->replicas == b->replicas &&
	       a->write_quorum == b->write_quorum &&
	       a->nmembers == b->nmembers &&
	       !memcmp(a->members, b->members,
		       (size_t)a->nmembers * WIRE_NODE_ID);
}

static int place_write(struct store_obj *o, const struct placement *p)
{
	uint8_t buf[sizeof(struct wire_placement) +
		    WIRE_MAX_MEMBERS * WIRE_NODE_ID + 8];
	struct wire_placement w = {
		.epoch = p->epoch, .group_size = p->group_size,
		.replicas = p->replicas, .write_quorum = p->write_quorum,
		.nmembers = p->nmembers,
	};
	size_t body = sizeof(w) + (size_t)p->nmembers * WIRE_NODE_ID;
	char file[OBJ_FILE_MAX];
	uint64_t csum;

	wire_put_placement(buf, sizeof(buf), &w);
	memcpy(buf + sizeof(w), p->members, (size_t)p->nmembers * WIRE_NODE_ID);
	csum = XXH3_64bits(buf, body);
	wire_put_u64s(buf + body, 8, &csum, 1);
	obj_file_name(file, o->id, PLACE_SUFFIX);
	return atomic_replace(o->rep->objdir, file, buf, body + 8);
}

int vstore_place(struct store_obj *o, const struct placement *p)
{
	int rc = 0;

	pthread_mutex_lock(&o->rep->vlock);
	if (p->epoch <= o->rep->place->epoch)
		rc = place_equal(p, o->rep->place) ? 0 : -ESTALE;
	else if (!(rc = place_write(o, p)))
		*o->rep->place = *p;
	pthread_mutex_unlock(&o->rep->vlock);
	return rc;
}

void vstore_placement(struct store_obj *o, struct placement *out)
{
	pthread_mutex_lock(&o->rep->vlock);
	*out = *o->rep->place;
	pthread_mutex_unlock(&o->rep->vlock);
}

uint64_t vstore_epoch(struct store_obj *o)
{
	uint64_t e;

	pthread_mutex_lock(&o->rep->vlock);
	e = o->rep->place->epoch;
	pthread_mutex_unlock(&o->rep->vlock);
	return e;
}

/* ---- hints */

int vstore_hint_add(struct store_obj *o, uint64_t off, uint32_t len,
		    const uint8_t node[WIRE_NODE_ID])
{
	struct wire_hint h = { .offset = off, .len = len };
	uint8_t rec[sizeof(h)];
	int rc;

	memcpy(h.node, node, WIRE_NODE_ID);
	wire_put_hint(rec, sizeof(rec), &h);
	pthread_mutex_lock(&o->rep->vlock);
	/* O_APPEND: a torn record at a crash is a short tail, ignored by
	 * the count (nhints is the whole records only). */
	rc = pwrite_all(o->rep->hfd, rec, sizeof(rec), 0);
	if (!rc && fdatasync(o->rep->hfd))
		rc = -errno;
	if (!rc)
		o->rep->nhints++;
	pthread_mutex_unlock(&o->rep->vlock);
	return rc;
}

int vstore_hints(struct store_obj *o, uint64_t cursor, uint8_t *out,
		 uint32_t max, uint32_t *count, bool *more)
{
	const size_t rec = sizeof(struct wire_hint);
	size_t got = 0;
	uint64_t n;
	int rc = 0;

	pthread_mutex_lock(&o->rep->vlock);
	n = cursor < o->rep->nhints ? o->rep->nhints - cursor : 0;
	*more = n > max;
	if (n > max)
		n = max;
	if (n)
		rc = pread_all(o->rep->hfd, out, n * rec, (off_t)(cursor * rec),
			       &got);
	pthread_mutex_unlock(&o->rep->vlock);
	*count = (uint32_t)(got / rec);
	return rc;
}

/* Rewrites .hints without the dropped records and reopens it. */
static int hints_rewrite(struct store_obj *o, uint64_t upto,
			 const uint8_t node[WIRE_NODE_ID])
{
	size_t bytes = o->rep->nhints * sizeof(struct wire_hint), got, keep = 0;
	struct wire_hint *h = malloc(bytes ? bytes : 1);
	char file[OBJ_FILE_MAX];
	int rc, fd;

	if (!h)
		return -ENOMEM;
	rc = pread_all(o->rep->hfd, h, bytes, 0, &got);
	static const uint8_t any[WIRE_NODE_ID];
	bool all = !memcmp(node, any, WIRE_NODE_ID);

	for (uint64_t i = 0; !rc && i < got / sizeof(*h); i++)
		if (i >= upto || (!all && memcmp(h[i].node, node, WIRE_NODE_ID)))
			h[keep++] = h[i];
	obj_file_name(file, o->id, HINTS_SUFFIX);
	if (!rc)
		rc = atomic_replace(o->rep->objdir, file, h, keep * sizeof(*h));
	free(h);
	if (rc)
		return rc;
	fd = open_side(o->rep->objdir, o->id, HINTS_SUFFIX, O_APPEND);
	if (fd < 0)
		return -errno;
	close(o->rep->hfd);
	o->rep->hfd = fd;
	o->rep->nhints = keep;
	return 0;
}

int vstore_hints_drop(struct store_obj *o, uint64_t upto,
		      const uint8_t node[WIRE_NODE_ID])
{
	int rc;

	pthread_mutex_lock(&o->rep->vlock);
	rc = hints_rewrite(o, upto, node);
	pthread_mutex_unlock(&o->rep->vlock);
	return rc;
}

static uint32_t vstore_info_flags(struct store_obj *o)
{
	return vstore_epoch(o) ? WIRE_OBJ_REPLICATED : 0;
}

const struct store_ext vstore_ext = {
	.attach = vstore_attach,
	.detach = vstore_detach,
	.remove = vstore_remove,
	.info_flags = vstore_info_flags,
};
