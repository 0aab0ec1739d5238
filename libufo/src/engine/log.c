/* SPDX-License-Identifier: MIT */
/* Library logging: one settable callback, stderr when none is set. */
#include <stdarg.h>
#include <stdio.h>

#include "engine.h"

static const char *const level_names[] = {
	[UFO_LOG_ERROR] = "error",
	[UFO_LOG_WARN] = "warn",
	[UFO_LOG_INFO] = "info",
	[UFO_LOG_DEBUG] = "debug",
};

void logf_ctx(const struct ufo_ctx *ctx, enum ufo_log_level lvl,
	      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (ctx && lvl > ctx->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx && ctx->cfg.log) {
		ctx->cfg.log(ctx->cfg.log_user, lvl, msg);
		return;
	}
	fprintf(stderr, "libufo %s: %s\n", level_names[lvl], msg);
}
