/*
 * proto.h - the control protocol shared by migd and migctl: one JSON
 * object per line over a unix stream socket (see docs/protocol.md).
 *
 *   request   {"id":1,"cmd":"migrate","pid":123,"to":"1",...}
 *   reply     {"id":1,"ok":true,...}
 *             {"id":1,"ok":false,"error":"...","errno":"ESRCH","reason":"..."}
 *   event     {"id":1,"event":"progress",...}   (before the reply of a long job)
 */
#ifndef MIGD_PROTO_H
#define MIGD_PROTO_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Longest request or reply line, newline excluded. */
#define PROTO_MAX_LINE (64 * 1024)
/* Replies can be longer (a placement of many ranges): migctl's own cap. */
#define PROTO_MAX_REPLY (16 * 1024 * 1024)

/* migctl's exit codes (documented in migctl(1)). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILED = 1,	  /* migd refused or the command failed */
	CTL_EXIT_USAGE = 2,	  /* bad command line */
	CTL_EXIT_UNREACHABLE = 3, /* cannot reach migd */
	CTL_EXIT_PARTIAL = 4,	  /* migration done, some pages failed */
	CTL_EXIT_UNRECOVERED = 5, /* status/tenants: a tenant was not recovered after a crash */
};

/* Splits a byte stream into lines, refusing lines longer than max. */
struct proto_linebuf {
	char *buf;
	size_t len, cap, max;
};

typedef int (*proto_line_fn)(void *userdata, char *line, size_t len);

void proto_linebuf_init(struct proto_linebuf *lb, size_t max);
void proto_linebuf_done(struct proto_linebuf *lb);
/*
 * Append data; call fn for each complete line (NUL-terminated, without
 * the newline; a trailing '\r' is dropped). Returns 0, -EMSGSIZE when a
 * line is longer than max (the buffer is then unusable), -ENOMEM, or the
 * first negative value fn returned.
 */
int proto_linebuf_feed(struct proto_linebuf *lb, const char *data, size_t n, proto_line_fn fn,
		       void *userdata);

/*
 * Parse one request line into a JSON object. Returns 0, -EBADMSG (not
 * JSON; *ret_err says where), -EINVAL (not an object).
 */
int proto_parse_object(const char *line, size_t len, json_object **ret, const char **ret_err);

/*
 * Build replies. id may be NULL (the request had none or was unreadable).
 * An error reply says what failed ("error"), its errno name and why
 * ("reason": a sentence a person can act on). proto_reply_error is for
 * refusals whose message is its own reason; proto_reply_error_reason
 * carries a separate reason (libmig's, for a failed job).
 */
json_object *proto_reply_ok(json_object *id);
json_object *proto_reply_error(json_object *id, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
json_object *proto_reply_error_reason(json_object *id, int err, const char *reason, const char *fmt,
				      ...) __attribute__((format(printf, 4, 5)));

/* Serialise one message as a line (malloc'd, '\n'-terminated, *ret_len set). */
char *proto_serialize(json_object *o, size_t *ret_len);

/* Field getters: return 0, -ENOENT when absent, -EINVAL on the wrong type. */
int proto_get_string(json_object *o, const char *key, const char **ret);
int proto_get_int64(json_object *o, const char *key, int64_t *ret);
int proto_get_bool(json_object *o, const char *key, int *ret);

/* errno from a name in a reply ("ESRCH" -> ESRCH), 0 when unknown. */
int proto_errno_from_name(const char *name);

#endif /* MIGD_PROTO_H */
