/* SPDX-License-Identifier: MIT */
/* Configuration: defaults, UFO_* environment overrides, validation. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine.h"

#define DEFAULT_HIGH_WATERMARK ((size_t)1 << 30)
#define DEFAULT_THREADS 2
#define DEFAULT_RETRIES 3
#define DEFAULT_RETRY_DELAY_MS 1

void ufo_config_init(struct ufo_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->retries = DEFAULT_RETRIES;
	cfg->retry_delay_ms = DEFAULT_RETRY_DELAY_MS;
	cfg->log_level = UFO_LOG_WARN;
}

int ufo_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !out || !isdigit((unsigned char)*s)) /* no sign, no space */
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	uint64_t v;

	if (ufo_parse_size(s, &v) || v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static int parse_uint(const char *s, unsigned *out)
{
	size_t v;

	if (parse_size(s, &v) || v > 1000000)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_name(const char *s, const char *const *names, unsigned n,
		      int *out)
{
	for (unsigned i = 0; i < n; i++) {
		if (names[i] && !strcasecmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const mode_names[] = { "auto", "wp", "hash", "scan" };
static const char *const policy_names[] = { "default", "2q", "fifo", "mq" };
static const char *const level_names[] = { "error", "warn", "info", "debug" };

const char *ufo_dirty_mode_name(enum ufo_dirty_mode mode)
{
	return (unsigned)mode < UFO_ARRAY_SIZE(mode_names) ? mode_names[mode]
							 : "?";
}

/* Applies one UFO_* variable if set; logs and returns -EINVAL if malformed. */
static int env_one(const struct ufo_ctx *ctx, const char *var,
		   struct ufo_config *cfg)
{
	const char *v = getenv(var);
	int rc = 0, e;

	if (!v)
		return 0;
	if (!strcmp(var, "UFO_HIGH_WATERMARK"))
		rc = parse_size(v, &cfg->high_watermark);
	else if (!strcmp(var, "UFO_LOW_WATERMARK"))
		rc = parse_size(v, &cfg->low_watermark);
	else if (!strcmp(var, "UFO_THREADS"))
		rc = parse_uint(v, &cfg->threads);
	else if (!strcmp(var, "UFO_RETRIES"))
		rc = parse_uint(v, &cfg->retries);
	else if (!strcmp(var, "UFO_RETRY_DELAY_MS"))
		rc = parse_uint(v, &cfg->retry_delay_ms);
	else if (!strcmp(var, "UFO_DIRTY_MODE") &&
		 !(rc = parse_name(v, mode_names, 4, &e)))
		cfg->dirty_mode = (enum ufo_dirty_mode)e;
	else if (!strcmp(var, "UFO_POLICY") &&
		 !(rc = parse_name(v, policy_names, 4, &e)))
		cfg->policy = (enum ufo_policy)e;
	else if (!strcmp(var, "UFO_MONITOR"))
		cfg->monitor = *v && strcasecmp(v, "off") ? v : NULL;
	else if (!strcmp(var, "UFO_LOG_LEVEL") &&
		 !(rc = parse_name(v, level_names, 4, &e)))
		cfg->log_level = (enum ufo_log_level)e;
	if (rc)
		log_err(ctx, "malformed %s=\"%s\"", var, v);
	return rc;
}

int config_apply_env(struct ufo_config *cfg, const struct ufo_ctx *ctx)
{
	static const char *const vars[] = {
		"UFO_LOG_LEVEL", "UFO_HIGH_WATERMARK", "UFO_LOW_WATERMARK",
		"UFO_THREADS", "UFO_DIRTY_MODE", "UFO_POLICY", "UFO_RETRIES",
		"UFO_RETRY_DELAY_MS", "UFO_MONITOR",
	};

	for (unsigned i = 0; i < UFO_ARRAY_SIZE(vars); i++) {
		int rc = env_one(ctx, vars[i], cfg);
		if (rc)
			return rc;
	}
	return 0;
}

/* Fills defaults and checks ranges.  Returns 0 or -EINVAL. */
int config_finish(struct ufo_config *cfg)
{
	if (!cfg->high_watermark)
		cfg->high_watermark = DEFAULT_HIGH_WATERMARK;
	if (!cfg->low_watermark)
		cfg->low_watermark = cfg->high_watermark / 4 * 3;
	if (!cfg->threads)
		cfg->threads = DEFAULT_THREADS;
	if (cfg->low_watermark > cfg->high_watermark ||
	    cfg->threads > UFO_MAX_THREADS ||
	    (unsigned)cfg->dirty_mode > UFO_DIRTY_SCAN ||
	    (unsigned)cfg->policy > UFO_POLICY_MQ ||
	    (unsigned)cfg->log_level > UFO_LOG_DEBUG || cfg->retries > 100)
		return -EINVAL;
	if (cfg->policy == UFO_POLICY_DEFAULT)
		cfg->policy = UFO_POLICY_MQ;
	return 0;
}
