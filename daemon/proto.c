/*
 * proto.c - line framing and message helpers of the control protocol,
 * linked into both migd and migctl so both sides agree on limits and
 * on the shape of replies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mig.h"
#include "proto.h"

void proto_linebuf_init(struct proto_linebuf *lb, size_t max)
{
	memset(lb, 0, sizeof(*lb));
	lb->max = max;
}

void proto_linebuf_done(struct proto_linebuf *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}

int proto_linebuf_feed(struct proto_linebuf *lb, const char *data, size_t n, proto_line_fn fn,
		       void *userdata)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;

		if (lb->len + take > lb->max)
			return -EMSGSIZE;
		if (lb->len + take + 1 > lb->cap) {
			size_t cap = lb->cap ? lb->cap : 1024;
			char *b;

			while (cap < lb->len + take + 1)
				cap *= 2;
			b = realloc(lb->buf, cap);
			if (!b)
				return -ENOMEM;
			lb->buf = b;
			lb->cap = cap;
		}
		memcpy(lb->buf + lb->len, data, take);
		lb->len += take;
		data += take;
		n -= take;
		if (!nl)
			break;
		data++;
		n--;
		if (lb->len && lb->buf[lb->len - 1] == '\r')
			lb->len--;
		lb->buf[lb->len] = '\0';
		size_t len = lb->len;
		lb->len = 0;
		if (len == 0)
			continue; /* Blank lines are keep-alives, not requests. */
		int r = fn(userdata, lb->buf, len);
		if (r < 0)
			return r;
	}
	return 0;
}

int proto_parse_object(const char *line, size_t len, json_object **ret, const char **ret_err)
{
	struct json_tokener *tok = json_tokener_new_ex(32);
	json_object *o;
	enum json_tokener_error jerr;

	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success || tok->char_offset < (int)len) {
		if (ret_err)
			*ret_err = jerr == json_tokener_success
					   ? "trailing data after the JSON object"
					   : json_tokener_error_desc(jerr);
		if (jerr == json_tokener_continue && ret_err)
			*ret_err = "incomplete JSON";
		json_object_put(o);
		json_tokener_free(tok);
		return -EBADMSG;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		if (ret_err)
			*ret_err = "a request must be a JSON object";
		json_object_put(o);
		return -EINVAL;
	}
	*ret = o;
	return 0;
}

json_object *proto_reply_ok(json_object *id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", id ? json_object_get(id) : NULL);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static json_object *reply_error_v(json_object *id, int err, const char *reason, const char *fmt,
				  va_list ap)
{
	json_object *o = json_object_new_object();
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_object_object_add(o, "id", id ? json_object_get(id) : NULL);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "errno", json_object_new_string(mig_errno_name(err)));
	json_object_object_add(o, "reason",
			       json_object_new_string(reason && *reason ? reason : msg));
	return o;
}

json_object *proto_reply_error(json_object *id, int err, const char *fmt, ...)
{
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	o = reply_error_v(id, err, NULL, fmt, ap);
	va_end(ap);
	return o;
}

json_object *proto_reply_error_reason(json_object *id, int err, const char *reason, const char *fmt,
				      ...)
{
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	o = reply_error_v(id, err, reason, fmt, ap);
	va_end(ap);
	return o;
}

char *proto_serialize(json_object *o, size_t *ret_len)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *line;

	if (!s)
		return NULL;
	line = malloc(len + 2);
	if (!line)
		return NULL;
	memcpy(line, s, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	*ret_len = len + 1;
	return line;
}

int proto_get_string(json_object *o, const char *key, const char **ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	*ret = json_object_get_string(v);
	return 0;
}

int proto_get_int64(json_object *o, const char *key, int64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	*ret = json_object_get_int64(v);
	return 0;
}

int proto_get_bool(json_object *o, const char *key, int *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_boolean))
		return -EINVAL;
	*ret = json_object_get_boolean(v);
	return 0;
}

int proto_errno_from_name(const char *name)
{
	for (int e = 1; e < 134; e++)
		if (strcmp(mig_errno_name(e), name) == 0)
			return e;
	return 0;
}
