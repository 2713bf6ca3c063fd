/*
 * seccomp.c - what a tenant thread's seccomp filters say of a syscall
 * before migd injects it there (ptrace.c).
 *
 * An injected syscall runs in the tenant's thread, under the thread's own
 * seccomp filters. A filter whose answer is to kill (SECCOMP_RET_KILL_*,
 * systemd's SystemCallFilter= default, or a deny-list such as
 * `SystemCallFilter=~userfaultfd`, a common hardening against
 * userfaultfd-based exploits) would kill the tenant for a syscall it
 * never made; one that traps (SIGSYS), traces or notifies a supervisor
 * would hand our syscall to the tenant's own handling. So before each
 * injected syscall the thread's filters are run here on the syscall's
 * seccomp_data, as the kernel would run them, and only a syscall they
 * all allow (ALLOW, LOG) is injected. Any other answer is given back as
 * the syscall's result without running it: the errno of an ERRNO answer,
 * else -EPERM, which is what a filter answering EPERM gives, so every
 * caller's ordinary handling of a failed syscall applies.
 *
 * The filters are read with PTRACE_SECCOMP_GET_FILTER (the original
 * classic BPF program), which the kernel gives only to a tracer with
 * CAP_SYS_ADMIN that runs under no seccomp filter itself, while the thread
 * is in a ptrace stop, and only where it kept the program
 * (CONFIG_CHECKPOINT_RESTORE). A thread with filters that cannot be read,
 * or in strict mode, gets no syscall at all. A filter can only be added,
 * never removed, and only by the thread itself (or a sibling's TSYNC), so
 * the filters read when the session's thread stopped hold for the
 * session.
 *
 * The interpreter follows the classic BPF that seccomp accepts
 * (seccomp_check_filter, bpf_check_classic in the kernel): loads of the
 * 32-bit words of seccomp_data, immediates, the scratch memory, ALU, the
 * forward jumps, RET. An instruction it does not know, or a load outside
 * seccomp_data, makes the answer "kill": never injected.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "engine.h"
#include "procfs.h"
#include "ptrace.h"

#define SECCOMP_MAX_FILTERS 256 /* far above what systemd installs (one per directive) */
#define BPF_MEMWORDS_MAX    16

void mig__seccomp_free(struct mig__seccomp *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->prog[i]);
	free(sc->prog);
	free(sc->len);
	memset(sc, 0, sizeof(*sc));
}

void mig__seccomp_load(pid_t pid, pid_t tid, struct mig__seccomp *sc)
{
	memset(sc, 0, sizeof(*sc));
	if (mig__proc_status_int(pid, tid, "Seccomp", &sc->mode) < 0)
		sc->mode = -1;
	if (sc->mode != SECCOMP_MODE_FILTER)
		return;
	for (unsigned long k = 0; k < SECCOMP_MAX_FILTERS; k++) {
		long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)k, NULL);
		void *p, *q;

		if (n < 0 && errno == ENOENT && k > 0)
			return; /* all read */
		if (n <= 0 || n > BPF_MAXINSNS) {
			sc->err = n < 0 ? -errno : -EPROTO;
			return;
		}
		p = realloc(sc->prog, (sc->n + 1) * sizeof(*sc->prog));
		if (p)
			sc->prog = p;
		q = realloc(sc->len, (sc->n + 1) * sizeof(*sc->len));
		if (q)
			sc->len = q;
		if (!p || !q ||
		    !(sc->prog[sc->n] = calloc((size_t)n, sizeof(struct sock_filter)))) {
			sc->err = -ENOMEM;
			return;
		}
		sc->len[sc->n] = (unsigned)n;
		sc->n++;
		if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)k, sc->prog[sc->n - 1]) != n) {
			sc->err = errno ? -errno : -EPROTO;
			return;
		}
	}
	sc->err = -E2BIG;
}

/* One filter on data (struct seccomp_data, little-endian words). */
static uint32_t run_one(const struct sock_filter *f, unsigned len, const uint32_t *data)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS_MAX] = { 0 };
	const unsigned nwords = sizeof(struct seccomp_data) / 4;

	for (unsigned pc = 0; pc < len; pc++) {
		const struct sock_filter *i = &f[pc];
		uint32_t k = i->k, src = BPF_SRC(i->code) == BPF_X ? x : k;

		switch (BPF_CLASS(i->code)) {
		case BPF_LD:
		case BPF_LDX: {
			uint32_t v;

			switch (BPF_MODE(i->code)) {
			case BPF_ABS:
				if (BPF_CLASS(i->code) != BPF_LD || BPF_SIZE(i->code) != BPF_W ||
				    k % 4 || k / 4 >= nwords)
					return SECCOMP_RET_KILL_PROCESS;
				v = data[k / 4];
				break;
			case BPF_LEN:
				v = sizeof(struct seccomp_data);
				break;
			case BPF_IMM:
				v = k;
				break;
			case BPF_MEM:
				if (k >= BPF_MEMWORDS_MAX)
					return SECCOMP_RET_KILL_PROCESS;
				v = mem[k];
				break;
			default:
				return SECCOMP_RET_KILL_PROCESS;
			}
			if (BPF_CLASS(i->code) == BPF_LD)
				a = v;
			else
				x = v;
			break;
		}
		case BPF_ST:
		case BPF_STX:
			if (k >= BPF_MEMWORDS_MAX)
				return SECCOMP_RET_KILL_PROCESS;
			mem[k] = BPF_CLASS(i->code) == BPF_ST ? a : x;
			break;
		case BPF_ALU:
			switch (BPF_OP(i->code)) {
			case BPF_ADD:
				a += src;
				break;
			case BPF_SUB:
				a -= src;
				break;
			case BPF_MUL:
				a *= src;
				break;
			case BPF_DIV:
				if (src == 0)
					return 0; /* the kernel's answer: the program returns 0 */
				a /= src;
				break;
			case BPF_OR:
				a |= src;
				break;
			case BPF_AND:
				a &= src;
				break;
			case BPF_XOR:
				a ^= src;
				break;
			case BPF_LSH:
			case BPF_RSH:
				/* Refused by the kernel's checker for K; unknown for X. */
				if (src >= 32)
					return SECCOMP_RET_KILL_PROCESS;
				a = BPF_OP(i->code) == BPF_LSH ? a << src : a >> src;
				break;
			case BPF_NEG:
				a = -a;
				break;
			default:
				return SECCOMP_RET_KILL_PROCESS;
			}
			break;
		case BPF_JMP: {
			bool t;

			switch (BPF_OP(i->code)) {
			case BPF_JA:
				if (k >= len - pc - 1)
					return SECCOMP_RET_KILL_PROCESS;
				pc += k;
				continue;
			case BPF_JEQ:
				t = a == src;
				break;
			case BPF_JGT:
				t = a > src;
				break;
			case BPF_JGE:
				t = a >= src;
				break;
			case BPF_JSET:
				t = (a & src) != 0;
				break;
			default:
				return SECCOMP_RET_KILL_PROCESS;
			}
			pc += t ? i->jt : i->jf;
			break;
		}
		case BPF_RET:
			return BPF_RVAL(i->code) == BPF_A   ? a
			       : BPF_RVAL(i->code) == BPF_K ? k
							    : SECCOMP_RET_KILL_PROCESS;
		case BPF_MISC:
			if (BPF_MISCOP(i->code) == BPF_TAX)
				x = a;
			else if (BPF_MISCOP(i->code) == BPF_TXA)
				a = x;
			else
				return SECCOMP_RET_KILL_PROCESS;
			break;
		default:
			return SECCOMP_RET_KILL_PROCESS;
		}
	}
	return SECCOMP_RET_KILL_PROCESS; /* fell off the end: the kernel's checker refuses such */
}

uint32_t mig__seccomp_run(const struct mig__seccomp *sc, long nr, const uint64_t args[6],
			  uint64_t ip)
{
	struct seccomp_data d = { .nr = (int)nr,
				  .arch = AUDIT_ARCH_X86_64,
				  .instruction_pointer = ip };
	uint32_t words[sizeof(d) / 4], ret = SECCOMP_RET_ALLOW;

	for (int k = 0; k < 6; k++)
		d.args[k] = args ? args[k] : 0;
	memcpy(words, &d, sizeof(d));
	/* Every filter runs; the answer of highest precedence wins (the lowest, signed). */
	for (size_t i = 0; i < sc->n; i++) {
		uint32_t r = run_one(sc->prog[i], sc->len[i], words);

		if ((int32_t)(r & SECCOMP_RET_ACTION_FULL) <
		    (int32_t)(ret & SECCOMP_RET_ACTION_FULL))
			ret = r;
	}
	return ret;
}

static const char *action_name(uint32_t r)
{
	switch (r & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_KILL_PROCESS:
		return "kill the process";
	case SECCOMP_RET_KILL_THREAD:
		return "kill the thread";
	case SECCOMP_RET_TRAP:
		return "send SIGSYS";
	case SECCOMP_RET_ERRNO:
		return "fail it";
	case SECCOMP_RET_USER_NOTIF:
		return "notify its supervisor";
	case SECCOMP_RET_TRACE:
		return "hand it to a tracer";
	default:
		return "kill the process (an unknown answer)";
	}
}

int mig__seccomp_check(const struct mig__seccomp *sc, long nr, const uint64_t args[6], uint64_t ip,
		       char *why, size_t wlen)
{
	uint32_t r;

	if (sc->mode == SECCOMP_MODE_DISABLED)
		return 0;
	if (sc->mode != SECCOMP_MODE_FILTER) {
		/* Strict mode allows read, write, exit and sigreturn only; another mode is unknown.
		 */
		if (sc->mode == SECCOMP_MODE_STRICT)
			snprintf(why, wlen, "it runs in seccomp strict mode");
		else
			snprintf(why, wlen, "its seccomp mode (%d) is not one migd knows",
				 sc->mode);
		return -EPERM;
	}
	if (sc->err) {
		snprintf(why, wlen,
			 "it runs under seccomp filters migd cannot read (%s: the kernel shows "
			 "them to a tracer with CAP_SYS_ADMIN under no seccomp filter itself)",
			 strerror(-sc->err));
		return -EPERM;
	}
	r = mig__seccomp_run(sc, nr, args, ip);
	switch (r & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_ALLOW:
	case SECCOMP_RET_LOG:
		return 0;
	case SECCOMP_RET_ERRNO:
		snprintf(why, wlen, "its seccomp filter would fail syscall %ld with errno %u", nr,
			 r & SECCOMP_RET_DATA);
		/* What the kernel would answer (it caps the errno at MAX_ERRNO). */
		return -(int)MIN(MAX(r & SECCOMP_RET_DATA, 1U), 4095U);
	default:
		snprintf(why, wlen, "its seccomp filter would %s on syscall %ld", action_name(r),
			 nr);
		return -EPERM;
	}
}
