/*
 * attach_blocked.c - a tenant whose main thread sits in a blocking syscall
 * (nanosleep, read, futex wait, epoll_wait) while we attach, zap through
 * injection and detach must get that syscall's right result: the sleep
 * lasts its full time, the futex wait ends by the wake, read and
 * epoll_wait return the data sent after detach. The tenant judges itself
 * ("BLOCK ok ...") and its data must survive.
 */
#include <sys/syscall.h>

#include "integration/attach_common.h"

/* Wait until the tenant's main thread is inside one of the syscalls. */
static void wait_in_syscall(pid_t pid, const long *nrs, size_t n)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	for (int i = 0; i < 500; i++) {
		char *s = slurp(path);
		long nr = strtol(s, NULL, 10);

		free(s);
		for (size_t k = 0; k < n; k++)
			if (nr == nrs[k])
				return;
		usleep(2000);
	}
	FAIL("tenant %d never entered the syscall", pid);
}

static void one(const char *prog, const char *how, const long *nrs, size_t n)
{
	struct tenant tn;
	struct reader rd;
	mig_tenant *t;
	struct mig_range run;
	const char *ln;
	int r;

	tenant_start(&tn, (char *[]){ (char *)prog, "--mb", "2", "--block", (char *)how, NULL },
		     true);
	wait_in_syscall(tn.pid, nrs, n);
	r = mig_tenant_attach(tn.pid, NULL, &t);
	CHECK(r == 0, "%s: attach: %s (%s)", how, mig_errno_name(r), mig_tenant_last_error());
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	reader_start(&rd, mig_tenant_uffd(t), tn.addr);
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	r = mig_tenant_zap(t, &run, 1);
	CHECK(r == 0, "%s: zap: %s", how, mig_errno_name(r));
	/* Still inside its syscall: nothing has woken it. */
	if (strcmp(how, "read") && strcmp(how, "epoll"))
		ln = tenant_line(&tn); /* sleep/futex end by themselves */
	else
		ln = NULL;
	if (ln)
		CHECK(!strncmp(ln, "BLOCK ok", 8), "%s: %s", how, ln);
	if (!strcmp(how, "epoll")) {
		/* Wake it with input: epoll_wait must report it, then read it. */
		fprintf(tn.in, "check\n");
		fflush(tn.in);
		ln = tenant_line(&tn);
		CHECK(!strncmp(ln, "BLOCK ok", 8), "epoll: %s", ln);
		ln = tenant_line(&tn);
		CHECK(!strcmp(ln, "CHECK ok"), "epoll: data: %s", ln);
	} else {
		CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "%s: data", how);
	}
	reader_stop(&rd);
	CHECK(mig_tenant_detach(t) == 0, "detach");
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "%s: after detach", how);
	tenant_stop(&tn);
	printf("# blocked in %s: resumed correctly, %lu faults served\n", how, rd.faults);
}

int main(int argc, char **argv)
{
	char prog[4096];
	static const long sleep_nr[] = { SYS_nanosleep, SYS_clock_nanosleep };
	static const long read_nr[] = { SYS_read };
	static const long futex_nr[] = { SYS_futex };
	static const long epoll_nr[] = { SYS_epoll_wait, SYS_epoll_pwait };

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	one(prog, "sleep", sleep_nr, 2);
	one(prog, "read", read_nr, 1);
	one(prog, "futex", futex_nr, 1);
	one(prog, "epoll", epoll_nr, 2);
	printf("PASS attach_blocked\n");
	return 0;
}
