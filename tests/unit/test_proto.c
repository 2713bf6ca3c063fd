/*
 * test_proto.c - daemon/proto.c: line framing with its size cap, request
 * parsing, reply shapes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "unit.h"

struct lines {
	char got[8][64];
	int n;
};

static int collect(void *userdata, char *line, size_t len)
{
	struct lines *l = userdata;

	ck_assert_uint_eq(strlen(line), len);
	snprintf(l->got[l->n++], sizeof(l->got[0]), "%s", line);
	return 0;
}

START_TEST(test_framing)
{
	struct proto_linebuf lb;
	struct lines l = { 0 };

	proto_linebuf_init(&lb, 16);
	ck_assert_int_eq(proto_linebuf_feed(&lb, "ab", 2, collect, &l), 0);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(proto_linebuf_feed(&lb, "c\r\n\nde\nf", 8, collect, &l), 0);
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_eq(l.got[0], "abc");
	ck_assert_str_eq(l.got[1], "de");
	ck_assert_int_eq(proto_linebuf_feed(&lb, "0123456789abcdef", 16, collect, &l), -EMSGSIZE);
	proto_linebuf_done(&lb);
}
END_TEST

START_TEST(test_parse)
{
	json_object *o = NULL;
	const char *why = NULL;
	const char *s;
	int64_t v;

	ck_assert_int_eq(proto_parse_object("{\"id\":1,\"cmd\":\"status\"}", 23, &o, &why), 0);
	ck_assert_int_eq(proto_get_string(o, "cmd", &s), 0);
	ck_assert_str_eq(s, "status");
	ck_assert_int_eq(proto_get_int64(o, "id", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(proto_get_string(o, "id", &s), -EINVAL);
	ck_assert_int_eq(proto_get_string(o, "nope", &s), -ENOENT);
	json_object_put(o);
	o = NULL;
	ck_assert_int_eq(proto_parse_object("{\"id\":", 6, &o, &why), -EBADMSG);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(proto_parse_object("{} x", 4, &o, &why), -EBADMSG);
	ck_assert_int_eq(proto_parse_object("[1,2]", 5, &o, &why), -EINVAL);
	ck_assert_int_eq(proto_parse_object("nonsense", 8, &o, &why), -EBADMSG);
}
END_TEST

START_TEST(test_replies)
{
	json_object *id = json_object_new_int(7);
	json_object *r = proto_reply_error(id, ESRCH, "no such process: %d", 42);
	size_t len;
	char *line = proto_serialize(r, &len);

	ck_assert_str_eq(line, "{\"id\":7,\"ok\":false,\"error\":\"no such process: 42\","
			       "\"errno\":\"ESRCH\",\"reason\":\"no such process: 42\"}\n");
	ck_assert_uint_eq(len, strlen(line));
	ck_assert_int_eq(proto_errno_from_name("ESRCH"), ESRCH);
	free(line);
	json_object_put(r);
	r = proto_reply_ok(NULL);
	line = proto_serialize(r, &len);
	ck_assert_str_eq(line, "{\"id\":null,\"ok\":true}\n");
	free(line);
	json_object_put(r);
	json_object_put(id);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("proto");

	tcase_add_test(tc, test_framing);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_replies);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(proto_suite)
