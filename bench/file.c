/* SPDX-License-Identifier: MIT */
/*
 * bench-file: one sequential scan of a file-backed object (default 4 GiB,
 * 1 MiB chunks, 256 MiB budget), the file generated once (word i is
 * i * GEN_MUL) and warm in the page cache, timed as
 *
 *   uffd-minimal  (the peer) bench_mini.h's pager filling each chunk with
 *                 one pread: a single-handler stand-in for LLNL umap
 *                 (bench/README.md says how to run umap itself);
 *   ufo           libufo, default settings, populate = pread, budget as
 *                 the high watermark;
 *   kernel mmap   the file mapped MAP_PRIVATE read-only and summed: the
 *                 page cache's own speed, a reference only (no budget).
 *
 * The cases alternate over --reps rounds; medians are printed.  Target:
 * ufo >= 1.2 x uffd-minimal; the exit status is 1 when it is missed or a
 * sum is wrong (--no-fail-target: only a wrong sum fails).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <sys/statvfs.h>

#include "bench_mini.h"

#define TARGET_RATIO 1.2
#define REPS_MAX 15

struct opts {
	size_t size, budget, chunk;
	int reps;
	bool no_fail;
	const char *path;  /* NULL: a temp file in $TMPDIR */
};

static int fd_file = -1;

static int write_file(const struct opts *o)
{
	size_t block = 8 * MiB;
	uint64_t *buf = malloc(block);

	if (!buf)
		return -ENOMEM;
	for (size_t off = 0; off < o->size; off += block) {
		size_t len = o->size - off < block ? o->size - off : block;

		gen_fill(buf, off / 8, (off + len) / 8);
		if (pwrite(fd_file, buf, len, (off_t)off) != (ssize_t)len) {
			free(buf);
			return errno ? -errno : -EIO;
		}
	}
	free(buf);
	return 0;
}

/* Creates (or overwrites) the file: o->size bytes of the generator. */
static int make_file(const struct opts *o, char *tmp, size_t cap)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct statvfs vfs;
	int err;

	if (o->path) {
		snprintf(tmp, cap, "%s", o->path);
		fd_file = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	} else {
		snprintf(tmp, cap, "%s/bench-file.XXXXXX", dir);
		fd_file = mkostemp(tmp, O_CLOEXEC);
	}
	if (fd_file < 0)
		return -errno;
	if (!fstatvfs(fd_file, &vfs) &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < o->size + 64 * MiB) {
		fprintf(stderr, "bench-file: %s has %llu MiB free, %zu MiB"
			" needed (set TMPDIR or --file elsewhere)\n", tmp,
			(unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20,
			(o->size >> 20) + 64);
		return -ENOSPC;
	}
	if (ftruncate(fd_file, (off_t)o->size))
		return -errno;
	err = write_file(o);
	return err ? err : fsync(fd_file) ? -errno : 0;
}

static int pread_all(void *buf, size_t off, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd_file, p, len, (off_t)off);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (size_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int mini_pread(void *user, void *buf, size_t off, size_t len)
{
	(void)user;
	return pread_all(buf, off, len);
}

static int ufo_pread(void *user, uint64_t start, uint64_t end, void *dst)
{
	(void)user;
	return pread_all(dst, start * 8, (end - start) * 8);
}

static bool sum_ok(const char *what, uint64_t sum, uint64_t n)
{
	if (sum == gen_sum(n))
		return true;
	fprintf(stderr, "bench-file: %s: WRONG SUM\n", what);
	return false;
}

/* Each case: GB/s of one scan, or -errno. */
static double case_mini(const struct opts *o)
{
	uint64_t n = o->size / 8, sum;
	struct mini m;
	double t0 = now_sec(), t;
	int err = mini_open(&m, o->size, o->chunk, o->budget, mini_pread,
			    NULL);

	if (err)
		return err;
	sum = scan_sum((const uint64_t *)m.base, n);
	t = now_sec() - t0;
	mini_close(&m);
	return sum_ok("uffd-minimal", sum, n) ? (double)o->size / t / 1e9
					      : -EIO;
}

static double case_ufo(const struct opts *o)
{
	uint64_t n = o->size / 8, sum;
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	double t0 = now_sec(), t;
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	if ((err = ufo_ctx_create(&cfg, &ctx)))
		return err;
	ufo_params_init(&p);
	p.elem_size = 8;
	p.elem_count = n;
	p.chunk_size = o->chunk;
	p.flags = UFO_READ_ONLY;
	p.populate = ufo_pread;
	if ((err = ufo_create(ctx, &p, &obj))) {
		ufo_ctx_destroy(ctx);
		return err;
	}
	sum = scan_sum(ufo_body(obj), n);
	t = now_sec() - t0;
	ufo_free(obj);
	ufo_ctx_destroy(ctx);
	return sum_ok("ufo", sum, n) ? (double)o->size / t / 1e9 : -EIO;
}

static double case_mmap(const struct opts *o)
{
	uint64_t n = o->size / 8, sum;
	double t0 = now_sec(), t;
	void *a = mmap(NULL, o->size, PROT_READ, MAP_PRIVATE, fd_file, 0);

	if (a == MAP_FAILED)
		return -errno;
	sum = scan_sum(a, n);
	t = now_sec() - t0;
	munmap(a, o->size);
	return sum_ok("kernel mmap", sum, n) ? (double)o->size / t / 1e9
					     : -EIO;
}

static const struct {
	const char *name;
	double (*run)(const struct opts *o);
} cases[] = {
	{ "uffd-minimal (peer)", case_mini },
	{ "ufo (default)", case_ufo },
	{ "kernel mmap (info)", case_mmap },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "reps", required_argument, NULL, 'r' },
		{ "file", required_argument, NULL, 'f' },
		{ "no-fail-target", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .size = 4 * GiB, .budget = 256 * MiB,
			    .chunk = MiB, .reps = 3 };
	while ((c = getopt_long(argc, argv, "s:b:c:r:f:nh", lo, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case 's': err = parse_size(optarg, &o->size); break;
		case 'b': err = parse_size(optarg, &o->budget); break;
		case 'c': err = parse_size(optarg, &o->chunk); break;
		case 'r':
			o->reps = atoi(optarg);
			err = o->reps > 0 && o->reps <= REPS_MAX ? 0 : -EINVAL;
			break;
		case 'f': o->path = optarg; break;
		case 'n': o->no_fail = true; break;
		case 'h':
			printf("usage: bench-file [--size 4G] [--budget 256M]"
			       " [--chunk 1M] [--reps 3] [--file PATH]"
			       " [--no-fail-target]\n");
			exit(0);
		default: return -EINVAL;
		}
		if (err)
			return err;
	}
	if (o->chunk % 4096 || o->size % o->chunk || o->chunk * 4 > o->budget) {
		fprintf(stderr, "bench-file: --chunk must be a multiple of 4K"
			" dividing --size and at most --budget / 4\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	double gbs[NCASES][REPS_MAX], med[NCASES];
	char path[4096], b1[32], b2[32], b3[32];
	bool ok = true;
	struct opts o;
	int err;

	if (parse_opts(argc, argv, &o))
		return 2;
	printf("bench-file: sequential scan of a %s file, %s chunks, %s"
	       " budget (high watermark), page cache warm, %d round(s),"
	       " medians\n", fmt_size(o.size, b1), fmt_size(o.chunk, b2),
	       fmt_size(o.budget, b3), o.reps);
	err = make_file(&o, path, sizeof(path));
	if (err) {
		fprintf(stderr, "bench-file: preparing %s: %s\n", path,
			strerror(-err));
		if (!o.path)
			unlink(path);
		return 2;
	}
	for (int r = 0; r < o.reps; r++)
		for (size_t c = 0; c < NCASES; c++)
			gbs[c][r] = cases[c].run(&o);
	printf("%-22s %8s %10s\n", "case", "GB/s", "ours/peer");
	for (size_t c = 0; c < NCASES; c++) {
		med[c] = median(gbs[c], o.reps);
		ok &= med[c] != -EIO;
		if (med[c] < 0)
			printf("%-22s %8s  (%s)\n", cases[c].name, "failed",
			       strerror((int)-med[c]));
		else if (c == 0)
			printf("%-22s %8.3f %10s\n", cases[c].name, med[c],
			       "(peer)");
		else
			printf("%-22s %8.3f %10.2f%s\n", cases[c].name, med[c],
			       med[0] > 0 ? med[c] / med[0] : 0,
			       c == 1 ? "  target >= 1.20" : "");
	}
	if (med[0] > 0 && med[1] > 0 && med[1] / med[0] < TARGET_RATIO) {
		printf("target missed: ufo / uffd-minimal %.2f < %.2f\n",
		       med[1] / med[0], TARGET_RATIO);
		ok &= o.no_fail;
	}
	close(fd_file);
	if (!o.path)
		unlink(path);
	return ok ? 0 : 1;
}
