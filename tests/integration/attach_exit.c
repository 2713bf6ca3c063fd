/*
 * attach_exit.c - a tenant that dies while a syscall is injected into it
 * gives -ESRCH, no crash and no hang; detach then cleans up; attaching to
 * it afterwards gives -ESRCH; its exit status still reaches its parent.
 */
#include "integration/attach_common.h"

static pid_t victim;

static void *killer(void *arg)
{
	(void)arg;
	usleep(150 * 1000);
	kill(victim, SIGKILL);
	return NULL;
}

int main(int argc, char **argv)
{
	char prog[4096];
	struct tenant tn;
	pthread_t th;
	mig_tenant *t, *t2 = NULL;
	struct mig_range run;
	int r, st;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	tenant_start(&tn, (char *[]){ prog, "--mb", "2", NULL }, true);
	r = mig_tenant_attach(tn.pid, NULL, &t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	/* Nobody reads the REMOVE event: the injected madvise waits until the kill. */
	victim = tn.pid;
	pthread_create(&th, NULL, killer, NULL);
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	r = mig_tenant_zap(t, &run, 1);
	pthread_join(th, NULL);
	CHECK(r == -ESRCH, "zap of a dying tenant: %s", mig_errno_name(r));
	printf("# zap while the tenant was killed: %s (%s)\n", mig_errno_name(r),
	       mig_tenant_last_error());
	r = mig_tenant_detach(t);
	CHECK(r == -ESRCH, "detach of a dead tenant: %s", mig_errno_name(r));
	CHECK(waitpid(tn.pid, &st, 0) == tn.pid, "the parent lost the exit status: %m");
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status 0x%x", st);
	r = mig_tenant_attach(tn.pid, NULL, &t2);
	CHECK(r == -ESRCH && t2 == NULL, "attach to a dead pid: %s", mig_errno_name(r));
	printf("# attach to a reaped pid: %s: %s\n", mig_errno_name(r), mig_tenant_last_error());
	printf("PASS attach_exit\n");
	return 0;
}
