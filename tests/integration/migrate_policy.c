/*
 * migrate_policy.c - the tenant's own VMA memory policy decides what the
 * engine may move. tests/tenants/policy_tenant has two regions, both with
 * their pages on node 0 and a writer thread running: BOUND under
 * mbind(MPOL_BIND, node 0) and FREE without a VMA policy.
 *
 * One node (forced to node 0): the policy allows the target, so both
 * regions run every step; no page may be reported -EXDEV.
 * Two or more nodes (to node 1): UFFDIO_COPY would allocate BOUND's pages
 * on node 0 again, so the engine must leave BOUND out: exactly its present
 * pages are reported -EXDEV and stay on node 0 (asked with move_pages
 * through mig_query_pages), while FREE's pages end on node 1.
 * Either way the tenant verifies every page afterwards.
 */
#include "integration/migrate_common.h"

struct ptenant {
	pid_t pid;
	FILE *in, *out;
	uint64_t addr[2], len;
};

static const char *const rname[2] = { "bound", "free" };

static void pt_start(struct ptenant *p, const char *self, const char *size)
{
	int pin[2], pout[2];
	char prog[4096], line[256];
	void *a0, *a1;
	int pid;

	prog_path(self, "tenants/policy_tenant", prog, sizeof(prog));
	if (pipe(pin) || pipe(pout))
		FAIL("pipe: %m");
	p->pid = fork();
	if (p->pid < 0)
		FAIL("fork: %m");
	if (p->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		close(pin[1]);
		close(pout[0]);
		execl(prog, "policy_tenant", "--size", size, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	p->in = fdopen(pin[1], "w");
	p->out = fdopen(pout[0], "r");
	if (!fgets(line, sizeof(line), p->out) ||
	    sscanf(line, "READY %d %p %p %" SCNu64, &pid, &a0, &a1, &p->len) != 4)
		FAIL("policy_tenant did not start (%s)", prog);
	p->addr[0] = (uint64_t)(uintptr_t)a0;
	p->addr[1] = (uint64_t)(uintptr_t)a1;
}

static void pt_kill(struct ptenant *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
}

#define PFAIL(p, ...)              \
	do {                       \
		pt_kill(p);        \
		FAIL(__VA_ARGS__); \
	} while (0)

/* Present pages of a region and how many of them are on node. */
static void placement(struct ptenant *p, unsigned r, int node, uint64_t *present, uint64_t *on)
{
	size_t n = p->len / 4096;
	struct mig_pageinfo *pi = calloc(n, sizeof(*pi));
	int k;

	if (!pi)
		PFAIL(p, "out of memory");
	k = mig_query_pages(p->pid, p->addr[r], n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi);
	if (k < 0)
		PFAIL(p, "mig_query_pages(%s): %s", rname[r], strerror(-k));
	*present = *on = 0;
	for (size_t i = 0; i < n; i++)
		if (pi[i].flags & MIG_PAGE_PRESENT) {
			(*present)++;
			if (pi[i].node == node)
				(*on)++;
		}
	free(pi);
}

int main(int argc, char **argv)
{
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct ptenant p = { 0 };
	mig_tenant *t = NULL;
	uint64_t present[2], on0[2], xdev[2] = { 0 }, moved_to[2] = { 0 }, other[2] = { 0 };
	int nodes = count_nodes(), target = nodes >= 2 ? 1 : 0, r, st = 0;
	char line[512];
	double t0;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	pt_start(&p, argv[0], "8M");
	r = mig_tenant_attach(p.pid, NULL, &t);
	if (r == -EPERM || r == -EACCES || r == -EOPNOTSUPP) {
		pt_kill(&p);
		SKIP("cannot attach: %s", strerror(-r));
	}
	if (r < 0)
		PFAIL(&p, "attach: %s", strerror(-r));
	usleep(100000);

	for (unsigned k = 0; k < 2; k++) {
		placement(&p, k, 0, &present[k], &on0[k]);
		printf("# before: %s region %" PRIu64 " pages present, %" PRIu64 " on node 0\n",
		       rname[k], present[k], on0[k]);
		if (present[k] != p.len / 4096 || on0[k] != present[k])
			PFAIL(&p, "the %s region should be wholly present on node 0", rname[k]);
	}

	struct mig_range rg[2] = { { p.addr[0], p.addr[0] + p.len },
				   { p.addr[1], p.addr[1] + p.len } };
	t0 = now_s();
	r = mig_migrate(t, rg, 2, &targets, &o, NULL, NULL, &res);
	printf("mig_migrate: %d (%s) in %.3f s\n", r, r < 0 ? strerror(-r) : "ok", now_s() - t0);
	if (r < 0)
		PFAIL(&p, "mig_migrate: %s", strerror(-r));
	print_result(&res);
	check_status(&res, &targets);
	if (res.nstatus != 2 * p.len / 4096)
		PFAIL(&p, "status has %zu entries, want %" PRIu64, res.nstatus, 2 * p.len / 4096);
	for (size_t i = 0; i < res.nstatus; i++) {
		unsigned k = i >= p.len / 4096;
		int s = res.status[i];

		if (s == -EXDEV)
			xdev[k]++;
		else if (s == target)
			moved_to[k]++;
		else if (other[k]++ < 5)
			printf("%s page %zu: status %d\n", rname[k], i % (p.len / 4096), s);
	}
	for (unsigned k = 0; k < 2; k++)
		printf("# status %s region: %" PRIu64 " on node %d, %" PRIu64 " -EXDEV, %" PRIu64
		       " other\n",
		       rname[k], moved_to[k], target, xdev[k], other[k]);

	/* Where the pages are now, asked of the kernel. */
	uint64_t now_present[2], now_on[2], now_on0 = 0, bound_present = 0;
	placement(&p, 1, target, &now_present[1], &now_on[1]);
	placement(&p, 0, target, &now_present[0], &now_on[0]);
	if (target != 0)
		placement(&p, 0, 0, &bound_present, &now_on0);
	for (unsigned k = 0; k < 2; k++)
		printf("# after: %s region %" PRIu64 " pages present, %" PRIu64 " on node %d\n",
		       rname[k], now_present[k], now_on[k], target);
	if (target != 0)
		printf("# after: bound region %" PRIu64 " of %" PRIu64 " present pages on node 0\n",
		       now_on0, bound_present);

	if (target == 0) {
		/* MPOL_BIND to node 0 allows node 0: everything moves. */
		if (xdev[0] || xdev[1])
			PFAIL(&p, "pages reported -EXDEV although the policy allows node 0");
		if (res.pages_moved != present[0] + present[1] || other[0] || other[1])
			PFAIL(&p, "want all %" PRIu64 " present pages moved (forced), got %" PRIu64,
			      present[0] + present[1], res.pages_moved);
	} else {
		if (xdev[0] != now_present[0] || xdev[0] != present[0] || other[0] || moved_to[0])
			PFAIL(&p,
			      "bound region: want its %" PRIu64
			      " present pages -EXDEV, got %" PRIu64,
			      now_present[0], xdev[0]);
		if (now_on0 != now_present[0] || now_on[0])
			PFAIL(&p, "bound region: pages left node 0");
		if (xdev[1] || moved_to[1] != present[1] || now_on[1] != now_present[1] ||
		    now_present[1] != present[1])
			PFAIL(&p, "free region: want all %" PRIu64 " pages on node %d", present[1],
			      target);
		if (res.errnos[0].err != EXDEV || res.nerrnos != 1 ||
		    res.errnos[0].pages != xdev[0])
			PFAIL(&p, "the summary should count exactly the bound pages as EXDEV");
	}
	mig_migrate_result_free(&res);
	(void)mig_tenant_detach(t);

	fprintf(p.in, "check\n");
	fflush(p.in);
	if (!fgets(line, sizeof(line), p.out) || strncmp(line, "OK ", 3))
		PFAIL(&p, "tenant check: %s", line);
	fputs(line, stdout);
	fprintf(p.in, "stop\n");
	fflush(p.in);
	while (fgets(line, sizeof(line), p.out))
		fputs(line, stdout);
	waitpid(p.pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("the tenant found damaged pages");
	printf("PASS\n");
	return 0;
}
