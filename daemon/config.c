/*
 * config.c - parsing and validation of migd.ini and of the policy files.
 *
 * inih does the tokenising. Its conventions are converted here, once: its
 * handler's "nonzero means success" becomes our own list of errors, each
 * with file:line. inih does not hand the line number to the handler, so
 * the text is fed through our own reader, which counts lines and also
 * rejects malformed and over-long lines itself (inih would report only the
 * first one, and would silently cut a long line in two).
 */
#include <dirent.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

void config_errors_add(struct config_errors *e, const char *fmt, ...)
{
	char **n;
	char *m;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	n = realloc(e->msgs, (e->n + 1) * sizeof(*n));
	if (!n) {
		free(m);
		return;
	}
	e->msgs = n;
	e->msgs[e->n++] = m;
}

void config_errors_clear(struct config_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

char *config_errors_join(const struct config_errors *e)
{
	size_t len = 1;
	char *s;

	if (e->n == 0)
		return NULL;
	for (size_t i = 0; i < e->n; i++)
		len += strlen(e->msgs[i]) + 2;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < e->n; i++) {
		if (i)
			strcat(s, "; ");
		strcat(s, e->msgs[i]);
	}
	return s;
}

int config_parse_duration(const char *s, uint64_t *ret_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return -ERANGE;
		*ret_ms = v * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

const char *policy_trigger_name(enum policy_trigger t)
{
	switch (t) {
	case TRIGGER_ON_ATTACH:
		return "on-attach";
	case TRIGGER_INTERVAL:
		return "interval";
	case TRIGGER_MANUAL:
		return "manual";
	}
	return "?";
}

const char *policy_huge_name(enum policy_huge h)
{
	switch (h) {
	case HUGE_KEEP:
		return "keep";
	case HUGE_SPLIT:
		return "split";
	case HUGE_SKIP:
		return "skip";
	}
	return "?";
}

const char *policy_attach_name(enum mig_attach_method m)
{
	switch (m) {
	case MIG_ATTACH_AUTO:
		return "auto";
	case MIG_ATTACH_PTRACE:
		return "ptrace";
	case MIG_ATTACH_AGENT:
		return "agent";
	}
	return "?";
}

static const struct {
	const char *name;
	unsigned bit;
} vma_names[] = {
	{ "heap", POLICY_VMA_HEAP },
	{ "anon", POLICY_VMA_ANON },
	{ "stack", POLICY_VMA_STACK },
};

void policy_vmas_format(unsigned vmas, char *buf, size_t size)
{
	size_t off = 0;

	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(vma_names); i++) {
		if (!(vmas & vma_names[i].bit))
			continue;
		int n = snprintf(buf + off, size - off, "%s%s", off ? "," : "", vma_names[i].name);
		if (n < 0 || (size_t)n >= size - off)
			return;
		off += (size_t)n;
	}
}

static int parse_vmas(const char *s, unsigned *ret)
{
	_cleanup_free_ char *copy = strdup(s);
	unsigned vmas = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(vma_names); i++)
			if (strcmp(tok, vma_names[i].name) == 0)
				break;
		if (i == ARRAY_SIZE(vma_names))
			return -EINVAL;
		vmas |= vma_names[i].bit;
	}
	if (!vmas)
		return -EINVAL;
	*ret = vmas;
	return 0;
}

/* ---- the line-counting reader ------------------------------------------ */

struct parse_ctx {
	const char *name; /* file name for messages */
	const char *pos;  /* rest of the text */
	unsigned line;	  /* line the handler is looking at */
	struct config_errors *errs;
	size_t nerr_before;
	/* What is being filled in: */
	struct config *cfg;
	struct policy *pol;
	bool in_known_section;
	unsigned seen; /* bit per key index, for the required ones */
};

static bool line_is_wellformed(const char *l, size_t len)
{
	while (len && (*l == ' ' || *l == '\t' || *l == '\r')) {
		l++;
		len--;
	}
	while (len && (l[len - 1] == ' ' || l[len - 1] == '\t' || l[len - 1] == '\r'))
		len--;
	if (len == 0 || *l == '#' || *l == ';')
		return true;
	if (*l == '[')
		return memchr(l, ']', len) != NULL;
	return memchr(l, '=', len) != NULL;
}

/* fgets() over the in-memory text: one line per call, never cut. */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	const char *nl;
	size_t len;

	for (;;) {
		if (*c->pos == '\0')
			return NULL;
		nl = strchr(c->pos, '\n');
		len = nl ? (size_t)(nl - c->pos) : strlen(c->pos);
		c->line++;
		if (len + 2 > (size_t)num) {
			config_errors_add(c->errs, "%s:%u: line too long (max %d characters)",
					  c->name, c->line, num - 2);
			c->pos += len + (nl ? 1 : 0);
			continue;
		}
		if (!line_is_wellformed(c->pos, len)) {
			config_errors_add(c->errs, "%s:%u: expected 'key = value' or '[section]'",
					  c->name, c->line);
			c->pos += len + (nl ? 1 : 0);
			continue;
		}
		memcpy(str, c->pos, len);
		str[len] = '\n';
		str[len + 1] = '\0';
		c->pos += len + (nl ? 1 : 0);
		return str;
	}
}

#define ERR(c, ...)                                                                  \
	do {                                                                         \
		char _m[512];                                                        \
		snprintf(_m, sizeof(_m), __VA_ARGS__);                               \
		config_errors_add((c)->errs, "%s:%u: %s", (c)->name, (c)->line, _m); \
	} while (0)

static int set_string(char **dst, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* ---- migd.ini -------------------------------------------------------- */

static int main_handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *c = user;
	struct config *cfg = c->cfg;
	uint64_t v;
	int r = 0;

	if (strcmp(section, "migd") != 0) {
		ERR(c, "unknown section [%s] (expected [migd])", section);
		return 1;
	}
	if (strcmp(key, "socket") == 0) {
		if (value[0] != '/')
			ERR(c, "socket must be an absolute path, got '%s'", value);
		else
			r = set_string(&cfg->socket_path, value);
	} else if (strcmp(key, "socket_mode") == 0) {
		char *end;
		unsigned long m = strtoul(value, &end, 8);

		if (!*value || *end || m > 0777)
			ERR(c, "socket_mode must be an octal mode like 0660, got '%s'", value);
		else
			cfg->socket_mode = (unsigned)m;
	} else if (strcmp(key, "socket_group") == 0) {
		r = set_string(&cfg->socket_group, value);
	} else if (strcmp(key, "agent_socket") == 0) {
		cfg->agent_socket_set = true;
		free(cfg->agent_socket);
		cfg->agent_socket = NULL;
		if (strcmp(value, "none") == 0)
			;
		else if (value[0] != '/' || strlen(value) >= 108)
			ERR(c,
			    "agent_socket must be an absolute path (under 108 bytes) or none, got "
			    "'%s'",
			    value);
		else
			r = set_string(&cfg->agent_socket, value);
	} else if (strcmp(key, "agent_wait") == 0) {
		if (config_parse_duration(value, &v) < 0 || v < 1000)
			ERR(c, "agent_wait must be a duration >= 1s like 30s, got '%s'", value);
		else
			cfg->agent_wait_ms = v;
	} else if (strcmp(key, "hand_device") == 0) {
		if (strcmp(value, "yes") == 0)
			cfg->hand_device = true;
		else if (strcmp(value, "no") == 0)
			cfg->hand_device = false;
		else
			ERR(c, "hand_device must be yes or no, got '%s'", value);
	} else if (strcmp(key, "policy_dir") == 0) {
		r = set_string(&cfg->policy_dir, value);
	} else if (strcmp(key, "state_dir") == 0) {
		/* Crash journals live here: a relative path would follow the cwd. */
		if (value[0] != '/')
			ERR(c, "state_dir must be an absolute path, got '%s'", value);
		else
			r = set_string(&cfg->state_dir, value);
	} else if (strcmp(key, "runtime_dir") == 0) {
		if (value[0] != '/')
			ERR(c, "runtime_dir must be an absolute path, got '%s'", value);
		else
			r = set_string(&cfg->runtime_dir, value);
	} else if (strcmp(key, "cgroup_root") == 0) {
		if (strcmp(value, "auto") == 0) {
			free(cfg->cgroup_root);
			cfg->cgroup_root = NULL;
		} else {
			r = set_string(&cfg->cgroup_root, value);
		}
	} else if (strcmp(key, "scan_interval") == 0) {
		if (config_parse_duration(value, &v) < 0 || v < 100)
			ERR(c, "scan_interval must be a duration >= 100ms like 2s, got '%s'",
			    value);
		else
			cfg->scan_interval_ms = v;
	} else if (strcmp(key, "max_jobs") == 0) {
		char *end;
		unsigned long n = strtoul(value, &end, 10);

		if (!*value || *end || n < 1 || n > 64)
			ERR(c, "max_jobs must be 1..64, got '%s'", value);
		else
			cfg->max_jobs = (unsigned)n;
	} else if (strcmp(key, "max_window") == 0) {
		/* libmig refuses windows above 16 GiB; a window is a tenant's longest wait. */
		if (mig_parse_size(value, &v) < 0 || v < (2u << 20) || v % 4096 ||
		    v > (UINT64_C(1) << 34))
			ERR(c, "max_window must be a size from 2M to 16G, got '%s'", value);
		else
			cfg->max_window = v;
	} else if (strcmp(key, "window_protocol") == 0) {
		if (strcmp(value, "classic") == 0)
			cfg->movefirst = false;
		else if (strcmp(value, "movefirst") == 0)
			cfg->movefirst = true;
		else
			ERR(c, "window_protocol must be classic or movefirst, got '%s'", value);
	} else if (strcmp(key, "fault_priority") == 0) {
		if (strcmp(value, "realtime") == 0)
			cfg->fault_rt = true;
		else if (strcmp(value, "normal") == 0)
			cfg->fault_rt = false;
		else
			ERR(c, "fault_priority must be realtime or normal, got '%s'", value);
	} else if (strcmp(key, "log_level") == 0) {
		if (migd_log_level_parse(value, &cfg->log_level) < 0)
			ERR(c, "log_level must be error, warning, notice, info or debug, got '%s'",
			    value);
	} else {
		ERR(c, "unknown key '%s' in [migd]", key);
	}
	return r < 0 ? 0 : 1;
}

static struct config *config_new(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->socket_mode = 0660;
	cfg->scan_interval_ms = 2000;
	cfg->max_jobs = 2;
	cfg->fault_rt = true;
	cfg->max_window = 32u << 20;
	/* Move first where the kernel and the attach allow it (engine.c). */
	cfg->movefirst = true;
	cfg->agent_wait_ms = 30000;
	cfg->hand_device = true;
	cfg->log_level = LOG_INFO;
	if (set_string(&cfg->socket_path, "/run/migd/migd.sock") < 0 ||
	    set_string(&cfg->policy_dir, "/etc/migd/policies.d") < 0 ||
	    set_string(&cfg->state_dir, "/var/lib/migd") < 0 ||
	    set_string(&cfg->runtime_dir, "/run/migd") < 0)
		return config_free(cfg);
	return cfg;
}

static int run_parser(struct parse_ctx *c, const char *text, ini_handler h)
{
	size_t before = c->errs->n;
	int r;

	c->pos = text;
	c->line = 0;
	r = ini_parse_stream(reader, c, h, c);
	if (r == -2)
		return -ENOMEM;
	/* Our reader already rejected every malformed line inih could complain about. */
	return c->errs->n > before ? -EINVAL : 0;
}

/* agent.sock in the control socket's directory (/run/migd/agent.sock by default). */
static int default_agent_socket(struct config *cfg, struct config_errors *errs, const char *name)
{
	const char *slash = strrchr(cfg->socket_path, '/');
	int len = (int)(slash - cfg->socket_path);

	if (len + sizeof("/agent.sock") > 108) {
		config_errors_add(
			errs,
			"%s: the socket's directory is too long for agent.sock beside it; "
			"set agent_socket",
			name);
		return -EINVAL;
	}
	free(cfg->agent_socket);
	if (asprintf(&cfg->agent_socket, "%.*s/agent.sock", len, cfg->socket_path) < 0) {
		cfg->agent_socket = NULL;
		return -ENOMEM;
	}
	return 0;
}

int config_parse_string(const char *text, const char *name, struct config **ret_config,
			struct config_errors *errs)
{
	struct config *cfg = config_new();
	struct parse_ctx c = { .name = name, .errs = errs, .cfg = cfg };
	int r;

	if (!cfg)
		return -ENOMEM;
	r = run_parser(&c, text, main_handler);
	if (r == 0)
		r = set_string(&cfg->source, name);
	if (r == 0 && !cfg->agent_socket_set)
		r = default_agent_socket(cfg, errs, name);
	if (r < 0) {
		config_free(cfg);
		return r;
	}
	*ret_config = cfg;
	return 0;
}

/*
 * Read a configuration file whole. It is opened O_NONBLOCK and must be a
 * regular file (-EFTYPE-like -EINVAL otherwise, *ret_not_regular set), so
 * a FIFO or a device put where a file belongs never blocks the loop.
 */
static int read_file(const char *path, char **ret, bool *ret_not_regular)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -EBADF;
	size_t len = 0, cap = 0;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		if (ret_not_regular)
			*ret_not_regular = true;
		return -EINVAL;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *b;

			if (cap > (1u << 20))
				return -EFBIG;
			cap = cap ? cap * 2 : 8192;
			b = realloc(buf, cap);
			if (!b)
				return -ENOMEM;
			buf = b;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return -EINVAL;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* ---- policies ---------------------------------------------------------- */

enum {
	KEY_CGROUP = 1u << 0,
	KEY_NODES = 1u << 1,
	KEY_INTERVAL = 1u << 2,
};

static int policy_handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *c = user;
	struct policy *p = c->pol;
	uint64_t v;
	int r = 0;

	if (strcmp(section, "policy") != 0) {
		ERR(c, "unknown section [%s] (expected [policy])", section);
		return 1;
	}
	if (strcmp(key, "cgroup") == 0) {
		if (value[0] != '/')
			ERR(c,
			    "cgroup must start with '/' (a path below the cgroup2 root), got '%s'",
			    value);
		else
			r = set_string(&p->cgroup, value);
		c->seen |= KEY_CGROUP;
	} else if (strcmp(key, "nodes") == 0) {
		int e = mig_parse_nodes(value, &p->nodes);

		if (e < 0)
			ERR(c, "nodes must be a node list like 0-1,3, got '%s' (%s)", value,
			    strerror(-e));
		c->seen |= KEY_NODES;
	} else if (strcmp(key, "trigger") == 0) {
		if (strcmp(value, "on-attach") == 0)
			p->trigger = TRIGGER_ON_ATTACH;
		else if (strcmp(value, "interval") == 0)
			p->trigger = TRIGGER_INTERVAL;
		else if (strcmp(value, "manual") == 0)
			p->trigger = TRIGGER_MANUAL;
		else
			ERR(c, "trigger must be on-attach, interval or manual, got '%s'", value);
	} else if (strcmp(key, "interval") == 0) {
		if (config_parse_duration(value, &v) < 0 || v < 1000)
			ERR(c, "interval must be a duration >= 1s like 60s, got '%s'", value);
		else
			p->interval_ms = v;
		c->seen |= KEY_INTERVAL;
	} else if (strcmp(key, "min_region") == 0) {
		if (mig_parse_size(value, &v) < 0)
			ERR(c, "min_region must be a size like 2M, got '%s'", value);
		else
			p->min_region = v;
	} else if (strcmp(key, "window") == 0) {
		if (mig_parse_size(value, &v) < 0 || v < 4096 || v % 4096)
			ERR(c, "window must be a size >= 4K and a multiple of 4K, got '%s'", value);
		else
			p->window = v;
		p->window_line = c->line;
	} else if (strcmp(key, "rate_limit") == 0) {
		if (mig_parse_size(value, &v) < 0)
			ERR(c,
			    "rate_limit must be bytes per second like 512M (0 = unlimited), got "
			    "'%s'",
			    value);
		else
			p->rate_limit = v;
	} else if (strcmp(key, "huge_pages") == 0) {
		if (strcmp(value, "keep") == 0)
			p->huge = HUGE_KEEP;
		else if (strcmp(value, "split") == 0)
			p->huge = HUGE_SPLIT;
		else if (strcmp(value, "skip") == 0)
			p->huge = HUGE_SKIP;
		else
			ERR(c, "huge_pages must be keep, split or skip, got '%s'", value);
	} else if (strcmp(key, "compact_after") == 0) {
		if (strcmp(value, "yes") == 0)
			p->compact_after = true;
		else if (strcmp(value, "no") == 0)
			p->compact_after = false;
		else
			ERR(c, "compact_after must be yes or no, got '%s'", value);
	} else if (strcmp(key, "attach") == 0) {
		if (strcmp(value, "auto") == 0)
			p->attach = MIG_ATTACH_AUTO;
		else if (strcmp(value, "ptrace") == 0)
			p->attach = MIG_ATTACH_PTRACE;
		else if (strcmp(value, "agent") == 0)
			p->attach = MIG_ATTACH_AGENT;
		else
			ERR(c, "attach must be auto, ptrace or agent, got '%s'", value);
	} else if (strcmp(key, "vmas") == 0) {
		r = parse_vmas(value, &p->vmas);
		if (r == -EINVAL) {
			ERR(c, "vmas must be a list of heap, anon, stack, got '%s'", value);
			r = 0;
		}
	} else {
		ERR(c, "unknown key '%s' in [policy]", key);
	}
	return r < 0 ? 0 : 1;
}

void policy_done(struct policy *p)
{
	free(p->name);
	free(p->file);
	free(p->cgroup);
	memset(p, 0, sizeof(*p));
}

int policy_parse_string(const char *text, const char *name, const char *file, struct policy *ret,
			struct config_errors *errs)
{
	struct policy p = {
		.trigger = TRIGGER_ON_ATTACH,
		.interval_ms = 60000,
		.min_region = 0,
		.window = 2u << 20,
		.rate_limit = 0,
		.huge = HUGE_KEEP,
		.attach = MIG_ATTACH_AUTO,
		.vmas = POLICY_VMA_HEAP | POLICY_VMA_ANON,
	};
	struct parse_ctx c = { .name = file, .errs = errs, .pol = &p };
	size_t before = errs->n;
	int r;

	r = run_parser(&c, text, policy_handler);
	if (r == -ENOMEM)
		goto fail;
	if (!(c.seen & KEY_CGROUP))
		config_errors_add(errs, "%s: missing required key 'cgroup' in [policy]", file);
	if (!(c.seen & KEY_NODES))
		config_errors_add(errs, "%s: missing required key 'nodes' in [policy]", file);
	if ((c.seen & KEY_INTERVAL) && p.trigger != TRIGGER_INTERVAL)
		config_errors_add(errs, "%s: 'interval' is only meaningful with trigger = interval",
				  file);
	if (errs->n > before) {
		r = -EINVAL;
		goto fail;
	}
	p.name = strdup(name);
	p.file = strdup(file);
	if (!p.name || !p.file) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	policy_done(&p);
	return r;
}

int policy_parse_file(const char *path, struct policy *ret, struct config_errors *errs)
{
	_cleanup_free_ char *text = NULL, *name = NULL;
	const char *base = strrchr(path, '/');
	size_t len;
	int r;

	bool not_regular = false;

	r = read_file(path, &text, &not_regular);
	if (not_regular) {
		/* Not an error of the configuration: something else lives there. */
		log_warning("%s: not a regular file, skipped", path);
		return -EMEDIUMTYPE;
	}
	if (r < 0) {
		config_errors_add(errs, "%s: cannot read: %s", path, strerror(-r));
		return r;
	}
	base = base ? base + 1 : path;
	len = strlen(base);
	if (len > 4 && strcmp(base + len - 4, ".ini") == 0)
		len -= 4;
	name = strndup(base, len);
	if (!name)
		return -ENOMEM;
	return policy_parse_string(text, name, path, ret, errs);
}

static int ini_filter(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 4 && strcmp(d->d_name + len - 4, ".ini") == 0;
}

int config_load_policies(struct config *cfg, const char *dir, struct config_errors *errs)
{
	struct dirent **list = NULL;
	size_t before = errs->n;
	int n, r = 0;

	n = scandir(dir, &list, ini_filter, alphasort);
	if (n < 0) {
		if (errno == ENOENT)
			return 0; /* No policy directory: no policies, nothing is touched. */
		r = -errno;
		config_errors_add(errs, "%s: cannot read policy directory: %s", dir, strerror(-r));
		return r;
	}
	cfg->policies = calloc((size_t)n ? (size_t)n : 1, sizeof(struct policy));
	if (!cfg->policies)
		r = -ENOMEM;
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;

		if (r == 0 && asprintf(&path, "%s/%s", dir, list[i]->d_name) < 0)
			r = -ENOMEM;
		if (r == 0 && policy_parse_file(path, &cfg->policies[cfg->n_policies], errs) == 0) {
			const struct policy *p = &cfg->policies[cfg->n_policies];

			if (p->window > cfg->max_window)
				config_errors_add(
					errs,
					"%s:%u: window %" PRIu64 " is above max_window %" PRIu64
					" of %s",
					p->file, p->window_line, p->window, cfg->max_window,
					cfg->source ? cfg->source : "the main configuration");
			cfg->n_policies++;
		}
		free(list[i]);
	}
	free(list);
	if (r < 0)
		return r;
	return errs->n > before ? -EINVAL : 0;
}

int config_load(const char *path, struct config **ret_config, struct config_errors *errs)
{
	_cleanup_free_ char *text = NULL;
	struct config *cfg = NULL;
	int r;

	if (path) {
		bool not_regular = false;

		r = read_file(path, &text, &not_regular);
		if (r < 0) {
			config_errors_add(errs, "%s: cannot read: %s", path,
					  not_regular ? "not a regular file" : strerror(-r));
			return r;
		}
	}
	r = config_parse_string(path ? text : migd_default_config,
				path ? path : "(embedded default)", &cfg, errs);
	if (r < 0)
		return r;
	r = config_load_policies(cfg, cfg->policy_dir, errs);
	/* A policy that waits for agents which can never connect is refused. */
	for (size_t i = 0; r == 0 && i < cfg->n_policies; i++)
		if (cfg->policies[i].attach == MIG_ATTACH_AGENT && !cfg->agent_socket) {
			config_errors_add(
				errs, "%s: attach = agent cannot work: agent_socket = none in %s",
				cfg->policies[i].file, cfg->source);
			r = -EINVAL;
		}
	if (r < 0) {
		config_free(cfg);
		return r;
	}
	*ret_config = cfg;
	return 0;
}

struct config *config_free(struct config *cfg)
{
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < cfg->n_policies; i++)
		policy_done(&cfg->policies[i]);
	free(cfg->policies);
	free(cfg->source);
	free(cfg->socket_path);
	free(cfg->agent_socket);
	free(cfg->socket_group);
	free(cfg->policy_dir);
	free(cfg->state_dir);
	free(cfg->runtime_dir);
	free(cfg->cgroup_root);
	free(cfg);
	return NULL;
}

void config_dump(const struct config *cfg, FILE *f)
{
	char vmas[64], nodes[256];

	fprintf(f, "# from %s\n[migd]\n", cfg->source ? cfg->source : "?");
	fprintf(f, "socket = %s\n", cfg->socket_path);
	fprintf(f, "socket_mode = %04o\n", cfg->socket_mode);
	fprintf(f, "socket_group = %s\n", cfg->socket_group ? cfg->socket_group : "(root)");
	fprintf(f, "agent_socket = %s\n", cfg->agent_socket ? cfg->agent_socket : "none");
	fprintf(f, "agent_wait = %" PRIu64 "ms\n", cfg->agent_wait_ms);
	fprintf(f, "policy_dir = %s\n", cfg->policy_dir);
	fprintf(f, "state_dir = %s\n", cfg->state_dir);
	fprintf(f, "runtime_dir = %s\n", cfg->runtime_dir);
	fprintf(f, "cgroup_root = %s\n", cfg->cgroup_root ? cfg->cgroup_root : "auto");
	fprintf(f, "scan_interval = %" PRIu64 "ms\n", cfg->scan_interval_ms);
	fprintf(f, "max_jobs = %u\n", cfg->max_jobs);
	fprintf(f, "max_window = %" PRIu64 "\n", cfg->max_window);
	fprintf(f, "window_protocol = %s\n", cfg->movefirst ? "movefirst" : "classic");
	fprintf(f, "fault_priority = %s\n", cfg->fault_rt ? "realtime" : "normal");
	fprintf(f, "log_level = %s\n", migd_log_level_name(cfg->log_level));
	fprintf(f, "# %zu polic%s\n", cfg->n_policies, cfg->n_policies == 1 ? "y" : "ies");
	for (size_t i = 0; i < cfg->n_policies; i++) {
		const struct policy *p = &cfg->policies[i];

		mig_format_nodes(&p->nodes, nodes, sizeof(nodes));
		policy_vmas_format(p->vmas, vmas, sizeof(vmas));
		fprintf(f, "\n# policy '%s' from %s\n[policy]\n", p->name, p->file);
		fprintf(f, "cgroup = %s\n", p->cgroup);
		fprintf(f, "nodes = %s\n", nodes);
		fprintf(f, "trigger = %s\n", policy_trigger_name(p->trigger));
		if (p->trigger == TRIGGER_INTERVAL)
			fprintf(f, "interval = %" PRIu64 "ms\n", p->interval_ms);
		fprintf(f, "min_region = %" PRIu64 "\n", p->min_region);
		fprintf(f, "window = %" PRIu64 "\n", p->window);
		fprintf(f, "rate_limit = %" PRIu64 "\n", p->rate_limit);
		fprintf(f, "huge_pages = %s\n", policy_huge_name(p->huge));
		fprintf(f, "compact_after = %s\n", p->compact_after ? "yes" : "no");
		fprintf(f, "attach = %s\n", policy_attach_name(p->attach));
		fprintf(f, "vmas = %s\n", vmas);
	}
}

const struct policy *config_match_cgroup(const struct config *cfg, const char *cgroup)
{
	for (size_t i = 0; i < cfg->n_policies; i++)
		if (fnmatch(cfg->policies[i].cgroup, cgroup, FNM_PATHNAME) == 0)
			return &cfg->policies[i];
	return NULL;
}
