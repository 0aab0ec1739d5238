/* SPDX-License-Identifier: MIT */
/*
 * Locking: meta_lock serialises everything that changes the set of objects
 * (create, delete, the id counter) and is held across their fsyncs, which
 * makes "check the name is free, then create it" atomic.  index_lock guards
 * only the in-memory index and is never held across I/O, so reads and
 * writes by id are not held up by a slow create.
 */
#include <dirent.h>
#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <errno.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_meta.h"

#define INDEX_MIN_BUCKETS 64

struct store {
	int dirfd, objfd, lockfd;
	pthread_mutex_t meta_lock;
	uint64_t next_id;  /* under meta_lock */
	uint64_t id_limit; /* ids below this are reserved on disk */
	pthread_rwlock_t index_lock;
	struct store_obj **objs; /* sorted by id */
	size_t nobjs, cap;
	struct store_obj **buckets; /* by name; nbuckets is a power of 2 */
	size_t nbuckets;
	uint8_t node_id[WIRE_NODE_ID];
	const struct store_ext *ext; /* the layer above, or NULL */
};

/* ---- the in-memory index (callers hold index_lock) */

static size_t name_hash(const char *name, uint16_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (uint16_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return (size_t)h;
}

static struct store_obj **name_slot(struct store *s, const char *name,
				    uint16_t len)
{
	struct store_obj **p =
		&s->buckets[name_hash(name, len) & (s->nbuckets - 1)];

	while (*p && ((*p)->name_len != len || memcmp((*p)->name, name, len)))
		p = &(*p)->name_next;
	return p;
}

static int index_rehash(struct store *s, size_t nbuckets)
{
	struct store_obj **old = s->buckets;

	s->buckets = calloc(nbuckets, sizeof(*s->buckets));
	if (!s->buckets) {
		s->buckets = old;
		return -ENOMEM;
	}
	s->nbuckets = nbuckets;
	for (size_t i = 0; i < s->nobjs; i++) {
		struct store_obj *o = s->objs[i];
		o->name_next = NULL;
		*name_slot(s, o->name, o->name_len) = o;
	}
	free(old);
	return 0;
}

/* Index position of the first object with id >= id. */
static size_t index_lower_bound(struct store *s, uint64_t id)
{
	size_t lo = 0, hi = s->nobjs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->objs[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Takes the caller's reference.  Ids only grow, so appending keeps order
 * (store_open sorts what it loaded before inserting). */
static int index_add(struct store *s, struct store_obj *o)
{
	if (s->nobjs == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : INDEX_MIN_BUCKETS;
		void *p = realloc(s->objs, cap * sizeof(*s->objs));
		if (!p)
			return -ENOMEM;
		s->objs = p;
		s->cap = cap;
	}
	if (s->nobjs >= s->nbuckets && index_rehash(s, s->nbuckets * 2))
		return -ENOMEM;
	s->objs[s->nobjs++] = o;
	o->name_next = NULL;
	*name_slot(s, o->name, o->name_len) = o;
	return 0;
}

/* Returns the index's reference to the caller. */
static void index_remove(struct store *s, struct store_obj *o)
{
	size_t i = index_lower_bound(s, o->id);

	*name_slot(s, o->name, o->name_len) = o->name_next;
	memmove(&s->objs[i], &s->objs[i + 1],
		(s->nobjs - i - 1) * sizeof(*s->objs));
	s->nobjs--;
}

/* ---- references */

void store_get(struct store_obj *o)
{
	atomic_fetch_add(&o->refs, 1);
}

void store_put(struct store_obj *o)
{
	if (o && atomic_fetch_sub(&o->refs, 1) == 1) {
		if (o->fd >= 0)
			close(o->fd);
		if (o->ext && o->ext->detach)
			o->ext->detach(o);
		free(o);
	}
}

int store_find_name(struct store *s, const char *name, uint16_t len,
		    struct store_obj **out)
{
	pthread_rwlock_rdlock(&s->index_lock);
	*out = *name_slot(s, name, len);
	if (*out)
		store_get(*out);
	pthread_rwlock_unlock(&s->index_lock);
	return *out ? 0 : -ENOENT;
}

int store_find_id(struct store *s, uint64_t id, struct store_obj **out)
{
	size_t i;

	pthread_rwlock_rdlock(&s->index_lock);
	i = index_lower_bound(s, id);
	*out = i < s->nobjs && s->objs[i]->id == id ? s->objs[i] : NULL;
	if (*out)
		store_get(*out);
	pthread_rwlock_unlock(&s->index_lock);
	return *out ? 0 : -ENOENT;
}

int store_list(struct store *s, uint64_t cursor, uint32_t max,
	       struct store_obj **objs, uint32_t *count, uint64_t *next)
{
	size_t i;
	uint32_t n = 0;

	pthread_rwlock_rdlock(&s->index_lock);
	for (i = index_lower_bound(s, cursor); i < s->nobjs && n < max; i++) {
		objs[n++] = s->objs[i];
		store_get(s->objs[i]);
	}
	*next = i < s->nobjs ? s->objs[i]->id : 0;
	pthread_rwlock_unlock(&s->index_lock);
	*count = n;
	return 0;
}

size_t store_count(struct store *s)
{
	size_t n;

	pthread_rwlock_rdlock(&s->index_lock);
	n = s->nobjs;
	pthread_rwlock_unlock(&s->index_lock);
	return n;
}

/* ---- create and delete (under meta_lock) */

/* Ids are reserved STORE_ID_RESERVE at a time on disk, so most creates
 * skip the counter's fsyncs; after a crash the unused rest of a
 * reservation is skipped, never reused. */
static int next_id(struct store *s, uint64_t *id)
{
	int rc;

	if (s->next_id >= s->id_limit) {
		rc = counter_write(s->dirfd, s->next_id + STORE_ID_RESERVE);
		if (rc)
			return rc;
		s->id_limit = s->next_id + STORE_ID_RESERVE;
	}
	*id = s->next_id++;
	return 0;
}

static int data_create(struct store *s, struct store_obj *o)
{
	char file[OBJ_FILE_MAX];

	obj_file_name(file, o->id, DATA_SUFFIX);
	o->fd = openat(s->objfd, file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		       0600);
	if (o->fd < 0)
		return -errno;
	if (fsync(o->fd))
		return -errno;
	return s->ext && s->ext->attach ? s->ext->attach(s->objfd, o) : 0;
}

static void files_remove(struct store *s, uint64_t id)
{
	char file[OBJ_FILE_MAX];

	obj_file_name(file, id, META_SUFFIX);
	unlinkat(s->objfd, file, 0);
	obj_file_name(file, id, DATA_SUFFIX);
	unlinkat(s->objfd, file, 0);
	if (s->ext && s->ext->remove)
		s->ext->remove(s->objfd, id);
}

/* The metadata rename is the commit point: a crash before it leaves an
 * orphan data file that store_open removes. */
static int create_locked(struct store *s, struct store_obj *o)
{
	struct store_obj *old;
	int rc;

	if (!store_find_name(s, o->name, o->name_len, &old)) {
		store_put(old);
		return -EEXIST;
	}
	if ((rc = next_id(s, &o->id)) || (rc = data_create(s, o)) ||
	    (rc = meta_write(s->objfd, o))) {
		files_remove(s, o->id);
		return rc;
	}
	pthread_rwlock_wrlock(&s->index_lock);
	rc = index_add(s, o);
	pthread_rwlock_unlock(&s->index_lock);
	if (rc)
		files_remove(s, o->id);
	return rc;
}

static struct store_obj *obj_new(struct store *s, const char *name,
				 uint16_t len)
{
	struct store_obj *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->ext = s->ext;
	o->fd = -1;
	o->name_len = len;
	memcpy(o->name, name, len);
	atomic_init(&o->refs, 1);
	return o;
}

int store_create(struct store *s, const char *name, uint16_t name_len,
		 uint64_t size, uint32_t chunk_size, struct store_obj **out)
{
	struct store_obj *o = obj_new(s, name, name_len);
	int rc;

	if (!o)
		return -ENOMEM;
	o->size = size;
	o->chunk_size = chunk_size;
	pthread_mutex_lock(&s->meta_lock);
	rc = create_locked(s, o);
	pthread_mutex_unlock(&s->meta_lock);
	if (rc) {
		store_put(o);
		return rc;
	}
	store_get(o); /* one for the index, one for the caller */
	*out = o;
	return 0;
}

static int delete_locked(struct store *s, struct store_obj *o)
{
	char file[OBJ_FILE_MAX];
	int rc;

	obj_file_name(file, o->id, META_SUFFIX);
	if (unlinkat(s->objfd, file, 0))
		return -errno;
	rc = fsync_dir(s->objfd);
	if (rc) /* unlinked but maybe not durably: report, still drop it */
		log_err("delete %s: fsync of the directory: %s", o->name,
			strerror(-rc));
	pthread_rwlock_wrlock(&s->index_lock);
	index_remove(s, o);
	pthread_rwlock_unlock(&s->index_lock);
	obj_file_name(file, o->id, DATA_SUFFIX);
	unlinkat(s->objfd, file, 0);
	if (s->ext && s->ext->remove)
		s->ext->remove(s->objfd, o->id);
	store_put(o); /* the index's reference */
	return rc;
}

int store_delete(struct store *s, const char *name, uint16_t name_len)
{
	struct store_obj *o;
	int rc;

	pthread_mutex_lock(&s->meta_lock);
	rc = store_find_name(s, name, name_len, &o);
	if (!rc) {
		rc = delete_locked(s, o);
		store_put(o);
	}
	pthread_mutex_unlock(&s->meta_lock);
	return rc;
}

/* ---- data */

int store_info(struct store_obj *o, struct wire_objinfo *out)
{
	struct stat st;

	if (fstat(o->fd, &st))
		return -errno;
	*out = (struct wire_objinfo){
		.id = o->id, .size = o->size, .chunk_size = o->chunk_size,
		.flags = o->ext && o->ext->info_flags ? o->ext->info_flags(o)
						      : 0,
		.allocated = (uint64_t)st.st_blocks * 512,
		.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
			    (uint64_t)st.st_mtim.tv_nsec,
	};
	return 0;
}

int store_read(struct store_obj *o, uint64_t off, void *buf, uint32_t len,
	       bool nowait)
{
	char *p = buf;

	while (len) {
		struct iovec iov = { .iov_base = p, .iov_len = len };
		ssize_t n = preadv2(o->fd, &iov, 1, (off_t)off,
				    nowait ? RWF_NOWAIT : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && nowait && (errno == EOPNOTSUPP || errno == EINVAL))
			return -EAGAIN; /* no RWF_NOWAIT here: use a worker */
		if (n < 0)
			return -errno;
		if (n == 0) { /* past the data file's end: never written */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (uint32_t)n;
	}
	return 0;
}

/* SEEK_DATA answers from the file's extents (and the page cache), never
 * moving data: cheaper than reading zeros.  Only a sure "no data" is a
 * hole; any error (a file system without SEEK_DATA) reads as data. */
bool store_hole(struct store_obj *o, uint64_t off, uint32_t len)
{
	off_t d = lseek(o->fd, (off_t)off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO; /* no data from off to the end */
	return (uint64_t)d >= off + len;
}

int store_write(struct store_obj *o, uint64_t off, const void *buf,
		uint32_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(o->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		off += (uint64_t)n;
		len -= (uint32_t)n;
	}
	return 0;
}

const uint8_t *store_node_id(struct store *s)
{
	return s->node_id;
}

int store_sync(struct store_obj *o)
{
	return fdatasync(o->fd) ? -errno : 0;
}

/* ---- opening a data directory */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcmp(s + n - m, suffix);
}

static int open_data(struct store *s, struct store_obj *o)
{
	char file[OBJ_FILE_MAX];

	obj_file_name(file, o->id, DATA_SUFFIX);
	o->fd = openat(s->objfd, file, O_RDWR | O_CLOEXEC);
	if (o->fd < 0 && errno == ENOENT) {
		log_warn("object %s: data file %s missing, now empty", o->name,
			 file);
		o->fd = openat(s->objfd, file, O_RDWR | O_CREAT | O_CLOEXEC,
			       0600);
	}
	if (o->fd < 0)
		return -errno;
	return s->ext && s->ext->attach ? s->ext->attach(s->objfd, o) : 0;
}

/* A metadata file that does not check out is kept (with its data) for an
 * operator to look at, and its object is not served. */
static int load_meta(struct store *s, const char *file)
{
	struct store_obj *o = obj_new(s, "", 0);
	int rc;

	if (!o)
		return -ENOMEM;
	rc = meta_read(s->objfd, file, o);
	if (rc) {
		log_err("%s: unreadable metadata (%s), object skipped", file,
			strerror(-rc));
	} else if (*name_slot(s, o->name, o->name_len)) {
		log_err("%s: duplicate name %s, object skipped", file, o->name);
	} else if (!(rc = open_data(s, o)) && !(rc = index_add(s, o))) {
		if (o->id >= s->next_id)
			s->next_id = o->id + 1;
		return 0;
	} else {
		log_err("%s: object %s not served: %s", file, o->name,
			strerror(-rc));
	}
	store_put(o);
	return rc == -ENOMEM ? rc : 0;
}

/* Temp files are writes that never reached their rename: drop them. */
static int scan_entry(struct store *s, const char *file)
{
	if (has_suffix(file, TMP_SUFFIX)) {
		log_info("removing leftover %s", file);
		unlinkat(s->objfd, file, 0);
		return 0;
	}
	return has_suffix(file, META_SUFFIX) ? load_meta(s, file) : 0;
}

/* An object's file ("<hex id>.<suffix>": its data, or a layer above's
 * side file such as the replica's versions) without a metadata file is a
 * create that crashed before its commit point, or a delete after it: never
 * acknowledged, or deleted. */
static void remove_orphan(struct store *s, const char *file)
{
	char meta[OBJ_FILE_MAX];
	uint64_t id;
	char *end;

	id = strtoull(file, &end, 16);
	if (end == file || *end != '.' || !strcmp(end, META_SUFFIX) ||
	    !strcmp(end, TMP_SUFFIX))
		return;
	obj_file_name(meta, id, META_SUFFIX);
	if (faccessat(s->objfd, meta, F_OK, 0) && errno == ENOENT) {
		log_info("removing orphan file %s", file);
		unlinkat(s->objfd, file, 0);
	}
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = (*(struct store_obj *const *)a)->id;
	uint64_t y = (*(struct store_obj *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int scan_objects(struct store *s)
{
	int fd = dup(s->objfd), rc = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!rc && (e = readdir(d)))
		rc = scan_entry(s, e->d_name);
	rewinddir(d);
	while (!rc && (e = readdir(d)))
		remove_orphan(s, e->d_name);
	closedir(d);
	if (s->nobjs) /* qsort(NULL, 0, ...) is undefined */
		qsort(s->objs, s->nobjs, sizeof(*s->objs), cmp_id);
	return rc;
}

static int lock_dir(struct store *s)
{
	s->lockfd = openat(s->dirfd, STORE_LOCK, O_RDWR | O_CREAT | O_CLOEXEC,
			   0600);
	if (s->lockfd < 0)
		return -errno;
	if (flock(s->lockfd, LOCK_EX | LOCK_NB))
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

static int open_dirs(struct store *s, const char *dir)
{
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return -errno;
	if (mkdirat(s->dirfd, STORE_OBJ_DIR, 0700) && errno != EEXIST)
		return -errno;
	s->objfd = openat(s->dirfd, STORE_OBJ_DIR,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->objfd < 0)
		return -errno;
	/* The objects directory's own entry must survive a crash too. */
	return fsync_dir(s->dirfd);
}

static int store_load(struct store *s, const char *dir)
{
	uint64_t counted;
	int rc;

	if ((rc = open_dirs(s, dir)) || (rc = lock_dir(s)) ||
	    (rc = index_rehash(s, INDEX_MIN_BUCKETS)))
		return rc;
	if ((rc = counter_read(s->dirfd, &counted))) {
		log_err("%s/%s: %s", dir, STORE_COUNTER, strerror(-rc));
		return rc;
	}
	s->next_id = counted;
	if ((rc = node_id_load(s->dirfd, s->node_id))) {
		log_err("%s/%s: %s", dir, NODE_ID_FILE, strerror(-rc));
		return rc;
	}
	if ((rc = scan_objects(s)))
		return rc;
	s->id_limit = s->next_id; /* the first create reserves afresh */
	return 0;
}

int store_open(const char *dir, const struct store_ext *ext,
	       struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->ext = ext;
	s->dirfd = s->objfd = s->lockfd = -1;
	pthread_mutex_init(&s->meta_lock, NULL);
	pthread_rwlock_init(&s->index_lock, NULL);
	rc = store_load(s, dir);
	if (rc) {
		store_close(s);
		return rc;
	}
	log_info("store %s: %zu objects, next id %" PRIu64, dir, s->nobjs,
		 s->next_id);
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	for (size_t i = 0; i < s->nobjs; i++)
		store_put(s->objs[i]);
	free(s->objs);
	free(s->buckets);
	if (s->objfd >= 0)
		close(s->objfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	pthread_rwlock_destroy(&s->index_lock);
	pthread_mutex_destroy(&s->meta_lock);
	free(s);
}
