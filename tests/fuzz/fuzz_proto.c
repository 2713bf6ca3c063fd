/*
 * fuzz_proto.c - libFuzzer target for the control protocol's line handler:
 * the input is a byte stream from a client, cut into lines by the framing
 * (proto_linebuf, with its size cap), each line parsed and dispatched to
 * the commands (command_line) of a migd that has its default
 * configuration and no loop running.
 *
 * The client's uid is one no process has (65533): every command that
 * names a pid is refused at its identity or ownership check, so the
 * fuzzer never queues a job and never touches a process of this machine,
 * while every field check before that runs. A job number can still be
 * named (cancel), and the read-only commands answer in full.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "fuzz.h"
#include "proto.h"

#define FUZZ_UID 65533

struct client *fuzz_client(void);

static struct migd *fuzz_migd(void)
{
	static struct migd d;
	static bool ready;
	struct config_errors errs = { 0 };

	if (ready)
		return &d;
	if (config_parse_string(migd_default_config, "(embedded default)", &d.cfg, &errs) < 0)
		abort();
	d.loop = uv_default_loop();
	d.start_ms = uv_now(d.loop);
	ready = true;
	return &d;
}

static int on_line(void *userdata, char *line, size_t len)
{
	command_line(fuzz_migd(), userdata, FUZZ_UID, line, len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_linebuf lb;

	/* A small cap as well as the real one: both ends of the framing get hit. */
	proto_linebuf_init(&lb, size && data[0] == '#' ? 64 : PROTO_MAX_LINE);
	(void)proto_linebuf_feed(&lb, (const char *)data, size, on_line, fuzz_client());
	proto_linebuf_done(&lb);
	return 0;
}
