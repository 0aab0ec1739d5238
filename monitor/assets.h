/* SPDX-License-Identifier: MIT */
/* The dashboard's files, embedded at build time by embed.py. */
#ifndef UFO_MONITOR_ASSETS_H
#define UFO_MONITOR_ASSETS_H

#include <stddef.h>

struct mon_asset {
	const unsigned char *data;
	size_t len;
};

extern const struct mon_asset mon_asset_index_html, mon_asset_dashboard_js,
	mon_asset_chart_js;

#endif /* UFO_MONITOR_ASSETS_H */
