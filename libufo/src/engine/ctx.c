/* SPDX-License-Identifier: MIT */
/* Contexts: configuration, userfaultfd, threads. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* Resolves cfg.dirty_mode (AUTO becomes SCAN, WP or HASH, the first the
 * kernel offers): the config then reports the mode in force.  -ENOTSUP
 * when WP or SCAN is forced but missing. */
static int ctx_choose_mode(struct ufo_ctx *ctx)
{
	enum ufo_dirty_mode *m = &ctx->cfg.dirty_mode;

	if (*m == UFO_DIRTY_SCAN && !ctx->uffd.scan) {
		log_err(ctx, "UFO_DIRTY_SCAN requested but this kernel lacks UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN (Linux 6.7)");
		return -ENOTSUP;
	}
	/* AUTO never picks scan mode: its evictions pay two scans, a hash of
	 * every page and an mremap per chunk, written or not, which made a
	 * clean 1 MiB-chunk scan 3x slower than WP mode (bench-seqscan:
	 * 0.19 against 0.61 GB/s).  It pays off for sparse writes to large
	 * chunks (bench-sparse), which the application knows it does. */
	if (*m == UFO_DIRTY_WP && !ctx->uffd.wp) {
		log_err(ctx, "UFO_DIRTY_WP requested but this kernel has no userfaultfd write-protect for anonymous memory");
		return -ENOTSUP;
	}
	if (*m == UFO_DIRTY_AUTO) {
		*m = ctx->uffd.wp ? UFO_DIRTY_WP : UFO_DIRTY_HASH;
		if (!ctx->uffd.wp)
			log_warn(ctx, "userfaultfd write-protect unavailable: dirty chunks found by hashing at eviction");
	}
	return 0;
}

static void ctx_init_locks(struct ufo_ctx *ctx)
{
	pthread_rwlock_init(&ctx->reg_lock, NULL);
	pthread_mutex_init(&ctx->thr_lock, NULL);
	pthread_cond_init(&ctx->watch_cond, NULL);
	pthread_mutex_init(&ctx->work_lock, NULL);
	pthread_mutex_init(&ctx->budget_lock, NULL);
	pthread_cond_init(&ctx->budget_cond, NULL);
	pthread_cond_init(&ctx->evict_cond, NULL);
	pthread_mutex_init(&ctx->policy_lock, NULL);
	pthread_mutex_init(&ctx->buf_lock, NULL);
	io_init(ctx);
}

static int ctx_setup(struct ufo_ctx *ctx, const struct ufo_config *cfg)
{
	int rc;

	if (cfg)
		ctx->cfg = *cfg;
	else
		ufo_config_init(&ctx->cfg);
	rc = config_apply_env(&ctx->cfg, ctx);
	if (!rc)
		rc = config_finish(&ctx->cfg);
	if (rc) {
		log_err(ctx, "invalid configuration (watermarks, threads <= %d, enums)",
			UFO_MAX_THREADS);
		return rc;
	}
	ctx->policy = ctx->cfg.policy == UFO_POLICY_FIFO ? &ufo_policy_fifo
		    : ctx->cfg.policy == UFO_POLICY_2Q ? &ufo_policy_2q
						       : &ufo_policy_mq;
	ctx->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (ctx->pagemap_fd < 0)
		return -errno;
	rc = uffd_open(ctx, &ctx->uffd);
	if (rc)
		return rc;
	rc = ctx_choose_mode(ctx);
	if (!rc)
		rc = handlers_start(ctx);
	if (!rc)
		rc = evictor_start(ctx);
	return rc;
}

static void ctx_release(struct ufo_ctx *ctx)
{
	ctx_monitor_stop(ctx);
	evictor_stop(ctx);
	handlers_stop(ctx);
	io_stop(ctx);
	load_bufs_free(ctx);
	if (ctx->uffd.fd >= 0)
		close(ctx->uffd.fd);
	if (ctx->pagemap_fd >= 0)
		close(ctx->pagemap_fd);
	free(ctx->objs);
	free(ctx->monitor_addr);
	free(ctx);
}

int ufo_ctx_create(const struct ufo_config *cfg, struct ufo_ctx **out)
{
	struct ufo_ctx *ctx;
	int rc;

	if (!out)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->uffd.fd = ctx->pagemap_fd = ctx->event_fd = -1;
	ctx->page_size = (size_t)sysconf(_SC_PAGESIZE);
	ctx->next_obj_id = 1;
	ctx->started_ns = now_ns();
	ctx_init_locks(ctx);
	rc = ctx_setup(ctx, cfg);
	if (rc) {
		ctx_release(ctx);
		return rc;
	}
	ctx_monitor_start(ctx);
	log_info(ctx, "context: budget %zu/%zu bytes, %u handlers, dirty tracking %s, policy %s",
		 ctx->cfg.high_watermark, ctx->cfg.low_watermark,
		 ctx->cfg.threads, ufo_dirty_mode_name(ctx->cfg.dirty_mode),
		 ctx->policy->name);
	*out = ctx;
	return 0;
}

int ufo_ctx_destroy(struct ufo_ctx *ctx)
{
	int err = 0;

	if (!ctx)
		return -EINVAL;
	ctx_monitor_stop(ctx); /* no render may walk objects being freed */
	/* Objects free themselves out of the registry, last first. */
	while (ctx->nobjs) {
		int rc = ufo_free(ctx->objs[ctx->nobjs - 1]);
		if (rc && !err)
			err = rc;
	}
	ctx_release(ctx);
	return err;
}

void ufo_ctx_config(const struct ufo_ctx *ctx, struct ufo_config *out)
{
	*out = ctx->cfg;
}

const struct ufo_config *ctx_cfg(const struct ufo_ctx *ctx)
{
	return &ctx->cfg;
}

enum ufo_dirty_mode ufo_ctx_dirty_mode(const struct ufo_ctx *ctx)
{
	return ctx->cfg.dirty_mode;
}
