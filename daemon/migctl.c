/*
 * migctl.c - the command-line client of migd's control socket.
 *
 *   migctl [--socket PATH] [--json] COMMAND [ARGS...]
 *
 * Human output by default, the reply's JSON with --json (one object, the
 * protocol's "id" and "ok" left out). Exit codes are in proto.h and
 * migctl(1): 0 ok, 1 failed, 2 usage, 3 cannot reach migd, 4 partial.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mig.h"
#include "proto.h"
#include "util.h"

#define DEFAULT_SOCKET "/run/migd/migd.sock"

static bool opt_json;
static bool opt_quiet;
static const char *opt_socket;

struct cmd {
	const char *name;
	const char *usage;
	const char *help;
	int (*build)(int argc, char **argv, json_object *req);
	void (*print)(json_object *reply);
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "migctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -EINVAL;
}

/* ---- building requests ---------------------------------------------------- */

static int parse_pid(const char *s, json_object *req)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT32_MAX)
		return usage_error("'%s' is not a process id", s);
	json_object_object_add(req, "pid", json_object_new_int((int)v));
	return 0;
}

static int add_range(json_object *req, const char *s)
{
	struct mig_range r;
	json_object *arr;

	if (mig_parse_range(s, &r) < 0)
		return usage_error("'%s' is not a range (START-END or START+LEN)", s);
	if (!json_object_object_get_ex(req, "ranges", &arr)) {
		arr = json_object_new_array();
		json_object_object_add(req, "ranges", arr);
	}
	json_object_array_add(arr, json_object_new_string(s));
	return 0;
}

static int build_none(int argc, char **argv, json_object *req)
{
	if (argc > 1)
		return usage_error("unexpected argument '%s'", argv[1]);
	return 0;
}

static int build_placement(int argc, char **argv, json_object *req)
{
	static const struct option opts[] = { { "range", required_argument, NULL, 'r' }, {} };
	int c;

	optind = 0; /* GNU getopt: 0 re-initialises, permutation included. */
	while ((c = getopt_long(argc, argv, "r:", opts, NULL)) >= 0) {
		if (c != 'r' || add_range(req, optarg) < 0)
			return -EINVAL;
	}
	if (optind != argc - 1)
		return usage_error("placement needs one PID");
	return parse_pid(argv[optind], req);
}

static int build_migrate(int argc, char **argv, json_object *req)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "range", required_argument, NULL, 'r' },
		{ "force", no_argument, NULL, 'f' },
		{ "window", required_argument, NULL, 'w' },
		{ "huge-pages", required_argument, NULL, 'H' },
		{ "rate-limit", required_argument, NULL, 'l' },
		{},
	};
	struct mig_nodes nodes;
	uint64_t w;
	bool have_to = false;
	int c;

	optind = 0; /* GNU getopt: 0 re-initialises, permutation included. */
	while ((c = getopt_long(argc, argv, "t:r:fw:H:l:", opts, NULL)) >= 0) {
		switch (c) {
		case 't':
			if (mig_parse_nodes(optarg, &nodes) < 0)
				return usage_error("--to '%s' is not a node list like 1 or 0-1,3",
						   optarg);
			json_object_object_add(req, "to", json_object_new_string(optarg));
			have_to = true;
			break;
		case 'r':
			if (add_range(req, optarg) < 0)
				return -EINVAL;
			break;
		case 'f':
			json_object_object_add(req, "force", json_object_new_boolean(1));
			break;
		case 'w':
			if (mig_parse_size(optarg, &w) < 0 || w == 0)
				return usage_error("--window '%s' is not a size like 2M", optarg);
			json_object_object_add(req, "window", json_object_new_string(optarg));
			break;
		case 'H':
			if (strcmp(optarg, "keep") && strcmp(optarg, "split") &&
			    strcmp(optarg, "skip"))
				return usage_error("--huge-pages must be keep, split or skip");
			json_object_object_add(req, "huge_pages", json_object_new_string(optarg));
			break;
		case 'l':
			if (mig_parse_size(optarg, &w) < 0)
				return usage_error("--rate-limit '%s' is not a size like 64M",
						   optarg);
			json_object_object_add(req, "rate_limit", json_object_new_string(optarg));
			break;
		default:
			return -EINVAL;
		}
	}
	if (!have_to)
		return usage_error("migrate needs --to NODES");
	if (optind != argc - 1)
		return usage_error("migrate needs one PID");
	return parse_pid(argv[optind], req);
}

/* --copy (both) and --replace (relocate only); returns the index after the options. */
static int relocate_options(int argc, char **argv, json_object *req, bool replace_ok)
{
	static const struct option opts[] = {
		{ "copy", no_argument, NULL, 'c' },
		{ "replace", no_argument, NULL, 'R' },
		{ "range", required_argument, NULL, 'r' },
		{},
	};
	int c;

	optind = 0; /* GNU getopt: 0 re-initialises, permutation included. */
	while ((c = getopt_long(argc, argv, "cRr:", opts, NULL)) >= 0) {
		if (c == 'c')
			json_object_object_add(req, "copy", json_object_new_boolean(1));
		else if (c == 'R' && replace_ok)
			json_object_object_add(req, "replace", json_object_new_boolean(1));
		else if (c == 'r' && !replace_ok) {
			if (add_range(req, optarg) < 0)
				return -EINVAL;
		} else
			return usage_error("unknown option");
	}
	return optind;
}

static int build_relocate(int argc, char **argv, json_object *req)
{
	static const char *const keys[] = { "src", "len", "dst" };
	int i = relocate_options(argc, argv, req, true);

	if (i < 0)
		return i;
	if (argc - i != 4)
		return usage_error("relocate needs PID SRC LEN DST");
	for (int k = 0; k < 3; k++) {
		uint64_t v;

		if (mig_parse_size(argv[i + 1 + k], &v) < 0 || v % 4096)
			return usage_error("%s '%s' is not a page-aligned number", keys[k],
					   argv[i + 1 + k]);
		json_object_object_add(req, keys[k], json_object_new_string(argv[i + 1 + k]));
	}
	return parse_pid(argv[i], req);
}

static int build_compact(int argc, char **argv, json_object *req)
{
	int i = relocate_options(argc, argv, req, false);

	if (i < 0)
		return i;
	if (argc - i != 1)
		return usage_error("compact needs one PID");
	return parse_pid(argv[i], req);
}

static int build_cancel(int argc, char **argv, json_object *req)
{
	char *end;
	long long v;

	if (argc != 2)
		return usage_error("cancel needs one JOB number");
	errno = 0;
	v = strtoll(argv[1], &end, 10);
	if (errno || *end || v <= 0)
		return usage_error("'%s' is not a job number", argv[1]);
	json_object_object_add(req, "job", json_object_new_int64(v));
	return 0;
}

/* ---- printing replies ---------------------------------------------------- */

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

static int64_t num(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void print_kv(json_object *reply)
{
	json_object_object_foreach (reply, key, val) {
		if (json_object_is_type(val, json_type_array) ||
		    json_object_is_type(val, json_type_object))
			continue;
		printf("%-16s %s\n", key, val ? json_object_get_string(val) : "-");
	}
}

static void print_status(json_object *reply)
{
	json_object *jobs;

	print_kv(reply);
	if (json_object_object_get_ex(reply, "jobs", &jobs) && json_object_array_length(jobs)) {
		printf("\n%-6s %-8s %-10s %-6s %s\n", "JOB", "PID", "STATE", "TO", "PROGRESS");
		for (size_t i = 0; i < json_object_array_length(jobs); i++) {
			json_object *j = json_object_array_get_idx(jobs, i);
			int64_t total = num(j, "bytes_total");

			printf("%-6s %-8s %-10s %-6s %.0f%%\n", str(j, "job"), str(j, "pid"),
			       str(j, "state"), str(j, "to"),
			       total ? 100.0 * (double)num(j, "bytes_done") / (double)total : 0.0);
		}
	}
}

static void print_tenants(json_object *reply)
{
	json_object *arr;

	if (!json_object_object_get_ex(reply, "tenants", &arr))
		return;
	printf("%-8s %-6s %-17s %-16s %s\n", "PID", "UID", "STATE", "POLICY", "CGROUP");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		printf("%-8s %-6s %-17s %-16s %s\n", str(t, "pid"), str(t, "uid"), str(t, "state"),
		       str(t, "policy"), str(t, "cgroup"));
		if (strcmp(str(t, "last_error"), "-") != 0)
			printf("         last error: %s\n", str(t, "last_error"));
	}
}

static void print_policies(json_object *reply)
{
	json_object *arr;

	if (!json_object_object_get_ex(reply, "policies", &arr))
		return;
	printf("%-16s %-6s %-10s %s\n", "POLICY", "NODES", "TRIGGER", "CGROUP");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i);

		printf("%-16s %-6s %-10s %s\n", str(p, "name"), str(p, "nodes"), str(p, "trigger"),
		       str(p, "cgroup"));
	}
}

static void print_placement(json_object *reply)
{
	json_object *nodes;
	int64_t total = num(reply, "total");

	if (json_object_object_get_ex(reply, "nodes", &nodes)) {
		json_object_object_foreach (nodes, key, val) {
			int64_t n = json_object_get_int64(val);

			printf("node %-4s %10" PRId64 " pages  %8.1f MiB  %5.1f%%\n", key, n,
			       (double)n * 4096 / (1 << 20),
			       total ? 100.0 * (double)n / (double)total : 0.0);
		}
	}
	printf("absent    %10" PRId64 " pages\n", num(reply, "absent"));
	printf("huge      %10" PRId64 " pages\n", num(reply, "huge"));
}

/* "large folios per size: 16kB 4 -> 0, 2048kB 32 -> 32" from large_before/large_after. */
static void print_folio_sizes(json_object *reply)
{
	json_object *before, *after;
	bool any = false;

	if (!json_object_object_get_ex(reply, "large_before", &before) ||
	    !json_object_object_get_ex(reply, "large_after", &after))
		return;
	json_object_object_foreach (before, key, val) {
		printf("%s %s %" PRId64 " -> %" PRId64, any ? "," : "large folios per size:", key,
		       json_object_get_int64(val), num(after, key));
		any = true;
	}
	if (any)
		printf("\n");
}

/* "large folios left where they are: 64kB 2, 2048kB 1 (528 pages)" (huge_pages = skip). */
static void print_skipped(json_object *reply)
{
	json_object *sizes;
	bool any = false;

	if (!json_object_object_get_ex(reply, "large_skipped", &sizes) ||
	    !json_object_is_type(sizes, json_type_object))
		return;
	json_object_object_foreach (sizes, key, val) {
		printf("%s %s %" PRId64, any ? "," : "large folios left where they are:", key,
		       json_object_get_int64(val));
		any = true;
	}
	if (any || num(reply, "large_skipped_pages"))
		printf("%s(%" PRId64 " pages)\n", any ? " " : "large folios left where they are: ",
		       num(reply, "large_skipped_pages"));
}

static void print_migrate(json_object *reply)
{
	json_object *f;

	printf("job %s: %" PRId64 " pages moved, %" PRId64 " skipped, %" PRId64 " failed\n",
	       str(reply, "job"), num(reply, "pages_moved"), num(reply, "pages_skipped"),
	       num(reply, "pages_failed"));
	if (json_object_object_get_ex(reply, "failures", &f)) {
		json_object_object_foreach (f, key, val) {
			printf("  %s: %s pages\n", key, json_object_get_string(val));
		}
	}
	json_object *bps;
	if (json_object_object_get_ex(reply, "bytes_per_sec", &bps))
		printf("throughput: %.1f MiB/s\n", json_object_get_double(bps) / (1 << 20));
	printf("max stall: %" PRId64 " us\n", num(reply, "max_stall_us"));
	/* "windows: 12, movefirst (10 begun move first, 1 went on classic)" */
	printf("windows: %" PRId64 ", %s", num(reply, "windows"), str(reply, "window_protocol"));
	if (strcmp(str(reply, "window_protocol"), "movefirst") == 0)
		printf(" (%" PRId64 " begun move first, %" PRId64 " went on classic)",
		       num(reply, "windows_movefirst"), num(reply, "windows_switched"));
	if (strcmp(str(reply, "window_protocol_fallback"), "-") != 0)
		printf(" (not move first: %s)", str(reply, "window_protocol_fallback"));
	if (num(reply, "windows_memcg") > 0)
		printf(", %" PRId64 " held back by the tenant's memory limit",
		       num(reply, "windows_memcg"));
	printf("\n");
	/* "fault thread: realtime", or why not ("normal (real time refused): ...") */
	if (strcmp(str(reply, "fault_priority"), "-") != 0) {
		printf("fault thread: %s", str(reply, "fault_priority"));
		if (strcmp(str(reply, "fault_priority_error"), "-") != 0)
			printf(": %s", str(reply, "fault_priority_error"));
		printf("\n");
	}
	if (strcmp(str(reply, "zap_fallback"), "-") != 0)
		printf("zap: %s (not MOVE: %s)\n", str(reply, "zap"), str(reply, "zap_fallback"));
	printf("huge pages kept: %" PRId64 "\n", num(reply, "huge_kept"));
	printf("large folios: 2M %" PRId64 " -> %" PRId64 ", smaller %" PRId64 " -> %" PRId64
	       "; whole THPs: %" PRId64 " moved, %" PRId64 " copied and collapsed (%" PRId64
	       " failed), %" PRId64 " fell back (path %s)\n",
	       num(reply, "thp_before"), num(reply, "thp_after"), num(reply, "mthp_before"),
	       num(reply, "mthp_after"), num(reply, "huge_moved"), num(reply, "huge_collapsed"),
	       num(reply, "huge_collapse_failed"), num(reply, "huge_fallback"),
	       str(reply, "huge_path"));
	print_folio_sizes(reply);
	if (num(reply, "huge_kmoved"))
		printf("THPs moved whole by the kernel (move_pages): %" PRId64 "\n",
		       num(reply, "huge_kmoved"));
	if (num(reply, "mthp_moved"))
		printf("mTHPs moved whole (move_pages): %" PRId64 "\n", num(reply, "mthp_moved"));
	print_skipped(reply);
}

/* relocate and compact: the path, the VMAs, the pages, the large folios. */
static void print_relocate(json_object *reply)
{
	json_object *runs;

	printf("job %s: path %s, VMAs %" PRId64 " -> %" PRId64, str(reply, "job"),
	       str(reply, "path"), num(reply, "vmas_before"), num(reply, "vmas_after"));
	if (num(reply, "merged") || num(reply, "left"))
		printf(" (%" PRId64 " merged, %" PRId64 " left)", num(reply, "merged"),
		       num(reply, "left"));
	printf("\npages: %" PRId64 " moved, %" PRId64 " copied, %" PRId64 " remapped, %" PRId64
	       " absent\n",
	       num(reply, "pages_moved"), num(reply, "pages_copied"), num(reply, "pages_remapped"),
	       num(reply, "pages_absent"));
	printf("THPs %" PRId64 " -> %" PRId64 ", mTHPs %" PRId64 " -> %" PRId64 "\n",
	       num(reply, "thp_before"), num(reply, "thp_after"), num(reply, "mthp_before"),
	       num(reply, "mthp_after"));
	print_folio_sizes(reply);
	printf("tenant stopped: %" PRId64 " us\n", num(reply, "stopped_us"));
	if (json_object_object_get_ex(reply, "runs", &runs))
		for (size_t i = 0; i < json_object_array_length(runs); i++) {
			json_object *e = json_object_array_get_idx(runs, i);

			printf("  %s-%s %s\n", str(e, "start"), str(e, "end"), str(e, "path"));
		}
}

static void print_ok(json_object *reply)
{
	print_kv(reply);
}

static const struct cmd cmds[] = {
	{ "status", "status", "Show migd's state and the jobs running or queued.", build_none,
	  print_status },
	{ "tenants", "tenants", "List the tenants migd knows (root: all; others: their own).",
	  build_none, print_tenants },
	{ "policies", "policies", "List the policies in effect.", build_none, print_policies },
	{ "placement", "placement PID [--range START-END]...",
	  "Show on which NUMA nodes the anonymous memory of PID is.", build_placement,
	  print_placement },
	{ "migrate",
	  "migrate PID --to NODES [--range START-END]... [--force] [--window SIZE] "
	  "[--huge-pages H] [--rate-limit SIZE]",
	  "Move the anonymous memory of PID to NODES and wait for the job's summary.\n"
	  "  --to NODES         target nodes, numactl syntax (1, 0-1,3)\n"
	  "  --range R          only this range (START-END or START+LEN); repeatable\n"
	  "  --force            also move pages already on a target node\n"
	  "  --window SIZE      bytes per migration window (default 2M, at most\n"
	  "                     migd's max_window)\n"
	  "  --huge-pages keep|split|skip  large folios: keep THPs whole (default), let\n"
	  "                     them be split, or leave them where they are\n"
	  "  --rate-limit SIZE  bytes copied per second (default unlimited)",
	  build_migrate, print_migrate },
	{ "relocate", "relocate PID SRC LEN DST [--replace] [--copy]",
	  "Move LEN bytes of PID's anonymous memory from SRC to DST like mremap, so that\n"
	  "they merge with DST's neighbours (root only; SRC is unmapped afterwards).\n"
	  "  --replace      DST may replace what is mapped there\n"
	  "  --copy         copy the pages even where UFFDIO_MOVE could move them",
	  build_relocate, print_relocate },
	{ "compact", "compact PID [--range START-END] [--copy]",
	  "Merge neighbouring anonymous VMAs of PID that failed to merge.\n"
	  "  --range R      only VMAs inside this range\n"
	  "  --copy         copy the pages even where UFFDIO_MOVE could move them",
	  build_compact, print_relocate },
	{ "cancel", "cancel JOB", "Cancel a job; it stops after its current window.", build_cancel,
	  print_ok },
	{ "reload", "reload", "Re-read the configuration (root only); a bad one is refused.",
	  build_none, print_ok },
	{ "stats", "stats", "Show migd's counters.", build_none, print_kv },
};

/* ---- talking to migd ---------------------------------------------------- */

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

struct session {
	json_object *reply;
	bool tty;
	bool bar_shown;
	time_t last_draw_ns;
};

static void draw_progress(struct session *s, json_object *ev)
{
	int64_t done = num(ev, "bytes_done"), total = num(ev, "bytes_total");
	int width = 40, fill;
	char bar[64];

	if (!s->tty || opt_quiet || opt_json || total <= 0)
		return;
	fill = (int)((double)done / (double)total * width);
	if (fill > width)
		fill = width;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(width - fill));
	bar[width] = '\0';
	/*
	 * libmig reports the bytes of finished windows as it goes; which pages
	 * moved is known only when the job verifies them at the end, so the
	 * bar shows bytes done and the summary gives the page counts.
	 */
	fprintf(stderr, "\rjob %s [%s] %5.1f%%  %.1f of %.1f MiB, %" PRId64 " windows",
		str(ev, "job"), bar, 100.0 * (double)done / (double)total, (double)done / 1048576.0,
		(double)total / 1048576.0, num(ev, "windows"));
	s->bar_shown = true;
}

static int on_reply_line(void *userdata, char *line, size_t len)
{
	struct session *s = userdata;
	json_object *o, *ev;
	const char *why;

	if (proto_parse_object(line, len, &o, &why) < 0) {
		fprintf(stderr, "migctl: unreadable reply from migd: %s\n", why);
		return -EBADMSG;
	}
	if (json_object_object_get_ex(o, "event", &ev)) {
		const char *name = json_object_get_string(ev);

		if (strcmp(name, "progress") == 0)
			draw_progress(s, o);
		else if (strcmp(name, "queued") == 0 && s->tty && !opt_json && !opt_quiet)
			fprintf(stderr, "job %s queued\n", str(o, "job"));
		json_object_put(o);
		return 0;
	}
	if (s->reply) {
		json_object_put(o);
		return 0;
	}
	s->reply = o;
	return 0; /* The reply ends the exchange: run() stops reading. */
}

static int run(const char *path, json_object *req, json_object **ret_reply)
{
	struct proto_linebuf lb;
	struct session s = { .tty = isatty(STDERR_FILENO) };
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *line = NULL;
	size_t len, off = 0;
	char buf[65536];
	int r;

	fd = connect_socket(path);
	if (fd < 0)
		return fd;
	line = proto_serialize(req, &len);
	if (!line)
		return -ENOMEM;
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	proto_linebuf_init(&lb, PROTO_MAX_REPLY);
	r = 0;
	while (r == 0 && !s.reply) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -ECONNRESET;
			break;
		}
		r = proto_linebuf_feed(&lb, buf, (size_t)n, on_reply_line, &s);
	}
	proto_linebuf_done(&lb);
	if (s.bar_shown)
		fprintf(stderr, "\n");
	if (!s.reply)
		return r < 0 ? r : -EPROTO;
	*ret_reply = s.reply;
	return 0;
}

static void print_command_help(const struct cmd *c, FILE *f)
{
	fprintf(f, "Usage: migctl [--socket PATH] [--json] %s\n\n%s\n", c->usage, c->help);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: migctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
		   "\n"
		   "Talks to migd. Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %s\n", cmds[i].usage);
	fprintf(f,
		"\n"
		"  -s, --socket PATH  migd's socket (default: $MIGD_SOCKET, else %s)\n"
		"  -j, --json         print the reply as JSON\n"
		"  -q, --quiet        no progress bar\n"
		"  -h, --help         this text; 'migctl COMMAND --help' for one command\n"
		"\n"
		"Exit status: 0 ok, 1 the command failed, 2 usage error, 3 cannot reach migd,\n"
		"4 migration finished but some pages could not be moved, 5 (status, tenants)\n"
		"migd could not recover a tenant after a crash. See migctl(1).\n",
		DEFAULT_SOCKET);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },	    { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	    {},
	};
	const struct cmd *cmd = NULL;
	json_object *req, *reply = NULL, *ok;
	int c, r, cargc;
	char **cargv;

	while ((c = getopt_long(argc, argv, "+s:jqhV", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			opt_socket = optarg;
			break;
		case 'j':
			opt_json = true;
			break;
		case 'q':
			opt_quiet = true;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("migctl %s\n", MIG_VERSION);
			return CTL_EXIT_OK;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(cmds[i].name, argv[optind]) == 0)
			cmd = &cmds[i];
	if (!cmd) {
		fprintf(stderr, "migctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	cargc = argc - optind;
	cargv = argv + optind;
	for (int i = 1; i < cargc; i++)
		if (strcmp(cargv[i], "--help") == 0 || strcmp(cargv[i], "-h") == 0) {
			print_command_help(cmd, stdout);
			return CTL_EXIT_OK;
		}
	if (!opt_socket)
		opt_socket = getenv("MIGD_SOCKET");
	if (!opt_socket || !*opt_socket)
		opt_socket = DEFAULT_SOCKET;

	req = json_object_new_object();
	json_object_object_add(req, "id", json_object_new_int(1));
	json_object_object_add(req, "cmd", json_object_new_string(cmd->name));
	if (cmd->build(cargc, cargv, req) < 0) {
		print_command_help(cmd, stderr);
		json_object_put(req);
		return CTL_EXIT_USAGE;
	}
	r = run(opt_socket, req, &reply);
	json_object_put(req);
	if (r < 0) {
		fprintf(stderr, "migctl: cannot talk to migd at %s: %s\n", opt_socket,
			strerror(-r));
		return CTL_EXIT_UNREACHABLE;
	}

	json_object_object_get_ex(reply, "ok", &ok);
	if (!ok || !json_object_get_boolean(ok)) {
		if (opt_json) {
			json_object_object_del(reply, "id");
			printf("%s\n", json_object_to_json_string_ext(
					       reply, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
		}
		fprintf(stderr, "migctl: %s: %s (%s)\n", cmd->name, str(reply, "error"),
			str(reply, "errno"));
		/* The reason is printed when it adds to the message (a job's failure). */
		if (strcmp(str(reply, "reason"), "-") != 0 &&
		    !strstr(str(reply, "error"), str(reply, "reason")))
			fprintf(stderr, "migctl: reason: %s\n", str(reply, "reason"));
		json_object_put(reply);
		return CTL_EXIT_FAILED;
	}
	json_object_object_del(reply, "id");
	json_object_object_del(reply, "ok");
	if (opt_json)
		printf("%s\n",
		       json_object_to_json_string_ext(
			       reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		cmd->print(reply);
	r = CTL_EXIT_OK;
	if (strcmp(cmd->name, "migrate") == 0 && num(reply, "pages_failed") > 0)
		r = CTL_EXIT_PARTIAL;
	/* A tenant left blocked by a crash of migd must not go unnoticed by scripts. */
	if ((strcmp(cmd->name, "status") == 0 || strcmp(cmd->name, "tenants") == 0) &&
	    num(reply, "unrecovered") > 0)
		r = CTL_EXIT_UNRECOVERED;
	json_object_put(reply);
	return r;
}
