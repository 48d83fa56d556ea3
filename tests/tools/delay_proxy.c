// SPDX-License-Identifier: MIT
/*
 * delay_proxy - a TCP proxy that adds latency (and optionally failures) in
 * front of an S3 server, for benchmarks and fault-injection tests.
 *
 *   delay_proxy --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
 *               [--latency-ms N] [--port-file FILE] [--fail-every N]
 *               [--max-queue-mb M] [--quiet]
 *
 * PORT 0 for --listen picks a free port; the port actually bound is written
 * to --port-file (atomically: a reader sees either no file or the whole
 * number and a newline).
 *
 * Each accepted connection gets its own upstream connection and the bytes
 * are relayed both ways, half-closes included.
 *
 * --latency-ms N: every chunk read from the upstream is written to the
 * client N ms after it was read (a delay line: a queue of timestamped
 * chunks, drained by a writer thread that sleeps until each chunk is due).
 * A request/response round trip thus gets N ms more, like a server N ms
 * away, while the throughput is unchanged: the bandwidth is not capped by
 * the delay, only by --max-queue-mb of data in flight per connection
 * (default 64 MiB, so 1.6 GB/s at 40 ms).  Requests (client to upstream) are
 * not delayed, and neither is connection setup.
 *
 * --fail-every N: every Nth HTTP request (counted over all connections, so
 * requests N, 2N, 3N, ... fail) is not forwarded; the client gets
 * "503 Service Unavailable" with an S3 SlowDown error body and
 * "Connection: close", and the connection is closed after it.  Requests
 * are found by parsing request heads and skipping Content-Length bodies;
 * after a request with "Transfer-Encoding: chunked" (or a head over 64 KiB)
 * the rest of that connection is relayed without counting.  Clients that
 * pipeline requests are not supported in this mode (S3 clients do not).
 *
 * SIGTERM or SIGINT: stop accepting and exit with status 0.
 *
 * Build: cc -O2 -Wall -Wextra -pthread -o delay_proxy delay_proxy.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define SMALL_CHUNK (64 * 1024)
#define MAX_HEAD (64 * 1024)

static struct sockaddr_storage upstream_addr;
static socklen_t upstream_len;
static long latency_ns;
static unsigned long fail_every;
static size_t max_queue = 64UL << 20;
static bool quiet;
static atomic_ulong request_count;
static int listen_fd = -1;
static volatile sig_atomic_t stopping;

enum chunk_kind { CHUNK_DATA, CHUNK_EOF, CHUNK_ABORT };

struct chunk {
	struct chunk *next;
	enum chunk_kind kind;
	struct timespec due;
	size_t len;
	char *data;
	char *alloc;
};

struct conn {
	int cfd;		/* client socket */
	int ufd;		/* upstream socket */
	bool queued;		/* upstream->client goes through the delay line */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct chunk *head, *tail;
	size_t queued_bytes;
	bool sealed;		/* the delay line takes no more chunks */
	bool writer_done;	/* the writer stopped; drop what is queued */
	int refs;
};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void msg(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fputs("delay_proxy: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						    noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("delay_proxy: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void usage(FILE *f)
{
	fputs("usage: delay_proxy --listen HOST:PORT --upstream HOST:PORT\n"
	      "                   [--latency-ms N] [--port-file FILE]\n"
	      "                   [--fail-every N] [--max-queue-mb M] [--quiet]\n"
	      "PORT 0 for --listen picks a free port (see --port-file).\n",
	      f);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("out of memory");
	return p;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t read_some(int fd, char *p, size_t n)
{
	ssize_t r;

	do
		r = read(fd, p, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void ts_add_ns(struct timespec *t, long ns)
{
	t->tv_sec += ns / 1000000000L;
	t->tv_nsec += ns % 1000000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/*
 * Copy @in to @out until EOF through a pipe with splice(2), without copying
 * the data through user space.  Returns 1 at EOF, -1 on an error, 0 if
 * splice is not supported for these sockets (nothing was moved then).
 */
static int splice_relay(int in, int out)
{
	int p[2];
	int ret = -1;
	bool moved = false;

	if (pipe2(p, O_CLOEXEC) < 0)
		return 0;
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		ssize_t n, w;

		n = splice(in, NULL, p[1], NULL, 1 << 20,
			   SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && !moved && errno == EINVAL) {
			ret = 0;
			break;
		}
		if (n <= 0) {
			ret = n == 0 ? 1 : -1;
			break;
		}
		moved = true;
		while (n > 0) {
			w = splice(p[0], NULL, out, NULL, (size_t)n,
				   SPLICE_F_MOVE);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto done;
			n -= w;
		}
	}
done:
	close(p[0]);
	close(p[1]);
	return ret;
}

/* ---- the connection and its delay line ---------------------------------- */

static void conn_put(struct conn *c)
{
	struct chunk *ch;
	int refs;

	pthread_mutex_lock(&c->lock);
	refs = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (refs > 0)
		return;
	while ((ch = c->head)) {
		c->head = ch->next;
		free(ch->alloc);
		free(ch);
	}
	if (c->ufd >= 0)
		close(c->ufd);
	close(c->cfd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Stop everything on this connection: every blocked read or write returns. */
static void conn_abort(struct conn *c)
{
	shutdown(c->cfd, SHUT_RDWR);
	if (c->ufd >= 0)
		shutdown(c->ufd, SHUT_RDWR);
}

/*
 * Queue a chunk for the client.  Takes ownership of @alloc.  Waits while
 * the delay line is full.  @seal: take nothing after this chunk.
 */
static void enqueue(struct conn *c, enum chunk_kind kind, char *data,
		    size_t len, char *alloc, const struct timespec *read_at,
		    bool seal)
{
	struct chunk *ch = xmalloc(sizeof(*ch));

	ch->next = NULL;
	ch->kind = kind;
	ch->due = *read_at;
	ts_add_ns(&ch->due, latency_ns);
	ch->len = len;
	ch->data = data;
	ch->alloc = alloc;

	pthread_mutex_lock(&c->lock);
	while (!c->sealed && !c->writer_done && c->queued_bytes > 0 &&
	       c->queued_bytes + len > max_queue)
		pthread_cond_wait(&c->cond, &c->lock);
	if (c->sealed || c->writer_done) {
		pthread_mutex_unlock(&c->lock);
		free(alloc);
		free(ch);
		return;
	}
	if (c->tail)
		c->tail->next = ch;
	else
		c->head = ch;
	c->tail = ch;
	c->queued_bytes += len;
	if (seal)
		c->sealed = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The delay line's writer: each chunk goes to the client when it is due. */
static void *writer_thread(void *arg)
{
	struct conn *c = arg;

	for (;;) {
		struct chunk *ch;
		int rc;

		pthread_mutex_lock(&c->lock);
		while (!c->head)
			pthread_cond_wait(&c->cond, &c->lock);
		ch = c->head;
		pthread_mutex_unlock(&c->lock);

		while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					     &ch->due, NULL)) == EINTR)
			;
		if (ch->kind == CHUNK_EOF) {
			shutdown(c->cfd, SHUT_WR);
			break;
		}
		if (ch->kind == CHUNK_ABORT ||
		    write_all(c->cfd, ch->data, ch->len) < 0) {
			conn_abort(c);
			break;
		}

		pthread_mutex_lock(&c->lock);
		c->head = ch->next;
		if (!c->head)
			c->tail = NULL;
		c->queued_bytes -= ch->len;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		free(ch->alloc);
		free(ch);
	}
	pthread_mutex_lock(&c->lock);
	c->writer_done = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	conn_put(c);
	return NULL;
}

/* Upstream to client: directly, or into the delay line. */
static void *downstream_thread(void *arg)
{
	struct conn *c = arg;
	char *buf;
	int rc;

	if (!c->queued && (rc = splice_relay(c->ufd, c->cfd)) != 0) {
		if (rc > 0)
			shutdown(c->cfd, SHUT_WR);
		else
			conn_abort(c);
		conn_put(c);
		return NULL;
	}
	buf = xmalloc(BUF_SIZE);
	for (;;) {
		struct timespec now;
		ssize_t n = read_some(c->ufd, buf, BUF_SIZE);

		if (!c->queued) {
			if (n > 0 && write_all(c->cfd, buf, (size_t)n) == 0)
				continue;
			if (n == 0)
				shutdown(c->cfd, SHUT_WR);
			else
				conn_abort(c);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (n <= 0) {
			enqueue(c, n == 0 ? CHUNK_EOF : CHUNK_ABORT, NULL, 0,
				NULL, &now, true);
			break;
		}
		if (n > SMALL_CHUNK) {
			/* hand the buffer over, no copy */
			enqueue(c, CHUNK_DATA, buf, (size_t)n, buf, &now, false);
			buf = xmalloc(BUF_SIZE);
		} else {
			char *p = xmalloc((size_t)n);

			memcpy(p, buf, (size_t)n);
			enqueue(c, CHUNK_DATA, p, (size_t)n, p, &now, false);
		}
	}
	free(buf);
	conn_put(c);
	return NULL;
}

/* ---- requests, for --fail-every ----------------------------------------- */

enum req_state { REQ_HEAD, REQ_BODY, REQ_PASS };

struct req_parser {
	enum req_state state;
	unsigned long long body_left;
	char head[MAX_HEAD];
	size_t head_len;
};

/* The value of header @name in a request head, or NULL. */
static const char *header_value(const char *head, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = memchr(head, '\n', len);	/* skip request line */
	const char *end = head + len;

	while (p && p + 1 < end) {
		const char *line = p + 1;

		if ((size_t)(end - line) > nlen &&
		    strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			line += nlen + 1;
			while (line < end && (*line == ' ' || *line == '\t'))
				line++;
			return line;
		}
		p = memchr(line, '\n', (size_t)(end - line));
	}
	return NULL;
}

static void send_slowdown(struct conn *c, const char *head, unsigned long n)
{
	static const char body_fmt[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>SlowDown</Code>"
		"<Message>Please reduce your request rate.</Message>"
		"<RequestId>delay-proxy-%lu</RequestId></Error>\n";
	char body[512], *resp;
	int blen, rlen;
	bool is_head = strncmp(head, "HEAD ", 5) == 0;
	struct timespec now;

	blen = snprintf(body, sizeof(body), body_fmt, n);
	resp = xmalloc(1024);
	rlen = snprintf(resp, 1024,
			"HTTP/1.1 503 Service Unavailable\r\n"
			"Content-Type: application/xml\r\n"
			"Content-Length: %d\r\n"
			"Retry-After: 1\r\n"
			"Connection: close\r\n"
			"\r\n%s",
			blen, is_head ? "" : body);
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* The 503 is the last thing the client gets on this connection. */
	enqueue(c, CHUNK_DATA, resp, (size_t)rlen, resp, &now, false);
	enqueue(c, CHUNK_EOF, NULL, 0, NULL, &now, true);
}

/*
 * A complete request head: count it, and forward it or fail it.
 * Returns false when the request was failed (stop relaying).
 */
static bool request_head(struct conn *c, struct req_parser *rp)
{
	const char *te, *cl;
	unsigned long n = atomic_fetch_add(&request_count, 1) + 1;

	if (n % fail_every == 0) {
		msg("failing request %lu with 503 SlowDown", n);
		send_slowdown(c, rp->head, n);
		return false;
	}
	if (write_all(c->ufd, rp->head, rp->head_len) < 0)
		return false;
	te = header_value(rp->head, rp->head_len, "Transfer-Encoding");
	cl = header_value(rp->head, rp->head_len, "Content-Length");
	rp->head_len = 0;
	if (te && strncasecmp(te, "identity", 8) != 0) {
		rp->state = REQ_PASS;
	} else if (cl) {
		rp->body_left = strtoull(cl, NULL, 10);
		rp->state = rp->body_left ? REQ_BODY : REQ_HEAD;
	} else {
		rp->state = REQ_HEAD;
	}
	return true;
}

/*
 * Relay @n bytes from the client, finding request boundaries.  Returns
 * -1 on a write error, 1 when a request was failed, 0 otherwise.
 */
static int relay_requests(struct conn *c, struct req_parser *rp,
			  const char *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		size_t k, old, start;
		char *end;

		switch (rp->state) {
		case REQ_PASS:
			return write_all(c->ufd, buf + off, n - off);
		case REQ_BODY:
			k = n - off;
			if (k > rp->body_left)
				k = (size_t)rp->body_left;
			if (write_all(c->ufd, buf + off, k) < 0)
				return -1;
			rp->body_left -= k;
			off += k;
			if (rp->body_left == 0)
				rp->state = REQ_HEAD;
			break;
		case REQ_HEAD:
			old = rp->head_len;
			k = n - off;
			if (k > MAX_HEAD - old)
				k = MAX_HEAD - old;
			memcpy(rp->head + old, buf + off, k);
			rp->head_len = old + k;
			start = old > 3 ? old - 3 : 0;
			end = memmem(rp->head + start, rp->head_len - start,
				      "\r\n\r\n", 4);
			if (!end) {
				off += k;
				if (rp->head_len == MAX_HEAD) {
					/* give up parsing this connection */
					rp->state = REQ_PASS;
					if (write_all(c->ufd, rp->head,
						      rp->head_len) < 0)
						return -1;
					rp->head_len = 0;
				}
				break;
			}
			rp->head_len = (size_t)(end + 4 - rp->head);
			off += rp->head_len - old;
			if (!request_head(c, rp))
				return 1;
			break;
		}
	}
	return 0;
}

/* ---- a connection's first thread: connect, then client to upstream ------- */

static bool start_thread(void *(*fn)(void *), struct conn *c)
{
	pthread_t t;
	pthread_attr_t attr;
	bool ok;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
	ok = pthread_create(&t, &attr, fn, c) == 0;
	if (!ok) {
		pthread_mutex_lock(&c->lock);
		c->refs--;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_attr_destroy(&attr);
	return ok;
}

/* After a failed request: drain the client until it closes (or 5 s). */
static void drain_client(struct conn *c, char *buf)
{
	struct timeval tv = { .tv_sec = 5 };

	setsockopt(c->cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (read_some(c->cfd, buf, BUF_SIZE) > 0)
		;
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct req_parser *rp = NULL;
	char *buf = NULL;

	c->ufd = socket(upstream_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->ufd < 0 ||
	    connect(c->ufd, (struct sockaddr *)&upstream_addr,
		    upstream_len) < 0) {
		msg("connecting upstream: %s", strerror(errno));
		goto out;
	}
	set_nodelay(c->ufd);
	if (c->queued && !start_thread(writer_thread, c)) {
		msg("pthread_create failed");
		goto out;
	}
	if (!start_thread(downstream_thread, c)) {
		msg("pthread_create failed");
		conn_abort(c);
		goto out;
	}

	if (!fail_every) {
		int rc = splice_relay(c->cfd, c->ufd);

		if (rc > 0) {
			shutdown(c->ufd, SHUT_WR);
			goto out;
		}
		if (rc < 0) {
			conn_abort(c);
			goto out;
		}
	}
	buf = xmalloc(BUF_SIZE);
	if (fail_every) {
		rp = xmalloc(sizeof(*rp));
		rp->state = REQ_HEAD;
		rp->head_len = 0;
	}
	for (;;) {
		ssize_t n = read_some(c->cfd, buf, BUF_SIZE);
		int rc;

		if (n == 0) {
			shutdown(c->ufd, SHUT_WR);
			break;
		}
		if (n < 0) {
			conn_abort(c);
			break;
		}
		if (rp)
			rc = relay_requests(c, rp, buf, (size_t)n);
		else
			rc = write_all(c->ufd, buf, (size_t)n);
		if (rc < 0) {
			conn_abort(c);
			break;
		}
		if (rc > 0) {
			shutdown(c->ufd, SHUT_RDWR);
			drain_client(c, buf);
			break;
		}
	}
out:
	free(rp);
	free(buf);
	conn_put(c);
	return NULL;
}

/* ---- setup --------------------------------------------------------------- */

static void parse_addr(const char *spec, bool passive,
		       struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { 0 }, *res;
	size_t hlen;
	int rc;

	if (!colon || colon == spec || !colon[1])
		die("'%s': expected HOST:PORT", spec);
	hlen = (size_t)(colon - spec);
	if (spec[0] == '[' && colon[-1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		die("'%s': host name too long", spec);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc)
		die("'%s': %s", spec, gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
}

static unsigned long parse_num(const char *opt, const char *s,
			       unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		die("%s: '%s' is not a number from 0 to %lu", opt, s, max);
	return v;
}

static int addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void write_port_file(const char *path, int port)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		die("--port-file: path too long");
	f = fopen(tmp, "w");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die("%s: %s", path, strerror(errno));
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	if (sigwait(set, &sig) == 0) {
		stopping = 1;
		/* wakes the accept() in main */
		shutdown(listen_fd, SHUT_RDWR);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "latency-ms", required_argument, NULL, 'd' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "fail-every", required_argument, NULL, 'f' },
		{ "max-queue-mb", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *listen_spec = NULL, *upstream_spec = NULL;
	const char *port_file = NULL;
	struct sockaddr_storage laddr;
	socklen_t llen = sizeof(laddr);
	unsigned long latency_ms = 0;
	static sigset_t sigs;
	pthread_t st;
	int opt, one = 1;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'u':
			upstream_spec = optarg;
			break;
		case 'd':
			latency_ms = parse_num("--latency-ms", optarg, 600000);
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'f':
			fail_every = parse_num("--fail-every", optarg,
					       ULONG_MAX);
			break;
		case 'm':
			max_queue = parse_num("--max-queue-mb", optarg,
					      1UL << 20) << 20;
			if (!max_queue)
				die("--max-queue-mb must be at least 1");
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !listen_spec || !upstream_spec) {
		usage(stderr);
		return 2;
	}
	latency_ns = (long)latency_ms * 1000000L;
	parse_addr(upstream_spec, false, &upstream_addr, &upstream_len);
	parse_addr(listen_spec, true, &laddr, &llen);

	/* Signals are taken by one thread; the others never see them. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	listen_fd = socket(laddr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listen_fd, (struct sockaddr *)&laddr, llen) < 0)
		die("bind %s: %s", listen_spec, strerror(errno));
	if (listen(listen_fd, 512) < 0)
		die("listen: %s", strerror(errno));
	llen = sizeof(laddr);
	if (getsockname(listen_fd, (struct sockaddr *)&laddr, &llen) < 0)
		die("getsockname: %s", strerror(errno));
	if (pthread_create(&st, NULL, signal_thread, &sigs) != 0)
		die("pthread_create failed");
	if (port_file)
		write_port_file(port_file, addr_port(&laddr));
	msg("listening on port %d, upstream %s, latency %lu ms",
	    addr_port(&laddr), upstream_spec, latency_ms);
	if (fail_every)
		msg("failing every request number N*%lu with 503 SlowDown",
		    fail_every);

	while (!stopping) {
		struct conn *c;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (stopping)
				break;
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				if (errno != EINTR && errno != ECONNABORTED)
					usleep(10000);
				continue;
			}
			die("accept: %s", strerror(errno));
		}
		set_nodelay(fd);
		c = xmalloc(sizeof(*c));
		memset(c, 0, sizeof(*c));
		c->cfd = fd;
		c->ufd = -1;
		c->queued = latency_ns > 0 || fail_every > 0;
		pthread_mutex_init(&c->lock, NULL);
		pthread_cond_init(&c->cond, NULL);
		c->refs = 1;
		if (!start_thread(conn_thread, c))
			msg("pthread_create failed; dropping a connection");
		conn_put(c);
	}
	msg("stopping");
	close(listen_fd);
	return 0;
}
