/*
 * parse.c - parsing of the small textual forms shared by the daemon's
 * configuration, the control protocol and migctl: sizes ("2M"), address
 * ranges ("0x7f00-0x7f80", "0x7f00+2M") and node lists ("0-1,3").
 *
 * Every parser is strict: the whole string must be consumed, no sign, no
 * white space, and overflow is an error rather than a wrap.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mig.h"
#include "util.h"

/* Parse an unsigned number (decimal or 0x-hex), advance *p past it. */
static int parse_u64(const char **p, uint64_t *ret)
{
	const char *s = *p;
	unsigned base = 10;
	uint64_t v = 0;
	int digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned d;

		if (isdigit((unsigned char)*s))
			d = (unsigned)(*s - '0');
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
		digits++;
	}
	if (digits == 0)
		return -EINVAL;
	*p = s;
	*ret = v;
	return 0;
}

/* Parse an optional size suffix at *p, return the multiplier. */
static int parse_suffix(const char **p, uint64_t *ret_mult)
{
	static const struct {
		char c;
		unsigned shift;
	} units[] = { { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 } };
	const char *s = *p;
	uint64_t mult = 1;

	if (*s == '\0') {
		*ret_mult = 1;
		return 0;
	}
	if (tolower((unsigned char)*s) == 'b' && s[1] == '\0') {
		*p = s + 1;
		*ret_mult = 1;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (tolower((unsigned char)*s) != units[i].c)
			continue;
		mult = UINT64_C(1) << units[i].shift;
		s++;
		if (strcasecmp(s, "ib") == 0)
			s += 2;
		else if (tolower((unsigned char)*s) == 'b')
			s++;
		*p = s;
		*ret_mult = mult;
		return 0;
	}
	return -EINVAL;
}

/* A size at *p, possibly followed by more text (for "START+LEN,..." forms). */
static int parse_size_at(const char **p, uint64_t *ret)
{
	uint64_t v, mult;
	int r;

	r = parse_u64(p, &v);
	if (r < 0)
		return r;
	r = parse_suffix(p, &mult);
	if (r < 0)
		return r;
	if (mult > 1 && v > UINT64_MAX / mult)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

int mig_parse_size(const char *s, uint64_t *ret_size)
{
	uint64_t v;
	int r;

	if (!s || !ret_size)
		return -EINVAL;
	r = parse_size_at(&s, &v);
	if (r < 0)
		return r;
	if (*s != '\0')
		return -EINVAL;
	*ret_size = v;
	return 0;
}

int mig_parse_range(const char *s, struct mig_range *ret_range)
{
	uint64_t start, end;
	int r;

	if (!s || !ret_range)
		return -EINVAL;
	r = parse_u64(&s, &start);
	if (r < 0)
		return r;
	if (*s == '-') {
		s++;
		r = parse_u64(&s, &end);
		if (r < 0)
			return r;
	} else if (*s == '+') {
		uint64_t len;

		s++;
		r = mig_parse_size(s, &len);
		if (r < 0)
			return r;
		s += strlen(s);
		if (len > UINT64_MAX - start)
			return -ERANGE;
		end = start + len;
	} else {
		return -EINVAL;
	}
	if (*s != '\0' || end <= start)
		return -EINVAL;
	ret_range->start = start;
	ret_range->end = end;
	return 0;
}

int mig_parse_nodes(const char *s, struct mig_nodes *ret_nodes)
{
	struct mig_nodes n = { { 0 } };

	if (!s || !ret_nodes || *s == '\0')
		return -EINVAL;
	for (;;) {
		uint64_t a, b;
		int r;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		r = parse_u64(&s, &a);
		if (r < 0)
			return r;
		b = a;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				return -EINVAL;
			r = parse_u64(&s, &b);
			if (r < 0)
				return r;
			if (b < a)
				return -EINVAL;
		}
		if (b >= MIG_MAX_NODES)
			return -ERANGE;
		for (uint64_t i = a; i <= b; i++)
			mig_nodes_set(&n, (unsigned)i);
		if (*s == '\0')
			break;
		if (*s != ',')
			return -EINVAL;
		s++;
	}
	*ret_nodes = n;
	return 0;
}

int mig_format_nodes(const struct mig_nodes *nodes, char *buf, size_t size)
{
	size_t len = 0;

	if (!nodes || (!buf && size))
		return -EINVAL;
	if (size)
		buf[0] = '\0';
	for (unsigned i = 0; i < MIG_MAX_NODES; i++) {
		unsigned j = i;
		int w;

		if (!mig_nodes_test(nodes, i))
			continue;
		while (j + 1 < MIG_MAX_NODES && mig_nodes_test(nodes, j + 1))
			j++;
		if (j == i)
			w = snprintf(buf ? buf + MIN(len, size) : NULL, len < size ? size - len : 0,
				     "%s%u", len ? "," : "", i);
		else
			w = snprintf(buf ? buf + MIN(len, size) : NULL, len < size ? size - len : 0,
				     "%s%u-%u", len ? "," : "", i, j);
		len += (size_t)w;
		i = j;
	}
	return (int)len;
}

unsigned mig_nodes_count(const struct mig_nodes *nodes)
{
	unsigned c = 0;

	for (size_t i = 0; i < ARRAY_SIZE(nodes->bits); i++)
		c += (unsigned)__builtin_popcountll(nodes->bits[i]);
	return c;
}

int mig_nodes_first(const struct mig_nodes *nodes)
{
	for (size_t i = 0; i < ARRAY_SIZE(nodes->bits); i++)
		if (nodes->bits[i])
			return (int)(i * 64 + (size_t)__builtin_ctzll(nodes->bits[i]));
	return -ENOENT;
}

const char *mig_errno_name(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "E?";
}
