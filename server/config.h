/* SPDX-License-Identifier: MIT */
/* ufo-server configuration: defaults, then the --config file, then flags. */
#ifndef UFO_SERVER_CONFIG_H
#define UFO_SERVER_CONFIG_H

#include <limits.h>

#include "transport.h"

#define SERVER_DEFAULT_HOST "127.0.0.1"
#define SERVER_DEFAULT_MAX_CONNECTIONS 1024
#define SERVER_MAX_WORKERS 256
#define CONFIG_LINE_MAX 4096

struct server_config {
	struct net_addr listen;
	char data_dir[PATH_MAX];
	char secret_file[PATH_MAX];
	unsigned max_connections;
	unsigned workers; /* 0: one per CPU */
	int log_level;    /* enum log_level */
};

/* Fills cfg from argv (and the file named by --config).  Returns 0, 1 when
 * --help was printed, or a negative errno after printing what was wrong to
 * stderr. */
int config_load(struct server_config *cfg, int argc, char **argv);
void config_usage(const char *prog);

#endif /* UFO_SERVER_CONFIG_H */
