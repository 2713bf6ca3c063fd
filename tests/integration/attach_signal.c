/*
 * attach_signal.c - a signal sent to the tenant while an injected syscall
 * runs is delivered, not lost. The injected madvise of a zap on a range
 * registered with EVENT_REMOVE blocks until the event is read; we send
 * SIGUSR1 while it blocks, and only then start the reader. The tenant's
 * handler must have run once, the zap must succeed and the data survive.
 */
#include "integration/attach_common.h"

struct late {
	struct tenant *tn;
	struct reader *rd;
	int uffd;
};

static void *late_main(void *arg)
{
	struct late *l = arg;

	usleep(100 * 1000);
	kill(l->tn->pid, SIGUSR1);
	usleep(100 * 1000);
	reader_start(l->rd, l->uffd, l->tn->addr);
	return NULL;
}

int main(int argc, char **argv)
{
	char prog[4096];
	struct tenant tn;
	struct reader rd;
	struct late l;
	pthread_t th;
	mig_tenant *t;
	struct mig_range run;
	int r;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	tenant_start(&tn, (char *[]){ prog, "--mb", "2", NULL }, true);
	r = mig_tenant_attach(tn.pid, NULL, &t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	l = (struct late){ &tn, &rd, mig_tenant_uffd(t) };
	pthread_create(&th, NULL, late_main, &l);
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	r = mig_tenant_zap(t, &run, 1);
	CHECK(r == 0, "zap: %s", mig_errno_name(r));
	pthread_join(th, NULL);
	CHECK(reader_wait_removes(&rd, 1) >= 1, "no REMOVE event read");
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data");
	reader_stop(&rd);
	CHECK(mig_tenant_detach(t) == 0, "detach");
	CHECK(!strcmp(tenant_ask(&tn, "sigs"), "SIGS 1"), "SIGUSR1 sent during injection lost");
	printf("# signal sent during an injected syscall: delivered once\n");
	tenant_stop(&tn);
	printf("PASS attach_signal\n");
	return 0;
}
