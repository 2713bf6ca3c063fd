/*
 * attach_python.c - a real program from Debian holding data: python3
 * keeps 8 MiB of random bytes in a bytearray and knows their SHA-256. We
 * attach by ptrace injection, register and zap the bytearray's whole
 * pages, serve the faults with UFFDIO_COPY from a copy we read before,
 * detach; python verifies its data (before and after detach), keeps
 * running, and its fd table and maps are as before.
 */
#include "integration/attach_common.h"

static const char script[] = "import sys, os, ctypes, hashlib\n"
			     "n = 8 << 20\n"
			     "buf = bytearray(os.urandom(n))\n"
			     "d = hashlib.sha256(buf).digest()\n"
			     "addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))\n"
			     "print('READY %x %d' % (addr, n), flush=True)\n"
			     "for line in sys.stdin:\n"
			     "    if line.startswith('check'):\n"
			     "        ok = hashlib.sha256(buf).digest() == d\n"
			     "        print('CHECK ok' if ok else 'CHECK bad 0', flush=True)\n"
			     "    elif line.startswith('exit'):\n"
			     "        sys.exit(0)\n";

int main(int argc, char **argv)
{
	const char *py = "/usr/bin/python3";
	struct tenant tn;
	struct reader rd;
	mig_tenant *t;
	uint64_t start, end;
	uint8_t *snap;
	char *maps0, *fds0, *maps1, *fds1;
	struct iovec l, rm;
	struct mig_range run;
	int r;

	need_root();
	if (access(py, X_OK) < 0)
		SKIP("%s is not installed (scripts/deps.sh test)", py);
	tenant_start(&tn, (char *[]){ (char *)py, "-c", (char *)script, NULL }, true);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "python before attach");
	start = (tn.addr + 4095) & ~4095ull;
	end = (tn.addr + tn.len) & ~4095ull;
	snap = malloc(end - start);
	l = (struct iovec){ snap, end - start };
	rm = (struct iovec){ (void *)(uintptr_t)start, end - start };
	CHECK(process_vm_readv(tn.pid, &l, 1, &rm, 1, 0) == (ssize_t)(end - start), "read: %m");
	maps0 = maps_of(tn.pid);
	fds0 = fds_of(tn.pid);

	r = mig_tenant_attach(tn.pid, NULL, &t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	printf("# python3 attach stop time: %.3f ms\n", mig_tenant_stop_ns(t, NULL) / 1e6);
	/* The bytearray's pages may sit inside a bigger VMA: register exactly them. */
	r = mig_tenant_register(t, start, end - start, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	reader_start(&rd, mig_tenant_uffd(t), start);
	rd.snap = snap;
	run = (struct mig_range){ start, end };
	r = mig_tenant_zap(t, &run, 1);
	CHECK(r == 0, "zap: %s", mig_errno_name(r));
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "python data after zap+fill");
	printf("# python3: %lu faults served for %" PRIu64 " zapped pages\n", rd.faults,
	       (end - start) / 4096);
	CHECK(rd.faults >= (end - start) / 4096, "faults %lu", rd.faults);
	reader_stop(&rd);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));
	maps1 = maps_of(tn.pid);
	fds1 = fds_of(tn.pid);
	CHECK(!strcmp(fds0, fds1), "fds differ:\n%s\n---\n%s", fds0, fds1);
	CHECK(!strcmp(maps0, maps1), "maps differ:\n%s\n---\n%s", maps0, maps1);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "python after detach");
	tenant_stop(&tn);
	free(snap);
	free(maps0);
	free(fds0);
	free(maps1);
	free(fds1);
	printf("PASS attach_python\n");
	return 0;
}
