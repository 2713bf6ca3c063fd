/*
 * numamaps.c - the memory policy of a tenant's VMAs, from
 * /proc/PID/numa_maps. UFFDIO_COPY allocates with the VMA's own policy
 * (an mbind of the tenant) before the calling worker's task policy, so a
 * VMA bound elsewhere cannot be moved to the target by us: the engine
 * leaves it out before any work and reports its pages -EXDEV.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"

/* Mode names as the kernel's mpol_to_str() prints them, longest first. */
static const struct {
	const char *name;
	enum mig__mpol mode;
} modes[] = {
	{ "weighted interleave", MIG__MPOL_INTERLEAVE },
	{ "prefer (many)", MIG__MPOL_PREFER },
	{ "interleave", MIG__MPOL_INTERLEAVE },
	{ "default", MIG__MPOL_DEFAULT },
	{ "prefer", MIG__MPOL_PREFER },
	{ "local", MIG__MPOL_LOCAL },
	{ "bind", MIG__MPOL_BIND },
};

int mig__numa_policy_parse(const char *s, struct mig__policy *ret)
{
	struct mig__policy p = { 0 };
	const char *q = NULL;
	char nodes[256];
	size_t k, len;

	if (!s || !ret)
		return -EINVAL;
	for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
		if (!strncmp(s, modes[k].name, strlen(modes[k].name)))
			break;
	if (k == sizeof(modes) / sizeof(modes[0]))
		return -EINVAL;
	p.mode = modes[k].mode;
	q = s + strlen(modes[k].name);
	/* Mode flags: "=static", "=relative" (how a node set follows cpusets). */
	if (*q == '=')
		q += strcspn(q, ": ");
	if (*q == ':') {
		q++;
		len = strcspn(q, " \n");
		if (len == 0 || len >= sizeof(nodes))
			return -EINVAL;
		memcpy(nodes, q, len);
		nodes[len] = 0;
		if (mig_parse_nodes(nodes, &p.nodes) < 0)
			return -EINVAL;
		p.has_nodes = true;
	} else if (*q && *q != ' ' && *q != '\n') {
		return -EINVAL;
	}
	/* bind, prefer and interleave always name nodes. */
	if (!p.has_nodes && p.mode != MIG__MPOL_DEFAULT && p.mode != MIG__MPOL_LOCAL)
		return -EINVAL;
	*ret = p;
	return 0;
}

bool mig__policy_allows(const struct mig__policy *p, const struct mig_nodes *targets)
{
	bool any = false, all = true;

	if (p->mode == MIG__MPOL_DEFAULT || p->mode == MIG__MPOL_LOCAL)
		return true;
	for (unsigned n = 0; n < MIG_MAX_NODES; n++)
		if (mig_nodes_test(&p->nodes, n)) {
			if (mig_nodes_test(targets, n))
				any = true;
			else
				all = false;
		}
	/* Interleaving spreads pages over every node of its set. */
	return p->mode == MIG__MPOL_INTERLEAVE ? any && all : any;
}

int mig__vma_policies(pid_t pid, struct mig__vma_policy **ret, size_t *ret_n)
{
	_cleanup_free_ struct mig__vma_policy *v = NULL;
	_cleanup_free_ char *line = NULL;
	_cleanup_free_ char **toks = NULL;
	char ref[64] = "";
	size_t n = 0, cap = 0, lcap = 0;
	char path[64];
	FILE *f;

	if (pid <= 0 || !ret || !ret_n)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/numa_maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &lcap, f) > 0) {
		struct mig__policy p;
		uint64_t start;
		int off = 0;

		if (sscanf(line, "%" SCNx64 " %n", &start, &off) != 1 || off == 0 ||
		    mig__numa_policy_parse(line + off, &p) < 0)
			continue; /* a policy we cannot read is not held against the VMA */
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			struct mig__vma_policy *nv = realloc(v, c * sizeof(*nv));
			char **nt = realloc(toks, c * sizeof(*nt));

			if (nv)
				v = nv;
			if (nt)
				toks = nt;
			if (!nv || !nt) {
				for (size_t i = 0; i < n; i++)
					free(toks[i]);
				fclose(f);
				return -ENOMEM;
			}
			cap = c;
		}
		toks[n] = strndup(line + off, strcspn(line + off, " \n"));
		/*
		 * numa_maps shows the task policy of the main thread for a VMA
		 * without a policy of its own, so "prefer:0" on every line of a
		 * tenant started under numactl says nothing about its VMAs. The
		 * main stack never has a VMA policy of its own (nor does a
		 * file mapping, in practice): its text is the task policy.
		 */
		if (!ref[0] && toks[n] && (strstr(line, " stack") || strstr(line, " file=")))
			snprintf(ref, sizeof(ref), "%s", toks[n]);
		v[n++] = (struct mig__vma_policy){ start, p };
	}
	fclose(f);
	/*
	 * A VMA showing the task policy is placed by our workers' policy, like
	 * one with none (UFFDIO_COPY allocates with the VMA's policy, else the
	 * caller's). A VMA mbind()ed to exactly the task policy is taken for
	 * unbound; the placement check after the job reports its pages.
	 */
	for (size_t i = 0; i < n; i++) {
		if (ref[0] && toks[i] && !strcmp(toks[i], ref))
			(void)mig__numa_policy_parse("default", &v[i].pol);
		free(toks[i]);
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}
