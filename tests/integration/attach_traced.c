/*
 * attach_traced.c - a tenant already traced (here by strace, else by a
 * ptrace parent) is refused with -EBUSY and a message naming the tracer;
 * the tenant is untouched and keeps running. Also: a pid that does not
 * exist gives -ESRCH, and a bad pid -EINVAL.
 */
#include <sys/ptrace.h>

#include "integration/attach_common.h"

/* The first child of pid, from /proc/PID/task/PID/children. */
static pid_t child_of(pid_t pid)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	for (int i = 0; i < 500; i++) {
		char *s = slurp(path);
		pid_t c = (pid_t)atoi(s);

		free(s);
		if (c > 0)
			return c;
		usleep(10 * 1000);
	}
	FAIL("no child of %d", pid);
}

static void no_such_pid(void)
{
	mig_tenant *t = NULL;
	pid_t gone = fork();
	int r;

	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	r = mig_tenant_attach(gone, NULL, &t);
	CHECK(r == -ESRCH && !t, "attach to a reaped pid: %s", mig_errno_name(r));
	printf("# no such pid: %s: %s\n", mig_errno_name(r), mig_tenant_last_error());
	CHECK(mig_tenant_attach(0, NULL, &t) == -EINVAL, "pid 0");
	CHECK(mig_tenant_attach(-5, NULL, &t) == -EINVAL, "pid -5");
}

int main(int argc, char **argv)
{
	char prog[4096];
	struct tenant tn;
	mig_tenant *t = NULL;
	pid_t pid;
	int r;
	bool have_strace = access("/usr/bin/strace", X_OK) == 0;

	need_root();
	no_such_pid();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	if (have_strace)
		tenant_start(&tn,
			     (char *[]){ "/usr/bin/strace", "-f", "-o", "/dev/null", prog, "--mb",
					 "1", NULL },
			     true);
	else
		SKIP("strace is not installed (scripts/deps.sh test)");
	pid = child_of(tn.pid);
	r = mig_tenant_attach(pid, NULL, &t);
	CHECK(r == -EBUSY && !t, "attach to a traced tenant: %s", mig_errno_name(r));
	CHECK(strstr(mig_tenant_last_error(), "already traced"), "message: %s",
	      mig_tenant_last_error());
	printf("# traced tenant: %s: %s\n", mig_errno_name(r), mig_tenant_last_error());
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant after refusal");
	tenant_stop(&tn);
	printf("PASS attach_traced\n");
	return 0;
}
