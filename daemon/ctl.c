/*
 * ctl.c - the control socket: a unix stream socket speaking one JSON
 * object per line. Each connection carries the peer's credentials
 * (SO_PEERCRED), taken once at accept; commands.c decides what they allow.
 *
 * Limits that keep one client from hurting migd: a request line longer
 * than PROTO_MAX_LINE gets an error reply and the connection is closed; a
 * client that stops reading has its progress events dropped once its
 * write queue passes CLIENT_MAX_QUEUED, and is dropped itself (with a log
 * line) when a reply would pass it, so what migd holds for one client is
 * bounded and goes back to the system when it is dropped; a client that
 * goes away only loses its events, the migrations it started carry on
 * (its placement reads, whose answer only it wanted, are cancelled).
 */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "jobs.h"
#include "log.h"
#include "proto.h"
#include "util.h"

/* Unread replies and events migd keeps for one client. */
#define CLIENT_MAX_QUEUED (1u << 20)

struct client {
	struct client *next;
	struct migd *d;
	uv_pipe_t pipe;
	struct ucred cred;
	struct proto_linebuf lb;
	unsigned refs;
	bool closing;
	bool discard; /* after an oversized line: drop input until the peer closes */
	bool dropped; /* closed for not reading its replies */
};

struct write_req {
	uv_write_t req;
	char *buf;
};

struct client *client_ref(struct client *c)
{
	c->refs++;
	return c;
}

void client_unref(struct client *c)
{
	if (--c->refs == 0) {
		proto_linebuf_done(&c->lb);
		free(c);
	}
}

bool client_alive(const struct client *c)
{
	return !c->closing;
}

pid_t client_pid(const struct client *c)
{
	return c->cred.pid;
}

static void on_client_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	bool dropped = c->dropped;

	client_unref(c);
	if (dropped)
		/* Its queue was up to CLIENT_MAX_QUEUED of small blocks: give them back. */
		malloc_trim(0);
}

static void client_close(struct client *c)
{
	struct migd *d = c->d;

	if (c->closing || uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	c->closing = true;
	for (struct client **p = &d->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	jobs_client_gone(d, c);
	uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;

	(void)status;
	free(w->buf);
	free(w);
}

static void client_write(struct client *c, json_object *o, bool droppable)
{
	struct write_req *w;
	uv_buf_t b;
	size_t len, queued;

	if (c->closing)
		return;
	queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
	if (queued > CLIENT_MAX_QUEUED) {
		if (droppable)
			return;
		log_warning("client pid %d uid %u: %zu bytes of replies unread, dropping it",
			    (int)c->cred.pid, (unsigned)c->cred.uid, queued);
		c->dropped = true;
		c->d->stats.clients_dropped++;
		client_close(c);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->buf = proto_serialize(o, &len);
	if (!w->buf) {
		free(w);
		return;
	}
	b = uv_buf_init(w->buf, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(w->buf);
		free(w);
		client_close(c);
	}
}

void client_send(struct client *c, json_object *o)
{
	json_object *ev;

	/* Events may be dropped for a slow reader; replies never are. */
	client_write(c, o, json_object_object_get_ex(o, "event", &ev));
}

static void on_shutdown_then_close(uv_shutdown_t *req, int status)
{
	struct client *c = req->data;

	(void)status;
	free(req);
	client_close(c);
}

/*
 * After the reply to an oversized line our side is shut down for writing,
 * but the client is not closed yet: closing a unix socket with unread input
 * resets the peer, which could then lose the error reply still queued for
 * it. The rest of its input is read and dropped until it closes.
 */
static void on_shutdown_then_drain(uv_shutdown_t *req, int status)
{
	struct client *c = req->data;

	free(req);
	if (status < 0)
		client_close(c);
	client_unref(c);
}

static int on_line(void *userdata, char *line, size_t len)
{
	struct client *c = userdata;

	command_line(c->d, c, c->cred.uid, line, len);
	return c->closing ? -ECONNRESET : 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[65536];

	(void)h;
	(void)suggested;
	/* The loop is single-threaded and reads are consumed at once. */
	*buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	int r;

	if (nread < 0) {
		client_close(c);
		return;
	}
	if (nread == 0 || c->discard)
		return;
	client_ref(c);
	r = proto_linebuf_feed(&c->lb, buf->base, (size_t)nread, on_line, c);
	if (r == -EMSGSIZE && !c->closing) {
		json_object *reply = proto_reply_error(
			NULL, EMSGSIZE, "request line longer than %d bytes", PROTO_MAX_LINE);
		uv_shutdown_t *sh = calloc(1, sizeof(*sh));

		c->d->stats.bad_requests++;
		client_send(c, reply);
		json_object_put(reply);
		c->discard = true;
		if (sh) {
			sh->data = client_ref(c);
			if (uv_shutdown(sh, s, on_shutdown_then_drain) == 0) {
				client_unref(c);
				return;
			}
			client_unref(c);
			free(sh);
		}
		client_close(c);
	} else if (r < 0 && r != -ECONNRESET) {
		client_close(c);
	}
	client_unref(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct migd *d = server->data;
	struct client *c;
	socklen_t len = sizeof(struct ucred);
	uv_os_fd_t fd;

	if (status < 0) {
		log_warning_errno(status, "accept failed: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->d = d;
	c->refs = 1;
	proto_linebuf_init(&c->lb, PROTO_MAX_LINE);
	uv_pipe_init(d->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
	    uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		/* Without credentials nothing can be authorised: drop the client. */
		c->next = d->clients;
		d->clients = c;
		client_close(c);
		return;
	}
	d->stats.clients++;
	c->next = d->clients;
	d->clients = c;
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static int mkdir_parents(const char *path)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

int ctl_listen(struct migd *d)
{
	const char *path = d->cfg->socket_path;
	_cleanup_free_ char *tmp = NULL;
	struct stat st;
	int r, n;

	uv_pipe_init(d->loop, &d->server, 0);
	d->server.data = d;
	d->server_open = true;

	n = sd_listen_fds(1);
	if (n > 1)
		return log_error_errno(EINVAL, "socket activation passed %d sockets, expected 1",
				       n);
	if (n == 1) {
		r = uv_pipe_open(&d->server, SD_LISTEN_FDS_START);
		if (r < 0)
			return log_error_errno(r, "cannot use the activation socket: %s",
					       uv_strerror(r));
		d->socket_activated = true;
	} else {
		r = mkdir_parents(path);
		if (r < 0)
			return log_error_errno(r, "cannot create the directory of %s: %m", path);
		/* A socket left by an earlier run is stale: we hold the only listener. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		/*
		 * Bound under a name of our own and renamed once listening: a
		 * client that finds the path can connect. Bound but not yet
		 * listening, it would be refused (a test's migctl was, right
		 * after the socket appeared).
		 */
		if (asprintf(&tmp, "%s.%d", path, (int)getpid()) < 0)
			return log_error_errno(ENOMEM, "socket path %s: %m", path);
		unlink(tmp);
		r = uv_pipe_bind(&d->server, tmp);
		if (r < 0)
			return log_error_errno(r, "cannot bind %s: %s", tmp, uv_strerror(r));
		d->bound_path = strdup(tmp);
		if (chmod(tmp, d->cfg->socket_mode) < 0)
			return log_error_errno(errno, "chmod %s: %m", tmp);
		if (d->cfg->socket_group) {
			struct group *g = getgrnam(d->cfg->socket_group);

			if (!g)
				return log_error_errno(ENOENT, "socket_group %s: no such group",
						       d->cfg->socket_group);
			if (chown(tmp, 0, g->gr_gid) < 0)
				return log_error_errno(errno, "chown %s: %m", tmp);
		}
	}
	r = uv_listen((uv_stream_t *)&d->server, 64, on_connection);
	if (r < 0)
		return log_error_errno(r, "listen on %s: %s", path, uv_strerror(r));
	if (tmp) {
		if (rename(tmp, path) < 0)
			return log_error_errno(errno, "cannot rename %s to %s: %m", tmp, path);
		free(d->bound_path);
		d->bound_path = strdup(path);
	}
	log_info("listening on %s%s", path, d->socket_activated ? " (socket activation)" : "");
	return 0;
}

void ctl_close_server(struct migd *d)
{
	if (d->server_open && !uv_is_closing((uv_handle_t *)&d->server))
		uv_close((uv_handle_t *)&d->server, NULL);
	if (d->bound_path) {
		unlink(d->bound_path);
		free(d->bound_path);
		d->bound_path = NULL;
	}
}

void ctl_close(struct migd *d)
{
	ctl_close_server(d);
	/* Let queued replies go out first: shut the write side down, then close. */
	while (d->clients) {
		struct client *c = d->clients;
		uv_shutdown_t *sh = calloc(1, sizeof(*sh));

		d->clients = c->next;
		c->next = NULL;
		uv_read_stop((uv_stream_t *)&c->pipe);
		if (sh) {
			sh->data = c;
			if (uv_shutdown(sh, (uv_stream_t *)&c->pipe, on_shutdown_then_close) == 0)
				continue;
			free(sh);
		}
		c->next = d->clients;
		d->clients = c;
		client_close(c);
	}
}
