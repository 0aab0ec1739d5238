/* SPDX-License-Identifier: MIT */
/* Server logging: one line per message on stderr, with a UTC timestamp and a
 * level.  Thread-safe (one fputs per line). */
#ifndef UFO_SERVER_LOG_H
#define UFO_SERVER_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* "error", "warn", "info", "debug" → level; -EINVAL otherwise. */
int log_parse_level(const char *s);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
	do {                                                                  \
		if (log_enabled(LOG_DEBUG))                                   \
			log_msg(LOG_DEBUG, __VA_ARGS__);                      \
	} while (0)

#endif /* UFO_SERVER_LOG_H */
