/*
 * log.h - migd's logging: one line per message on stderr. Under journald
 * (JOURNAL_STREAM names our stderr) each line carries the "<N>" priority
 * prefix sd-daemon(3) defines, so the journal keeps the level; on a
 * terminal the prefix is left out.
 */
#ifndef MIGD_LOG_H
#define MIGD_LOG_H

#include <syslog.h>

/* Messages above this syslog priority (numerically) are dropped. */
extern int migd_log_max_level;

void migd_log_init(void);

/* Parse "error", "warning", "notice", "info", "debug". Returns 0 or -EINVAL. */
int migd_log_level_parse(const char *s, int *ret_level);
const char *migd_log_level_name(int level);

/*
 * Log at priority level. When err is nonzero, errno is set to |err| first so
 * that "%m" prints it. Returns -|err| (or 0), so an error can be logged and
 * returned in one statement.
 */
int migd_log_internal(int level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...)		  migd_log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...)	  migd_log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...)		  migd_log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...)		  migd_log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)		  migd_log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...)	  migd_log_internal(LOG_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) migd_log_internal(LOG_WARNING, (e), __VA_ARGS__)

#endif /* MIGD_LOG_H */
