/* SPDX-License-Identifier: MIT */
/*
 * ufoctl internals shared by its source files.
 *
 * Conventions: a failure is reported on stderr exactly once, where the
 * context for the message is known.  Functions that only compute or wrap a
 * system or library call return 0 or a negative errno, as in ufo.h; those
 * that report and decide the outcome (cmd_*, parse steps, ufoctl_connect,
 * transfer_*) return an exit status, EXIT_OK meaning "carry on".
 */
#ifndef UFOCTL_H
#define UFOCTL_H

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ufo.h"

/* Exit statuses. */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* the operation failed */
	EXIT_USAGE = 2,  /* bad command line; nothing was attempted */
	/* cluster commands: a server is down, or copies are missing or
	 * stray (status), or some groups could not be repaired because a
	 * server is down (repair, rebalance).  Run again once it is up. */
	EXIT_DEGRADED = 3,
};

#define UFOCTL_DEFAULT_SERVER "ufo://127.0.0.1:7070"

/* Global options and the connection, shared by every command. */
struct ufoctl {
	const char *server;      /* URL as given (--server, $UFO_SERVER) */
	char url[512];           /* server with a scheme, handed to libufo */
	const char *secret_file; /* --secret-file; NULL: $UFO_SECRET_FILE */
	unsigned timeout_ms;     /* --timeout; 0: the library's default */
	bool quiet;              /* --quiet: no progress output */
	struct ufo_client *client; /* NULL until ufoctl_connect */
	/* --servers, else $UFO_SERVERS (NULL: neither): "HOST:PORT,..." */
	const char *servers;
	struct ufo_cluster *cluster; /* NULL until ufoctl_cluster_connect */
};

/* ---- messages (util.c) */

/* "ufoctl: <what>: <strerror(-err)>" on stderr; returns EXIT_FAILED. */
int fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* fail() followed by " (server: <detail>)" when detail is not empty. */
int fail_detail(int err, const char *detail, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* fail() for a failed client request of this thread: the server's
 * explanation, when it sent one, follows as " (server: <text>)". */
int fail_remote(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "ufoctl: <what>" on stderr, then "Try 'ufoctl CMD --help'." (or
 * 'ufoctl --help' when cmd is NULL); returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "ufoctl: warning: <what>" on stderr. */
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- values (util.c) */

/* An integer with an optional binary suffix K/M/G/T, then optionally "iB"
 * or "B" ("20M", "1GiB"; not "1.5G"), as UFO_HIGH_WATERMARK takes.  0,
 * -EINVAL (syntax) or -ERANGE (2^64 or more). */
/* Human-readable binary size: "0", "512", "1.0K", "20.0M", "3.5G". */
const char *format_size(uint64_t bytes, char *buf, size_t cap);
/* Local time "YYYY-MM-DD HH:MM:SS" of a time in ns since the epoch. */
const char *format_time(uint64_t ns, char *buf, size_t cap);
/* 0 when name is a valid object name, else -EINVAL. */
int check_object_name(const char *name);
/* Monotonic clock in seconds. */
double now_seconds(void);

/* ---- connection (ufoctl.c) */

/* Connects g->client if not yet connected.  EXIT_OK, or the exit status
 * after reporting why (EXIT_USAGE: no secret file named; EXIT_FAILED:
 * unreachable server, wrong secret...). */
int ufoctl_connect(struct ufoctl *g);

/* The server list (--servers, $UFO_SERVERS) after checking the secret
 * file: EXIT_OK, or EXIT_USAGE after reporting that either is missing. */
int ufoctl_cluster_check(struct ufoctl *g);

/* Connects g->cluster to every server of the list if not yet connected.
 * EXIT_OK, or the exit status after reporting why (EXIT_USAGE: no list or
 * no secret file; EXIT_FAILED: bad list, no server reachable, wrong
 * secret...). */
int ufoctl_cluster_connect(struct ufoctl *g);

/* Stats name, reporting a failure with the server named.  0 or -errno. */
int ufoctl_stat(struct ufoctl *g, const char *name,
		struct ufo_remote_info *info);

/* ---- progress (progress.c) */

struct progress {
	const char *label; /* "put foo" */
	const char *unit;  /* NULL: bytes; else what is counted, "groups" */
	uint64_t total;    /* bytes, or counted items; may grow meanwhile */
	double start, last_print;
	bool tty, enabled, printed;
};

void progress_init(struct progress *p, const char *label, uint64_t total,
		   bool quiet);
/* The same for a count of unit ("groups") instead of bytes. */
void progress_init_count(struct progress *p, const char *label,
			 const char *unit, uint64_t total, bool quiet);
/* Redraws when due (a bar on a tty, a line every few seconds otherwise). */
void progress_update(struct progress *p, uint64_t done);
/* Ends the display: a summary line when ok, else the bar where it stopped. */
void progress_finish(struct progress *p, uint64_t done, bool ok);

/* ---- transfers (transfer.c) */

/* Bytes per request, and worker threads each with one request in flight;
 * see transfer.c. */
#define TRANSFER_PIECE ((size_t)4 << 20)
#define TRANSFER_THREADS 4

/* Copies len bytes of fd (from offset 0) into object info->id.  0 or
 * EXIT_FAILED after reporting the first error. */
int transfer_put(struct ufoctl *g, int fd, const char *path,
		 const struct ufo_remote_info *info, uint64_t len);
enum get_output {
	GET_PLAIN,  /* pwrite every byte at its offset */
	GET_SPARSE, /* fd reads as info->size zeros: skip zero blocks */
	GET_STREAM, /* fd cannot seek (a pipe): write in order */
};

/* Copies object info into fd.  0 or EXIT_FAILED after reporting the first
 * error. */
int transfer_get(struct ufoctl *g, int fd, const char *path,
		 const struct ufo_remote_info *info, enum get_output output);

/* ---- commands (commands.c, copy.c): return an exit status */

struct command {
	const char *name;
	int (*run)(struct ufoctl *g, int argc, char **argv);
	const char *args;    /* "NAME SIZE [--chunk BYTES]" */
	const char *summary; /* one line for the command list */
	const char *help;    /* more lines for `ufoctl CMD --help`, or NULL */
};

extern const struct command ufoctl_commands[];
const struct command *find_command(const char *name);
/* Prints a command's usage to stdout (help) or stderr. */
void command_usage(const struct command *cmd, bool to_stdout);
/* What parse_command_options returns when the command should run. */
#define PARSE_CONTINUE (-1)

/* Parses a command's options GNU style (options may follow operands):
 * --help, plus those in longopts/shortopts, for each of which it calls
 * opt(ctx, c, optarg), which returns PARSE_CONTINUE or an exit status.
 * Returns PARSE_CONTINUE with *first set to the index of the first operand,
 * or the exit status to end with (EXIT_OK after --help, EXIT_USAGE after a
 * reported usage error). */
int parse_command_options(const struct command *cmd, int argc, char **argv,
			  const char *shortopts, const struct option *longopts,
			  int (*opt)(void *ctx, int c, const char *arg),
			  void *ctx, int *first);

/* Operand checks (commands.c): EXIT_OK or EXIT_USAGE after reporting. */
int want_operands(const struct command *cmd, int have, int want);
int name_operand(const struct command *cmd, const char *name);
int size_operand(const struct command *cmd, const char *what,
		 const char *arg, uint64_t max, uint64_t *out);
int chunk_option(const struct command *cmd, const char *arg, uint32_t *out);

/* ufo_client_create, reporting a failure.  0 or -errno. */
int create_object(struct ufoctl *g, const char *name, uint64_t size,
		  uint32_t chunk, struct ufo_remote_info *info);

int cmd_create(struct ufoctl *g, int argc, char **argv);
int cmd_list(struct ufoctl *g, int argc, char **argv);
int cmd_stat(struct ufoctl *g, int argc, char **argv);
int cmd_delete(struct ufoctl *g, int argc, char **argv);
int cmd_sync(struct ufoctl *g, int argc, char **argv);
int cmd_put(struct ufoctl *g, int argc, char **argv);
int cmd_get(struct ufoctl *g, int argc, char **argv);
int cmd_cluster(struct ufoctl *g, int argc, char **argv);

/* create --replicas (cluster.c): what the replicated object gets; 0
 * leaves a value to the library's default (ufo_remote_opts). */
struct replication {
	unsigned replicas, write_quorum;
	uint64_t group_size;
};

/* Creates a replicated object over the servers of the list, by mapping it
 * with UFO_REMOTE_CREATE (the library's only way to place one, so it needs
 * userfaultfd).  EXIT_OK, or the exit status after reporting. */
int create_replicated(struct ufoctl *g, const char *name, uint64_t size,
		      uint32_t chunk, const struct replication *r);

#endif /* UFOCTL_H */
