/* SPDX-License-Identifier: MIT */
/*
 * A full disk: the server's data directory is a 4 MiB tmpfs.  Writes past
 * the space get -ENOSPC (not a generic I/O error) with the server's text,
 * the server keeps serving what it acknowledged, a UFO's writeback that
 * hits the full disk keeps its chunk dirty and resident, and once space is
 * freed the same sync succeeds: nothing acknowledged or written is lost.
 * Skips when tmpfs cannot be mounted (not root).
 */
#include <sys/mount.h>

#include "t_remote.h"

#define PIECE (64 * T_KIB)
#define FS_BYTES "4m"
#define MAX_PIECES 256 /* 16 MiB: far past the 4 MiB file system */

static bool mounted;

static void unmount_data(void)
{
	if (mounted)
		umount2(t_srv.data, MNT_DETACH);
}

static void fill_piece(uint8_t *buf, uint64_t seed)
{
	for (size_t i = 0; i < PIECE / 8; i++)
		((uint64_t *)buf)[i] = t_word(seed, i * 8);
}

/* Writes pieces of obj id until the disk is full; returns how many were
 * acknowledged, asserting the failure is -ENOSPC. */
static unsigned write_until_full(struct ufo_client *c, uint64_t id)
{
	static uint8_t buf[PIECE];
	unsigned n;
	int rc = 0;

	for (n = 0; n < MAX_PIECES; n++) {
		fill_piece(buf, n + 1);
		rc = ufo_client_write(c, id, (uint64_t)n * PIECE, buf, PIECE);
		if (rc)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_true(ufo_client_last_error()[0] != '\0');
	assert_true(n > 0);
	return n;
}

static void verify_pieces(struct ufo_client *c, uint64_t id, unsigned n)
{
	static uint8_t got[PIECE], want[PIECE];

	for (unsigned i = 0; i < n; i++) {
		fill_piece(want, i + 1);
		assert_int_equal(ufo_client_read(c, id, (uint64_t)i * PIECE, got,
						 PIECE), 0);
		assert_memory_equal(got, want, PIECE);
	}
}

/* A UFO writes a chunk the full disk cannot take: sync fails, the chunk
 * stays dirty and readable; after space is freed the sync succeeds. */
static void ufo_sync_across_full(struct ufo_client *c, unsigned acked)
{
	struct ufo_config cfg;
	struct ufo_stats st;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t off = (uint64_t)(acked + 4) * PIECE;
	volatile uint64_t *w;

	t_config(&cfg, PIECE, 16, 8);
	ctx = t_ctx(&cfg);
	obj = t_remote_obj(ctx, "big", 0, 0, 0);
	w = (volatile uint64_t *)((char *)ufo_body(obj) + off);
	for (size_t i = 0; i < PIECE / 8; i++)
		w[i] = t_word(99, i * 8);
	assert_int_equal(ufo_sync(obj), -ENOSPC);
	assert_int_equal(ufo_obj_stats(obj, &st), 0);
	/* Scan mode knows a chunk is dirty only while storing it. */
	if (ufo_ctx_dirty_mode(ctx) == UFO_DIRTY_WP)
		assert_true(st.dirty_bytes >= PIECE);
	assert_true(st.writeback_errors >= 1);
	assert_int_equal(w[7], t_word(99, 56));
	/* Free space: the filler goes. */
	assert_int_equal(ufo_client_delete(c, "filler"), 0);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_obj_stats(obj, &st), 0);
	assert_int_equal(st.dirty_bytes, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	{
		static uint64_t got[PIECE / 8];
		struct ufo_remote_info info;

		assert_int_equal(ufo_client_stat(c, "big", &info), 0);
		assert_int_equal(ufo_client_read(c, info.id, off, got, PIECE), 0);
		for (size_t i = 0; i < PIECE / 8; i++)
			assert_int_equal(got[i], t_word(99, i * 8));
	}
}

static void test_full_disk(void **state)
{
	struct ufo_remote_info filler, big;
	struct ufo_client *c;
	static uint8_t buf[PIECE];
	unsigned acked;

	(void)state;
	t_remote_begin();
	c = t_client();
	assert_int_equal(ufo_client_create(c, "filler", 16 * PIECE, PIECE,
					   &filler), 0);
	for (unsigned i = 0; i < 16; i++) {
		fill_piece(buf, 1000 + i);
		assert_int_equal(ufo_client_write(c, filler.id,
						  (uint64_t)i * PIECE, buf,
						  PIECE), 0);
	}
	assert_int_equal(ufo_client_create(c, "big", 64ull << 20, PIECE, &big),
			 0);
	acked = write_until_full(c, big.id);
	fprintf(stderr, "full after %u acknowledged pieces of %u KiB\n", acked,
		(unsigned)(PIECE / T_KIB));
	/* Still serving: every acknowledged piece reads back. */
	verify_pieces(c, big.id, acked);
	assert_int_equal(ufo_client_stat(c, "big", &big), 0);
	ufo_sync_across_full(c, acked);
	verify_pieces(c, big.id, acked);
	ufo_client_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_disk),
	};
	const char *bin = getenv("UFO_SERVER");
	int rc;

	t_setup();
	unsetenv("UFO_SECRET_FILE");
	if (!bin || !*bin || access(bin, X_OK)) {
		fprintf(stderr, "skip: no ufo-server\n");
		return T_EXIT_SKIP;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((rc = t_server_init(&t_srv, bin))) {
		fprintf(stderr, "preparing %s: %s\n", t_srv.root, strerror(-rc));
		return 1;
	}
	if (mount("ufo-full", t_srv.data, "tmpfs", 0, "size=" FS_BYTES)) {
		fprintf(stderr, "skip: cannot mount a small tmpfs: %s\n",
			strerror(errno));
		return T_EXIT_SKIP;
	}
	mounted = true;
	atexit(unmount_data);
	if ((rc = t_server_start(&t_srv))) {
		fprintf(stderr, "starting %s: %s\n", bin, strerror(-rc));
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
