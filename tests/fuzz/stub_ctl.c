/*
 * stub_ctl.c - the control socket's client side, for the fuzz harness of
 * the line handler: replies are serialised (so that code runs) and thrown
 * away instead of being written to a socket, and there is no listener.
 * Everything between a request line and its reply is migd's own code.
 */
#include <stdlib.h>

#include "daemon.h"
#include "proto.h"

struct client {
	unsigned refs;
};

void client_send(struct client *c, json_object *o)
{
	size_t len;

	(void)c;
	free(proto_serialize(o, &len));
}

struct client *client_ref(struct client *c)
{
	c->refs++;
	return c;
}

void client_unref(struct client *c)
{
	c->refs--;
}

bool client_alive(const struct client *c)
{
	(void)c;
	return true;
}

pid_t client_pid(const struct client *c)
{
	(void)c;
	return 1;
}

int ctl_listen(struct migd *d)
{
	(void)d;
	return 0;
}

void ctl_close(struct migd *d)
{
	(void)d;
}

void ctl_close_server(struct migd *d)
{
	(void)d;
}

/* The fuzz harness's only client. */
struct client *fuzz_client(void);

struct client *fuzz_client(void)
{
	static struct client c = { .refs = 1 };

	return &c;
}
