/* SPDX-License-Identifier: MIT */
/*
 * userfaultfd wrappers.  Every ioctl is converted to 0 / -errno here, once;
 * which errnos are recoverable (EAGAIN: retry the rest, EEXIST: already
 * there) is decided here and nowhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int sys_userfaultfd(int flags)
{
	int fd = (int)syscall(SYS_userfaultfd, flags);

	return fd < 0 ? -errno : fd;
}

static int dev_userfaultfd(int flags)
{
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC), fd;

	if (dev < 0)
		return -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
	fd = fd < 0 ? -errno : fd;
	close(dev);
	return fd;
}

/*
 * Opens a userfaultfd that can also resolve faults taken inside the kernel
 * (read(2) into a UFO) when allowed: the syscall, then /dev/userfaultfd,
 * then the syscall limited to user-mode faults.
 */
static int open_raw(const struct ufo_ctx *ctx, bool *user_only)
{
	const int flags = O_CLOEXEC | O_NONBLOCK;
	int fd = sys_userfaultfd(flags), first = fd;

	*user_only = false;
	if (fd >= 0 || fd == -ENOSYS)
		return fd;
	fd = dev_userfaultfd(flags);
	if (fd >= 0)
		return fd;
	fd = sys_userfaultfd(flags | UFFD_USER_MODE_ONLY);
	if (fd >= 0) {
		*user_only = true;
		log_info(ctx, "userfaultfd limited to user-mode faults: a system call writing into a UFO fails with EFAULT");
		return fd;
	}
	if (first == -EPERM || first == -EACCES)
		log_err(ctx, "userfaultfd refused (%s): set sysctl vm.unprivileged_userfaultfd=1, grant CAP_SYS_PTRACE, or give access to /dev/userfaultfd",
			strerror(-first));
	return first;
}

/* Debian 12's headers predate UFFDIO_MOVE (Linux 6.8); the ABI is fixed. */
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 10)
#define _UFFDIO_MOVE (0x05)
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* Linux 6.7: asynchronous write-protect and the PAGEMAP_SCAN ioctl of
 * /proc/PID/pagemap.  Older headers lack them; the ABI is fixed. */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WRITTEN (1 << 1)
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

static int api_handshake(int fd, uint64_t want, uint64_t *got)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	*got = api.features;
	return 0;
}

/* Write-protect works on anonymous memory if a one-page registration in WP
 * mode offers the UFFDIO_WRITEPROTECT ioctl. */
static bool probe_wp(int fd, size_t page)
{
	void *p = mmap(NULL, page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = page },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	bool ok;

	if (p == MAP_FAILED)
		return false;
	ok = !ioctl(fd, UFFDIO_REGISTER, &reg) &&
	     (reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT));
	if (ok)
		uffd_unregister(fd, p, page);
	munmap(p, page);
	return ok;
}

/* PAGEMAP_SCAN answers on this kernel: a scan of one unmapped page finds
 * nothing instead of failing with ENOTTY. */
static bool probe_pagemap_scan(int pagemap_fd, size_t page)
{
	void *p = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	struct page_region r;
	struct pm_scan_arg a = {
		.size = sizeof(a), .start = (uintptr_t)p,
		.end = (uintptr_t)p + page, .vec = (uintptr_t)&r, .vec_len = 1,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	bool ok;

	if (p == MAP_FAILED)
		return false;
	ok = ioctl(pagemap_fd, PAGEMAP_SCAN, &a) >= 0;
	munmap(p, page);
	return ok;
}

/* Scan mode is usable when it is asked for and the kernel offers
 * asynchronous write-protect and PAGEMAP_SCAN.  WP_ASYNC changes every
 * write-protected range of the descriptor, so it is requested only then: a
 * context in WP mode keeps its write faults.  AUTO does not pick scan mode
 * (see ctx_choose_mode). */
static bool want_scan(const struct ufo_ctx *ctx, uint64_t avail)
{
	return ctx->cfg.dirty_mode == UFO_DIRTY_SCAN &&
	       (avail & UFFD_FEATURE_WP_ASYNC) &&
	       (avail & UFFD_FEATURE_PAGEFAULT_FLAG_WP) &&
	       probe_pagemap_scan(ctx->pagemap_fd, ctx->page_size);
}

int uffd_open(struct ufo_ctx *ctx, struct uffd_info *out)
{
	uint64_t avail = 0, want = UFFD_FEATURE_THREAD_ID, got = 0;
	bool user_only;
	int fd, rc;

	/* UFFDIO_API may be called once per descriptor: probe on a throwaway
	 * one which features this kernel offers, then ask for ours. */
	fd = open_raw(ctx, &user_only);
	if (fd < 0)
		return fd;
	rc = api_handshake(fd, 0, &avail);
	close(fd);
	if (rc)
		return rc;
	if (!(avail & UFFD_FEATURE_THREAD_ID))
		log_warn(ctx, "kernel lacks UFFD_FEATURE_THREAD_ID: failed fetches cannot be signalled to the faulting thread");
	want &= avail;
	if (avail & UFFD_FEATURE_PAGEFAULT_FLAG_WP)
		want |= UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	want |= avail & UFFD_FEATURE_MOVE;
	if (want_scan(ctx, avail))
		want |= UFFD_FEATURE_WP_ASYNC;
	fd = open_raw(ctx, &user_only);
	if (fd < 0)
		return fd;
	rc = api_handshake(fd, want, &got);
	if (rc) {
		close(fd);
		return rc;
	}
	out->fd = fd;
	out->wp = (want & UFFD_FEATURE_PAGEFAULT_FLAG_WP) &&
		  probe_wp(fd, ctx->page_size);
	out->move = (got & UFFD_FEATURE_MOVE) && !getenv("UFO_NO_MOVE");
	out->scan = out->wp && (got & UFFD_FEATURE_WP_ASYNC);
	return 0;
}

int uffd_register(int fd, void *addr, size_t len, bool wp)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			(wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};

	return ioctl(fd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

int uffd_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)addr, .len = len };

	return ioctl(fd, UFFDIO_UNREGISTER, &r) ? -errno : 0;
}

int uffd_copy(int fd, void *dst, const void *src, size_t len, bool wp)
{
	size_t done = 0;

	/* EAGAIN: the address space changed under us (another thread's
	 * mmap/munmap); the kernel reports how much it copied and we continue
	 * from there. */
	while (done < len) {
		struct uffdio_copy c = {
			.dst = (uintptr_t)dst + done,
			.src = (uintptr_t)src + done,
			.len = len - done,
			.mode = wp ? UFFDIO_COPY_MODE_WP : 0,
		};
		if (!ioctl(fd, UFFDIO_COPY, &c))
			return 0;
		if (errno != EAGAIN)
			return -errno;
		if (c.copy > 0)
			done += (size_t)c.copy;
	}
	return 0;
}

int uffd_zero_page(int fd, void *page, size_t page_size, bool wp)
{
	static const char zeros[65536] __attribute__((aligned(65536)));
	void *big;
	int rc;

	if (page_size <= sizeof(zeros))
		return uffd_copy(fd, page, zeros, page_size, wp);
	/* A huge page (rare: refilling one discarded behind our back). */
	big = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (big == MAP_FAILED)
		return -errno;
	rc = uffd_copy(fd, page, big, page_size, wp);
	munmap(big, page_size);
	return rc;
}

int uffd_zero_range(int fd, void *addr, size_t len, size_t page_size)
{
	size_t done = 0;

	/* EAGAIN: the address space changed; EEXIST: a page is there (a
	 * stale fault's): the rest is still installed, page by page. */
	while (done < len) {
		struct uffdio_zeropage z = {
			.range = { .start = (uintptr_t)addr + done,
				   .len = len - done },
		};
		if (!ioctl(fd, UFFDIO_ZEROPAGE, &z))
			return 0;
		if (errno == EEXIST && z.zeropage <= 0)
			z.zeropage = (__s64)page_size;
		else if (errno != EAGAIN && errno != EEXIST)
			return -errno;
		if (z.zeropage > 0)
			done += (size_t)z.zeropage;
	}
	return 0;
}

int uffd_write_protect(int fd, void *addr, size_t len, bool protect)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	/* Removing protection also wakes threads parked on write faults. */
	return ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

int uffd_wake(int fd, void *addr, size_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)addr, .len = len };

	return ioctl(fd, UFFDIO_WAKE, &r) ? -errno : 0;
}

int page_present(int pagemap_fd, const void *addr)
{
	uint64_t entry;
	off_t off = (off_t)((uintptr_t)addr / (uintptr_t)sysconf(_SC_PAGESIZE)) * 8;

	if (pread(pagemap_fd, &entry, sizeof(entry), off) != sizeof(entry))
		return -EIO;
	return (int)(entry >> 63);
}

int uffd_move(int fd, void *dst, void *src, size_t len, bool wake,
	      size_t *moved)
{
	size_t done = 0;
	int rc = 0;

	/* EAGAIN: the address space changed under us (or a page was busy);
	 * the kernel reports how much it moved and we continue from there. */
	while (done < len) {
		struct uffdio_move m = {
			.dst = (uintptr_t)dst + done,
			.src = (uintptr_t)src + done,
			.len = len - done,
			.mode = wake ? 0 : UFFDIO_MOVE_MODE_DONTWAKE,
		};
		if (!ioctl(fd, UFFDIO_MOVE, &m)) {
			done = len;
			break;
		}
		rc = -errno;
		if (m.move > 0)
			done += (size_t)m.move;
		if (rc != -EAGAIN)
			break;
		rc = 0;
	}
	*moved = done;
	return rc;
}

/*
 * Finds the pages of [addr, addr + len) written since they were last
 * write-protected and, with protect, write-protects them again in the same
 * walk: the kernel tests and re-protects each page under its page-table
 * lock, so a write is either seen by this scan (it came before) or leaves
 * the page written for the next one (it came after); none falls between.
 * Sets bit (page - addr) / page_size in bits for each written page.
 * Returns 0 or -errno.
 */
int uffd_scan_written(int pagemap_fd, char *addr, size_t len,
		      size_t page_size, bool protect, uint64_t *bits)
{
	struct page_region r[32];
	uintptr_t start = (uintptr_t)addr, end = start + len;

	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .start = start, .end = end,
			.vec = (uintptr_t)r, .vec_len = UFO_ARRAY_SIZE(r),
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n;

		if (protect)
			a.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
		n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++)
			for (uintptr_t p = r[i].start; p < r[i].end; p += page_size)
				bits_set(bits, (p - (uintptr_t)addr) / page_size);
		/* A full vector stops the walk early: go on from there. */
		if (a.walk_end <= start)
			return -EIO;
		start = a.walk_end;
	}
	return 0;
}
