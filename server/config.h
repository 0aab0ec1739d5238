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
/* --monitor with a bare port, or "on": loopback, this port. */
#define SERVER_DEFAULT_MONITOR "127.0.0.1:9170"
#define SERVER_MONITOR_ADDR_MAX 80
/* --auth-timeout-ms: HELLO + AUTH must be done by then, or the connection
 * is closed (a slot held by an idle peer is a slot lost). */
#define AUTH_TIMEOUT_MS 10000
#define AUTH_TIMEOUT_MIN_MS 100
#define AUTH_TIMEOUT_MAX_MS 600000
/* --rdma-map-mib: object memory one RDMA connection may keep registered
 * for MAP.  The default is the old bound (64 registrations of at most
 * WIRE_MAX_IO), now that a connection holds up to WIRE_MAX_MAPS (256). */
#define RDMA_MAP_MIB_DEFAULT 1024
#define RDMA_MAP_MIB_MAX (1u << 20)

struct server_config {
	struct net_addr listen;
	char data_dir[PATH_MAX];
	char secret_file[PATH_MAX];
	unsigned max_connections;
	unsigned workers; /* 0: one per CPU */
	int log_level;    /* enum log_level */
	char monitor[SERVER_MONITOR_ADDR_MAX]; /* "" when off */
	unsigned auth_timeout_ms; /* HELLO + AUTH must be done by then */
	unsigned rdma_map_mib;    /* MAP: registered MiB per RDMA connection */
	char tls_cert[PATH_MAX];  /* "" unless TLS (conn_tls.c) */
	char tls_key[PATH_MAX];
};

/* Fills cfg from argv (and the file named by --config).  Returns 0, 1 when
 * --help was printed, or a negative errno after printing what was wrong to
 * stderr. */
int config_load(struct server_config *cfg, int argc, char **argv);
void config_usage(const char *prog);

#endif /* UFO_SERVER_CONFIG_H */
