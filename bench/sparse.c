/* SPDX-License-Identifier: MIT */
/*
 * bench-sparse: sparse writes to an object, then written back, in
 * write-protect mode (the peer: whole dirty chunks are stored) and in scan
 * mode (only written pages are stored).  For each pattern, k 8-byte writes
 * at random pages of every chunk, it prints the bytes written back, the
 * time of writes + writeback, and the ratio scan / wp.  Two ways out:
 *
 *   sync   ufo_sync after the writes: chunks stay resident;
 *   evict  a budget of a quarter of the object: the writes themselves
 *          push chunks out, then ufo_reset drops the rest.
 *
 * The writeback callback copies into a backing array, and the run checks
 * every written word arrived there.  Skips (77) when either mode is
 * missing.
 */
#include <getopt.h>
#include <stdbool.h>

#include "bench_util.h"
#include "ufo.h"

struct backing {
	uint64_t *w;
};

static int b_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	const struct backing *b = user;

	memcpy(dst, b->w + start, (end - start) * 8);
	return 0;
}

static int b_writeback(void *user, uint64_t start, uint64_t end,
		       const void *src)
{
	struct backing *b = user;

	memcpy(b->w + start, src, (end - start) * 8);
	return 0;
}

struct result {
	double secs;
	uint64_t sent, chunk_bytes, wp_faults;
	bool ok;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes k words per chunk at pages chosen by a fixed generator; returns
 * false when the backing store misses one afterwards (checked by caller). */
static void do_writes(uint64_t *a, size_t size, size_t chunk, unsigned k,
		      uint64_t tag)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	size_t pages = chunk / 4096;

	for (size_t c = 0; c < size / chunk; c++)
		for (unsigned j = 0; j < k; j++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			size_t page = (rng >> 33) % pages;

			a[(c * chunk + page * 4096) / 8] = tag ^ (c << 20 | page);
		}
}

static bool check(const uint64_t *w, size_t size, size_t chunk, unsigned k,
		  uint64_t tag)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	size_t pages = chunk / 4096;

	for (size_t c = 0; c < size / chunk; c++)
		for (unsigned j = 0; j < k; j++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			size_t page = (rng >> 33) % pages;

			if (w[(c * chunk + page * 4096) / 8] != (tag ^ (c << 20 | page)))
				return false;
		}
	return true;
}

static int run(enum ufo_dirty_mode mode, size_t size, size_t chunk,
	       unsigned k, bool evict, struct result *r)
{
	struct backing b = { calloc(size / 8, 8) };
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats st;
	double t0;
	int err;

	if (!b.w)
		return -ENOMEM;
	ufo_config_init(&cfg);
	cfg.dirty_mode = mode;
	cfg.high_watermark = evict ? size / 4 : 2 * size;
	err = ufo_ctx_create(&cfg, &ctx);
	if (err) {
		free(b.w);
		return err;
	}
	ufo_params_init(&p);
	p.elem_size = 8;
	p.elem_count = size / 8;
	p.chunk_size = chunk;
	p.populate = b_populate;
	p.writeback = b_writeback;
	p.user = &b;
	err = ufo_create(ctx, &p, &obj);
	if (!err) {
		uint64_t *a = ufo_body(obj);

		for (size_t i = 0; i < size / 8; i += 512)
			(void)*(volatile uint64_t *)&a[i]; /* load (not timed) */
		ufo_obj_stats(obj, &st);
		t0 = now_s();
		do_writes(a, size, chunk, k, 0x5eed0000 + k);
		err = evict ? ufo_reset(obj) : ufo_sync(obj);
		r->secs = now_s() - t0;
		ufo_obj_stats(obj, &st);
		r->sent = st.writeback_bytes;
		r->chunk_bytes = st.writeback_chunk_bytes;
		r->wp_faults = st.wp_faults;
		r->ok = !err && check(b.w, size, chunk, k, 0x5eed0000 + k);
		ufo_free(obj);
	}
	ufo_ctx_destroy(ctx);
	free(b.w);
	return err;
}

int main(int argc, char **argv)
{
	size_t size = 256 * MiB, chunk = MiB;
	static const unsigned ks[] = { 1, 8, 64 };
	char b1[32], b2[32];
	int c, fails = 0;

	while ((c = getopt(argc, argv, "s:c:")) != -1) {
		if ((c == 's' && parse_size(optarg, &size)) ||
		    (c == 'c' && parse_size(optarg, &chunk)) ||
		    (c != 's' && c != 'c')) {
			fprintf(stderr, "usage: bench-sparse [-s SIZE] [-c CHUNK]\n");
			return 2;
		}
	}
	printf("bench-sparse: object %s, chunk %s; k 8-byte writes at random pages of each chunk\n",
	       fmt_size(size, b1), fmt_size(chunk, b2));
	printf("%-6s %4s %-5s %14s %14s %8s %8s %9s %8s\n", "out", "k", "mode",
	       "bytes sent", "chunk bytes", "sent %", "secs", "wp faults",
	       "scan/wp");
	for (int e = 0; e < 2; e++) {
		for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
			struct result r[2] = { 0 };
			enum ufo_dirty_mode m[2] = { UFO_DIRTY_WP, UFO_DIRTY_SCAN };

			for (int j = 0; j < 2; j++) {
				int err = run(m[j], size, chunk, ks[i], e, &r[j]);

				if (err == -ENOTSUP || err == -EPERM || err == -ENOSYS) {
					printf("skip: %s mode: %s\n",
					       ufo_dirty_mode_name(m[j]), strerror(-err));
					return 77;
				}
				if (err || !r[j].ok) {
					printf("%s k=%u: FAILED (%s)\n",
					       ufo_dirty_mode_name(m[j]), ks[i],
					       err ? strerror(-err) : "data missing");
					fails++;
				}
				printf("%-6s %4u %-5s %14llu %14llu %7.2f%% %8.3f %9llu",
				       e ? "evict" : "sync", ks[i],
				       ufo_dirty_mode_name(m[j]),
				       (unsigned long long)r[j].sent,
				       (unsigned long long)r[j].chunk_bytes,
				       r[j].chunk_bytes ? 100.0 * r[j].sent / r[j].chunk_bytes : 0,
				       r[j].secs, (unsigned long long)r[j].wp_faults);
				if (j)
					printf(" %8.4f  (bytes), %.2f (time)\n",
					       r[0].sent ? (double)r[1].sent / r[0].sent : 0,
					       r[0].secs ? r[1].secs / r[0].secs : 0);
				else
					printf("\n");
			}
		}
	}
	return fails ? 1 : 0;
}
