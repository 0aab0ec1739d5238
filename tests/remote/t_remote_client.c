/* SPDX-License-Identifier: MIT */
/*
 * The ufo_client_* calls against a real server: create, stat, list (across
 * several pages), delete, read, write, sync, their argument checks, and
 * many threads pipelining requests on one client.
 */
#include "t_remote.h"

#define LIST_OBJECTS 300 /* > 256, the entries of one LIST reply */
#define IO_CHUNK (64 * T_KIB)
#define MAX_IO (16 * T_MIB)
#define THREADS 8
#define THREAD_REGION (256 * T_KIB)
#define THREAD_OPS 200

static struct ufo_client *cl;

static int group_setup(void **state)
{
	(void)state;
	cl = t_client();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	ufo_client_close(cl);
	return 0;
}

static void test_create_stat_delete(void **state)
{
	struct ufo_remote_info a, b;
	uint64_t old_id;

	(void)state;
	t_remote_begin();
	assert_int_equal(ufo_client_create(cl, "obj-a", 3 * IO_CHUNK + 100,
					   IO_CHUNK, &a), 0);
	assert_string_equal(a.name, "obj-a");
	assert_int_equal(a.size, 3 * IO_CHUNK + 100);
	assert_int_equal(a.chunk_size, IO_CHUNK);

	assert_int_equal(ufo_client_create(cl, "obj-a", IO_CHUNK, IO_CHUNK, &b),
			 -EEXIST);
	/* The failed create changed nothing. */
	memset(&b, 0, sizeof(b));
	assert_int_equal(ufo_client_stat(cl, "obj-a", &b), 0);
	assert_string_equal(b.name, "obj-a");
	assert_int_equal(b.id, a.id);
	assert_int_equal(b.size, 3 * IO_CHUNK + 100);
	assert_int_equal(b.chunk_size, IO_CHUNK);

	/* chunk_size 0: the default. */
	assert_int_equal(ufo_client_create(cl, "obj-b", 2 * T_MIB, 0, &b), 0);
	assert_int_equal(b.chunk_size, UFO_DEFAULT_CHUNK_SIZE);
	assert_true(b.id != a.id);

	assert_int_equal(ufo_client_stat(cl, "no-such-object", &b), -ENOENT);
	assert_int_equal(ufo_client_delete(cl, "obj-a"), 0);
	assert_int_equal(ufo_client_stat(cl, "obj-a", &b), -ENOENT);
	assert_int_equal(ufo_client_delete(cl, "obj-a"), -ENOENT);
	/* The name is free again, for a new object. */
	old_id = a.id;
	assert_int_equal(ufo_client_create(cl, "obj-a", IO_CHUNK, IO_CHUNK, &a),
			 0);
	assert_true(a.id != old_id);
	assert_int_equal(a.size, IO_CHUNK);
	assert_int_equal(ufo_client_delete(cl, "obj-a"), 0);
	assert_int_equal(ufo_client_delete(cl, "obj-b"), 0);
}

struct listing {
	unsigned seen[LIST_OBJECTS];
	unsigned others;
	unsigned calls;
	unsigned stop_after; /* 0: never stop */
	struct ufo_remote_info infos[LIST_OBJECTS];
};

static int list_fn(void *user, const struct ufo_remote_info *info)
{
	struct listing *l = user;
	unsigned i;
	char end;

	l->calls++;
	if (sscanf(info->name, "list-%u%c", &i, &end) == 1 &&
	    i < LIST_OBJECTS) {
		l->seen[i]++;
		l->infos[i] = *info;
	} else {
		l->others++;
	}
	return l->stop_after && l->calls == l->stop_after ? 42 : 0;
}

static void test_list_pages(void **state)
{
	struct listing *l = t_zalloc(sizeof(*l));
	uint64_t *ids = t_zalloc(LIST_OBJECTS * sizeof(*ids));
	struct ufo_remote_info info;
	char name[32];

	(void)state;
	t_remote_begin();
	for (unsigned i = 0; i < LIST_OBJECTS; i++) {
		snprintf(name, sizeof(name), "list-%u", i);
		assert_int_equal(ufo_client_create(cl, name, 4096 + i, 4096,
						   &info), 0);
		ids[i] = info.id;
	}
	assert_int_equal(ufo_client_list(cl, list_fn, l), 0);
	for (unsigned i = 0; i < LIST_OBJECTS; i++) {
		if (l->seen[i] != 1)
			fail_msg("list-%u listed %u times", i, l->seen[i]);
		assert_int_equal(l->infos[i].id, ids[i]);
		assert_int_equal(l->infos[i].size, 4096 + i);
		assert_int_equal(l->infos[i].chunk_size, 4096);
	}
	assert_int_equal(l->calls, LIST_OBJECTS + l->others);

	/* A non-zero return stops the listing and is returned. */
	memset(l, 0, sizeof(*l));
	l->stop_after = 10;
	assert_int_equal(ufo_client_list(cl, list_fn, l), 42);
	assert_int_equal(l->calls, 10);
	memset(l, 0, sizeof(*l));
	l->stop_after = 270; /* on the second page */
	assert_int_equal(ufo_client_list(cl, list_fn, l), 42);
	assert_int_equal(l->calls, 270);

	/* Deleted objects are not listed. */
	for (unsigned i = 0; i < LIST_OBJECTS; i += 2) {
		snprintf(name, sizeof(name), "list-%u", i);
		assert_int_equal(ufo_client_delete(cl, name), 0);
	}
	memset(l, 0, sizeof(*l));
	assert_int_equal(ufo_client_list(cl, list_fn, l), 0);
	for (unsigned i = 0; i < LIST_OBJECTS; i++)
		if (l->seen[i] != i % 2)
			fail_msg("list-%u listed %u times after deleting the "
				 "even ones", i, l->seen[i]);
	for (unsigned i = 1; i < LIST_OBJECTS; i += 2) {
		snprintf(name, sizeof(name), "list-%u", i);
		assert_int_equal(ufo_client_delete(cl, name), 0);
	}
	free(ids);
	free(l);
}

static void test_read_write_sync(void **state)
{
	const uint64_t size = 4 * IO_CHUNK;
	struct ufo_remote_info info;
	char *buf = t_zalloc(size), *back = t_zalloc(size);

	(void)state;
	t_remote_begin();
	assert_int_equal(ufo_client_create(cl, "rw", size, IO_CHUNK, &info), 0);
	/* A new object reads as zeros. */
	memset(back, 0xff, size);
	assert_int_equal(ufo_client_read(cl, info.id, 0, back, size), 0);
	for (uint64_t i = 0; i < size; i++)
		assert_int_equal(back[i], 0);

	t_fill(buf, sizeof(uint64_t), 61, 0, size / 8);
	assert_int_equal(ufo_client_write(cl, info.id, 0, buf, size), 0);
	assert_int_equal(ufo_client_sync(cl, info.id), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 0, back, size), 0);
	assert_memory_equal(back, buf, size);

	/* Unaligned pieces crossing chunk boundaries. */
	memset(buf + IO_CHUNK - 3, 0xab, 7);
	assert_int_equal(ufo_client_write(cl, info.id, IO_CHUNK - 3,
					  buf + IO_CHUNK - 3, 7), 0);
	memset(back, 0, size);
	assert_int_equal(ufo_client_read(cl, info.id, IO_CHUNK - 5, back, 11), 0);
	assert_memory_equal(back, buf + IO_CHUNK - 5, 11);
	/* The last byte. */
	assert_int_equal(ufo_client_read(cl, info.id, size - 1, back, 1), 0);
	assert_int_equal(back[0], buf[size - 1]);

	/* Past the end. */
	assert_int_equal(ufo_client_read(cl, info.id, size - 1, back, 2),
			 -ERANGE);
	assert_int_equal(ufo_client_read(cl, info.id, size, back, 1), -ERANGE);
	assert_int_equal(ufo_client_read(cl, info.id, UINT64_MAX - 1, back, 4),
			 -ERANGE);
	assert_int_equal(ufo_client_write(cl, info.id, size - 4, buf, 8),
			 -ERANGE);
	/* The refused write changed nothing. */
	assert_int_equal(ufo_client_read(cl, info.id, 0, back, size), 0);
	assert_memory_equal(back, buf, size);

	/* A deleted object's id is gone. */
	assert_int_equal(ufo_client_delete(cl, "rw"), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 0, back, 8), -ENOENT);
	free(buf);
	free(back);
}

/* The largest I/O the protocol allows works; one byte more is refused by
 * the client before anything is sent. */
static void test_io_limit(void **state)
{
	struct ufo_remote_info info;
	char *buf = t_zalloc(MAX_IO + 1), *back = t_zalloc(MAX_IO + 1);

	(void)state;
	t_remote_begin();
	assert_int_equal(ufo_client_create(cl, "big-io", 2 * MAX_IO, 0, &info),
			 0);
	t_fill(buf, sizeof(uint64_t), 71, 0, MAX_IO / 8);
	assert_int_equal(ufo_client_write(cl, info.id, 4096, buf, MAX_IO), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 4096, back, MAX_IO), 0);
	assert_memory_equal(back, buf, MAX_IO);
	assert_int_equal(ufo_client_write(cl, info.id, 0, buf, MAX_IO + 1),
			 -EINVAL);
	assert_int_equal(ufo_client_read(cl, info.id, 0, back, MAX_IO + 1),
			 -EINVAL);
	/* The connection is still in order after the refusals. */
	assert_int_equal(ufo_client_read(cl, info.id, 4096, back, 64), 0);
	assert_memory_equal(back, buf, 64);
	assert_int_equal(ufo_client_delete(cl, "big-io"), 0);
	free(buf);
	free(back);
}

static void test_bad_names(void **state)
{
	struct ufo_remote_info info;
	char longest[256], too_long[257];
	const char *bad[] = {
		"", ".", "..", ".hidden", "a/b", "../x", "a b", "tab\t",
		"nul\x01", "semi;colon", "ü",
	};

	(void)state;
	t_remote_begin();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		if ((rc = ufo_client_create(cl, bad[i], 4096, 4096, &info)) !=
		    -EINVAL)
			fail_msg("create '%s': %d, want -EINVAL", bad[i], rc);
		if ((rc = ufo_client_stat(cl, bad[i], &info)) != -EINVAL)
			fail_msg("stat '%s': %d, want -EINVAL", bad[i], rc);
		if ((rc = ufo_client_delete(cl, bad[i])) != -EINVAL)
			fail_msg("delete '%s': %d, want -EINVAL", bad[i], rc);
	}
	assert_int_equal(ufo_client_create(cl, NULL, 4096, 4096, &info),
			 -EINVAL);

	memset(longest, 'n', 255);
	longest[255] = '\0';
	memset(too_long, 'n', 256);
	too_long[256] = '\0';
	assert_int_equal(ufo_client_create(cl, too_long, 4096, 4096, &info),
			 -EINVAL);
	/* 255 bytes of every allowed character class is fine. */
	memcpy(longest, "Az09._-", 7);
	assert_int_equal(ufo_client_create(cl, longest, 4096, 4096, &info), 0);
	assert_string_equal(info.name, longest);
	assert_int_equal(ufo_client_stat(cl, longest, &info), 0);
	assert_string_equal(info.name, longest);
	assert_int_equal(ufo_client_delete(cl, longest), 0);
}

/* ---- many threads on one client */

struct worker {
	uint64_t id;
	unsigned index;
	uint64_t rnd;
	unsigned bad;
	int err;
	atomic_bool done;
	char shadow[THREAD_REGION]; /* what the region should hold */
	char buf[THREAD_REGION];
};

/* Random writes and reads within the thread's own region, each read checked
 * against the shadow; the others' regions are being written meanwhile, so
 * responses must not be mixed up between threads. */
static void *pipeline_worker(void *arg)
{
	struct worker *w = arg;
	uint64_t base = (uint64_t)w->index * THREAD_REGION;

	for (unsigned op = 0; op < THREAD_OPS && !w->err; op++) {
		size_t off = t_rand(&w->rnd) % THREAD_REGION;
		size_t len = 1 + t_rand(&w->rnd) % (THREAD_REGION - off);

		if (t_rand(&w->rnd) % 2) {
			for (size_t i = 0; i < len; i++)
				w->shadow[off + i] = (char)t_rand(&w->rnd);
			w->err = ufo_client_write(cl, w->id, base + off,
						  w->shadow + off, len);
		} else {
			w->err = ufo_client_read(cl, w->id, base + off, w->buf,
						 len);
			if (!w->err && memcmp(w->buf, w->shadow + off, len))
				w->bad++;
		}
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void concurrent(const char *name)
{
	struct worker *w = t_zalloc(THREADS * sizeof(*w));
	pthread_t t[THREADS];
	struct ufo_remote_info info;
	uint64_t rnd = t_random_seed(name);
	char *all;

	assert_int_equal(ufo_client_create(cl, name,
					   THREADS * THREAD_REGION, IO_CHUNK,
					   &info), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		w[i].id = info.id;
		w[i].index = i;
		w[i].rnd = t_rand(&rnd) | 1;
		assert_int_equal(pthread_create(&t[i], NULL, pipeline_worker,
						&w[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		T_WAIT_UNTIL(atomic_load(&w[i].done));
		assert_true(atomic_load(&w[i].done));
		pthread_join(t[i], NULL);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		if (w[i].err)
			fail_msg("thread %u: %s", i, strerror(-w[i].err));
		if (w[i].bad)
			fail_msg("thread %u: %u reads returned wrong data", i,
				 w[i].bad);
	}
	/* The whole object, read at once, is every thread's shadow. */
	all = t_zalloc(THREADS * THREAD_REGION);
	assert_int_equal(ufo_client_sync(cl, info.id), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 0, all,
					 THREADS * THREAD_REGION), 0);
	for (unsigned i = 0; i < THREADS; i++)
		assert_memory_equal(all + (size_t)i * THREAD_REGION,
				    w[i].shadow, THREAD_REGION);
	assert_int_equal(ufo_client_delete(cl, name), 0);
	free(all);
	free(w);
}

static void test_concurrent_pipelined(void **state)
{
	(void)state;
	t_remote_begin();
	concurrent("pipelined");
}

/* The same with several connections per client. */
static void test_concurrent_many_connections(void **state)
{
	struct ufo_remote_opts o;
	struct ufo_client *one = cl;

	t_opts(&o);
	o.connections = 4;
	(void)state;
	t_remote_begin();
	assert_int_equal(ufo_client_connect(t_url(NULL), &o, &cl), 0);
	concurrent("pipelined-4");
	ufo_client_close(cl);
	cl = one;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_stat_delete),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_read_write_sync),
		cmocka_unit_test(test_io_limit),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_concurrent_pipelined),
		cmocka_unit_test(test_concurrent_many_connections),
	};

	t_remote_setup();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
