/*
 * log.c - stderr logging with journald priority prefixes. The prefix is
 * only written when stderr really is the journal stream systemd handed us
 * (JOURNAL_STREAM holds its device:inode), so redirected output stays plain.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int migd_log_max_level = LOG_INFO;
static int use_prefix;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",	  [LOG_CRIT] = "crit",
	[LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void migd_log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	use_prefix = 0;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return;
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	use_prefix = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int migd_log_level_parse(const char *s, int *ret_level)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ret_level = i;
			return 0;
		}
	return -EINVAL;
}

const char *migd_log_level_name(int level)
{
	if (level < 0 || level > LOG_DEBUG)
		return "?";
	return level_names[level];
}

int migd_log_internal(int level, int err, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	if (err < 0)
		err = -err;
	if (level > migd_log_max_level)
		return -err;
	errno = err;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (use_prefix)
		fprintf(stderr, "<%d>%s\n", level, buf);
	else
		fprintf(stderr, "migd: %s%s\n",
			level <= LOG_WARNING ? (level <= LOG_ERR ? "error: " : "warning: ") : "",
			buf);
	return -err;
}
