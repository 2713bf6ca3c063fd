/*
 * attach_nobody.c - root migrates a tenant that runs as uid 65534
 * (nobody) without loosening the host: with vm.unprivileged_userfaultfd
 * = 0 and /dev/userfaultfd 0600 the tenant's own userfaultfd(2) is
 * refused, so migd hands it an open /dev/userfaultfd (docs/engine.md,
 * "A uffd for a tenant of any user"). The tenant's writers keep writing;
 * it checks every page at the end; its fd table is the one before attach
 * plus the managed uffd while attached, and the one before after detach.
 */
#include "integration/migrate_common.h"

#define NOBODY 65534

/* "fd -> target" lines of /proc/PID/fd, sorted by fd (malloc'd). */
static char *fd_table(pid_t pid)
{
	char path[64], link[600], target[512];
	struct dirent **ents = NULL;
	size_t cap = 1 << 14, len = 0;
	char *out = calloc(1, cap);
	int n;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	n = scandir(path, &ents, NULL, versionsort);
	for (int i = 0; i < n; i++) {
		ssize_t k;

		if (ents[i]->d_name[0] != '.') {
			snprintf(link, sizeof(link), "%s/%s", path, ents[i]->d_name);
			k = readlink(link, target, sizeof(target) - 1);
			target[k > 0 ? k : 0] = 0;
			len += (size_t)snprintf(out + len, cap - len, "%s -> %s\n", ents[i]->d_name,
						target);
		}
		free(ents[i]);
	}
	free(ents);
	return out;
}

static int read_int(const char *path)
{
	FILE *f = fopen(path, "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "2", NULL, NULL, NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	char *fds0, *fds1, *fds2, *line, want[64];
	int r, fd, sysctl;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (to start a tenant as uid %d and to ptrace it)", NOBODY);
	if (access("/dev/userfaultfd", F_OK) != 0)
		SKIP("no /dev/userfaultfd on this kernel (Linux 6.1+)");
	sysctl = read_int("/proc/sys/vm/unprivileged_userfaultfd");
	if (sysctl != 0)
		printf("# vm.unprivileged_userfaultfd = %d: the tenant may make its own uffd, so "
		       "the handoff is not what is tested here\n",
		       sysctl);
	pick_target(&targets, &o);
	if (count_nodes() >= 2) {
		args[4] = "--node"; /* start on node 0, move to node 1 */
		args[5] = "0";
	}
	wt_start_as(&w, argv[0], args, NOBODY);
	usleep(100000);
	fds0 = fd_table(w.pid);

	r = mig_tenant_attach(
		w.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
		&w.t);
	if (r < 0) {
		wt_kill(&w);
		FAIL("attach of a uid-%d tenant: %s: %s", NOBODY, mig_errno_name(r),
		     mig_tenant_last_error());
	}
	fd = mig_tenant_fd_in_tenant(w.t);
	fds1 = fd_table(w.pid);
	/* fds1 without the uffd's line must be fds0. */
	snprintf(want, sizeof(want), "%d -> anon_inode:[userfaultfd]\n", fd);
	line = strstr(fds1, want);
	if (line && (line == fds1 || line[-1] == '\n'))
		memmove(line, line + strlen(want), strlen(line + strlen(want)) + 1);
	if (!line || strcmp(fds1, fds0)) {
		wt_kill(&w);
		FAIL("fd table while attached is not the one before plus the uffd (%s):\n%s---\n%s",
		     want, fds0, fds1);
	}
	printf("# uid %d tenant attached: full-mode uffd at fd %d, features 0x%" PRIx64 "\n",
	       NOBODY, fd, mig_tenant_features(w.t));

	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate: %s (%s)", strerror(-r), mig_tenant_last_error());
	}
	print_result(&res);
	check_status(&res, &targets);
	if (res.pages_moved == 0 || res.pages_failed) {
		wt_kill(&w);
		FAIL("moved %" PRIu64 ", failed %" PRIu64, res.pages_moved, res.pages_failed);
	}
	r = mig_tenant_detach(w.t);
	if (r < 0) {
		wt_kill(&w);
		FAIL("detach: %s", strerror(-r));
	}
	fds2 = fd_table(w.pid);
	if (strcmp(fds0, fds2)) {
		wt_kill(&w);
		FAIL("fd table after detach differs:\n%s---\n%s", fds0, fds2);
	}
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("the tenant found damaged pages");
	printf("# uid %d tenant migrated, every page verified, fd table as before\n", NOBODY);
	free(fds0);
	free(fds1);
	free(fds2);
	return 0;
}
