/*
 * ranges.c - merging and intersecting address ranges (ranges.h).
 * Pure functions over arrays, so the unit tests hold every edge.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ranges.h"
#include "util.h"

static int cmp_start(const void *a, const void *b)
{
	const struct mig_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

void ranges_normalize(struct mig_range *r, size_t *n)
{
	size_t out = 0;

	qsort(r, *n, sizeof(*r), cmp_start);
	for (size_t i = 0; i < *n; i++) {
		if (r[i].end <= r[i].start)
			continue;
		if (out && r[i].start <= r[out - 1].end) {
			r[out - 1].end = MAX(r[out - 1].end, r[i].end);
			continue;
		}
		r[out++] = r[i];
	}
	*n = out;
}

static int push(struct mig_range **a, size_t *n, size_t *cap, uint64_t s, uint64_t e)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct mig_range *b = realloc(*a, c * sizeof(*b));

		if (!b)
			return -ENOMEM;
		*a = b;
		*cap = c;
	}
	(*a)[(*n)++] = (struct mig_range){ s, e };
	return 0;
}

int ranges_intersect_vmas(const struct mig_range *want, size_t nwant, const struct mig_vma *v,
			  size_t nv, bool (*keep)(const struct mig_vma *v, void *userdata),
			  void *userdata, struct mig_range **ret, size_t *ret_n)
{
	struct mig_range *out = NULL;
	size_t n = 0, cap = 0, w = 0;

	for (size_t i = 0; i < nv; i++) {
		if (!keep(&v[i], userdata))
			continue;
		if (nwant == 0) {
			if (push(&out, &n, &cap, v[i].start, v[i].end) < 0)
				goto nomem;
			continue;
		}
		/* Both lists are sorted: skip the wanted ranges that end before this VMA. */
		while (w < nwant && want[w].end <= v[i].start)
			w++;
		for (size_t k = w; k < nwant && want[k].start < v[i].end; k++) {
			uint64_t s = MAX(want[k].start, v[i].start);
			uint64_t e = MIN(want[k].end, v[i].end);

			if (s < e && push(&out, &n, &cap, s, e) < 0)
				goto nomem;
		}
	}
	*ret = out;
	*ret_n = n;
	return 0;
nomem:
	free(out);
	return -ENOMEM;
}

uint64_t ranges_span(const struct mig_range *r, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += r[i].end - r[i].start;
	return s;
}
