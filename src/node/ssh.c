/* SSH sessions with libssh2: host key policy, authentication, commands with timeouts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>

#include "gpuctl/ssh.h"

#define MAX_OUTPUT (16u << 20)

struct ssh_conn {
	int fd;
	LIBSSH2_SESSION *s;
	char *name;
	char *user;
	int sudo;
	long timeout_ms;
	char fingerprint[128];
	/* through a jump host: the jump's session, its forwarding channel, and
	 * a thread relaying between that channel and our end of a socketpair */
	struct ssh_conn *jump;
	LIBSSH2_CHANNEL *tunnel;
	int relay_fd;
	pthread_t relay;
	int relay_started;
	volatile int relay_stop;
};

void sh_quote(struct buf *b, const char *s)
{
	buf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(b, "'\\''");
		else
			buf_addc(b, *s);
	}
	buf_addc(b, '\'');
}

char *sh_join(const char *const *argv)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; argv[i]; i++) {
		if (i)
			buf_addc(&b, ' ');
		sh_quote(&b, argv[i]);
	}
	return buf_detach(&b);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int tcp_connect(const char *name, const char *host, int port, long timeout_ms, int *fd_out, struct gerr *err)
{
	char ports[16];
	snprintf(ports, sizeof(ports), "%d", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *res = NULL;
	int rc = getaddrinfo(host, ports, &hints, &res);
	if (rc != 0)
		return gerr_set(err, GERR_SSH_CONN, "node %s: cannot resolve %s: %s", name, host, gai_strerror(rc));
	int fd = -1, last = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p = { fd, POLLOUT, 0 };
			int pr = poll(&p, 1, (int)timeout_ms);
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
				break;
			last = pr == 0 ? ETIMEDOUT : soerr;
		} else {
			last = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (last == ETIMEDOUT)
			return gerr_set(err, GERR_SSH_TIMEOUT, "node %s: connect to %s port %d timed out after %ld ms", name,
					host, port, timeout_ms);
		return gerr_set(err, GERR_SSH_CONN, "node %s: cannot connect to %s port %d: %s", name, host, port,
				strerror(last));
	}
	/* libssh2 runs in blocking mode with its own timeout */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*fd_out = fd;
	return 0;
}

static void b64_nopad(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < outsz; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tbl[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tbl[v & 63];
	}
	out[o] = '\0';
}

static const char *session_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	libssh2_session_last_error(s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

static int key_typemask(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static int check_host_key(struct ssh_conn *c, const struct ssh_target *t, const char *kh_path, struct gerr *err)
{
	size_t klen = 0;
	int ktype = 0;
	const char *key = libssh2_session_hostkey(c->s, &klen, &ktype);
	if (!key)
		return gerr_set(err, GERR_SSH_CONN, "node %s: the server sent no host key", t->name);
	const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(c->s, LIBSSH2_HOSTKEY_HASH_SHA256);
	char b64[64] = "";
	if (h)
		b64_nopad(h, 32, b64, sizeof(b64));
	snprintf(c->fingerprint, sizeof(c->fingerprint), "SHA256:%s", b64);
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->s);
	struct stat st;
	if (stat(kh_path, &st) == 0 && libssh2_knownhost_readfile(kh, kh_path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		libssh2_knownhost_free(kh);
		return gerr_set(err, GERR_CONFIG, "known_hosts %s cannot be read: %s", kh_path, session_error(c->s));
	}
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_typemask(ktype);
	int r = libssh2_knownhost_checkp(kh, t->host, t->port, key, klen, mask, NULL);
	int rc = 0;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
		rc = 0;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		rc = gerr_set(err, GERR_HOSTKEY_CHANGED,
			      "node %s: the host key of %s port %d has CHANGED (now %s); refusing to connect: someone may be intercepting the connection",
			      t->name, t->host, t->port, c->fingerprint);
		gerr_hint(err, "if the node was reinstalled, remove its old entry from %s (ssh-keygen -R) and check the new fingerprint",
			  kh_path);
	} else if (t->accept_new) {
		char hostspec[300];
		if (t->port == 22)
			snprintf(hostspec, sizeof(hostspec), "%s", t->host);
		else
			snprintf(hostspec, sizeof(hostspec), "[%s]:%d", t->host, t->port);
		struct libssh2_knownhost *entry = NULL;
		if (libssh2_knownhost_addc(kh, hostspec, NULL, key, klen, NULL, 0,
					   LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_typemask(ktype),
					   &entry) == 0) {
			char line[8192];
			size_t ll = 0;
			if (libssh2_knownhost_writeline(kh, entry, line, sizeof(line), &ll, LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0) {
				int fd = open(kh_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
				if (fd < 0 || write(fd, line, ll) != (ssize_t)ll)
					rc = gerr_set(err, GERR_IO, "cannot add the host key of node %s to %s: %s", t->name,
						      kh_path, strerror(errno));
				if (fd >= 0)
					close(fd);
			}
		}
	} else {
		rc = gerr_set(err, GERR_HOSTKEY_UNKNOWN, "node %s: unknown host key for %s port %d (%s); refusing to connect",
			      t->name, t->host, t->port, c->fingerprint);
		gerr_hint(err, "check the fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it to %s, or pass --ssh-accept-new",
			  kh_path);
	}
	libssh2_knownhost_free(kh);
	return rc;
}

static int auth_agent(struct ssh_conn *c)
{
	LIBSSH2_AGENT *a = libssh2_agent_init(c->s);
	if (!a)
		return -1;
	int ok = -1;
	if (libssh2_agent_connect(a) == 0 && libssh2_agent_list_identities(a) == 0) {
		struct libssh2_agent_publickey *id = NULL, *prev = NULL;
		while (libssh2_agent_get_identity(a, &id, prev) == 0) {
			if (libssh2_agent_userauth(a, c->user, id) == 0) {
				ok = 0;
				break;
			}
			prev = id;
		}
	}
	libssh2_agent_disconnect(a);
	libssh2_agent_free(a);
	return ok;
}

/* An RSA private key (PEM "RSA PRIVATE KEY", or an OpenSSH key whose .pub says ssh-rsa). */
static int is_rsa_key(const char *path)
{
	struct buf b = BUF_INIT;
	struct gerr e = GERR_INIT;
	int rsa = 0;
	if (buf_read_file(&b, path, 1u << 16, &e) == 0)
		rsa = strstr(b.s, "BEGIN RSA PRIVATE KEY") != NULL;
	buf_wipe(&b);
	gerr_clear(&e);
	char *pub = xasprintf("%s.pub", path);
	if (!rsa && buf_read_file(&b, pub, 1u << 16, &e) == 0)
		rsa = !strncmp(b.s, "ssh-rsa ", 8);
	buf_release(&b);
	gerr_clear(&e);
	free(pub);
	return rsa;
}

static int authenticate(struct ssh_conn *c, const struct ssh_target *t, struct gerr *err)
{
	if (t->identity_file) {
		struct stat st;
		if (stat(t->identity_file, &st) < 0)
			return gerr_set(err, GERR_CONFIG, "node %s: identity file %s: %s", t->name, t->identity_file,
					strerror(errno));
		if (libssh2_userauth_publickey_fromfile(c->s, c->user, NULL, t->identity_file,
							t->passphrase ? t->passphrase : "") == 0)
			return 0;
		int code = libssh2_session_last_errno(c->s);
		if (code == LIBSSH2_ERROR_FILE || code == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
			return gerr_set(err, GERR_SSH_AUTH, "node %s: cannot use key %s: %s%s", t->name, t->identity_file,
					session_error(c->s),
					t->passphrase ? "" : " (if the key is encrypted, give its passphrase)");
		gerr_set(err, GERR_SSH_AUTH, "node %s: %s@%s refused key %s: %s", t->name, c->user, t->host,
			 t->identity_file, session_error(c->s));
		/* libssh2 before 1.11 signs RSA user keys with ssh-rsa only */
		if (!libssh2_version(0x010b00) && is_rsa_key(t->identity_file))
			gerr_hint(err,
				  "this is an RSA key and libssh2 %s signs with ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse; use an ed25519 or ecdsa key, or a gpuctl linked with libssh2 1.11 or later",
				  libssh2_version(0));
		return -1;
	}
	const char *sock = getenv("SSH_AUTH_SOCK");
	if (sock && *sock && auth_agent(c) == 0)
		return 0;
	const char *home = getenv("HOME");
	static const char *const defaults[] = { ".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa", NULL };
	for (int i = 0; home && defaults[i]; i++) {
		char *p = xasprintf("%s/%s", home, defaults[i]);
		struct stat st;
		int ok = stat(p, &st) == 0 &&
			 libssh2_userauth_publickey_fromfile(c->s, c->user, NULL, p, t->passphrase ? t->passphrase : "") == 0;
		free(p);
		if (ok)
			return 0;
	}
	return gerr_set(err, GERR_SSH_AUTH,
			"node %s: no key was accepted for %s@%s (tried %s~/.ssh/id_ed25519, id_ecdsa, id_rsa); pass -i KEY or set identityFile in the inventory",
			t->name, c->user, t->host, sock && *sock ? "ssh-agent, " : "");
}

/* Copy bytes both ways between the forwarding channel and the socketpair
 * end; the jump session is used by this thread only. */
static void *relay_main(void *arg)
{
	struct ssh_conn *c = arg;
	LIBSSH2_SESSION *js = c->jump->s;
	char buf[16384];
	char pend[16384];
	size_t plen = 0, poff = 0;
	libssh2_session_set_blocking(js, 0);
	while (!c->relay_stop) {
		int progress = 0;
		/* socket -> channel */
		if (plen == 0) {
			ssize_t n = read(c->relay_fd, pend, sizeof(pend));
			if (n == 0)
				break;
			if (n > 0) {
				plen = (size_t)n;
				poff = 0;
				progress = 1;
			} else if (errno != EAGAIN && errno != EINTR) {
				break;
			}
		}
		while (plen > 0) {
			ssize_t w = libssh2_channel_write(c->tunnel, pend + poff, plen);
			if (w == LIBSSH2_ERROR_EAGAIN)
				break;
			if (w < 0)
				goto out;
			poff += (size_t)w;
			plen -= (size_t)w;
			progress = 1;
		}
		/* channel -> socket */
		ssize_t r = libssh2_channel_read(c->tunnel, buf, sizeof(buf));
		if (r > 0) {
			size_t off = 0;
			while (off < (size_t)r) {
				ssize_t w = write(c->relay_fd, buf + off, (size_t)r - off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					struct pollfd p = { c->relay_fd, POLLOUT, 0 };
					if (errno != EAGAIN || poll(&p, 1, 1000) < 0)
						goto out;
					continue;
				}
				off += (size_t)w;
			}
			progress = 1;
		} else if (r < 0 && r != LIBSSH2_ERROR_EAGAIN) {
			break;
		} else if (r == 0 && libssh2_channel_eof(c->tunnel)) {
			break;
		}
		if (!progress) {
			struct pollfd p[2] = { { c->relay_fd, plen ? 0 : POLLIN, 0 }, { c->jump->fd, POLLIN, 0 } };
			int dir = libssh2_session_block_directions(js);
			if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
				p[1].events |= POLLOUT;
			poll(p, 2, 200);
		}
	}
out:
	shutdown(c->relay_fd, SHUT_RDWR);
	return NULL;
}

/* Parse "[user@]host[:port]" (the host may be [v6]). */
static void parse_jump(const char *spec, char **user, char **host, int *port)
{
	const char *at = strrchr(spec, '@');
	*user = at ? xstrndup(spec, (size_t)(at - spec)) : NULL;
	const char *h = at ? at + 1 : spec;
	*port = 22;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		*host = xstrndup(h + 1, e ? (size_t)(e - h - 1) : strlen(h + 1));
		if (e && e[1] == ':')
			*port = (int)strtol(e + 2, NULL, 10);
		return;
	}
	const char *colon = strchr(h, ':');
	*host = colon ? xstrndup(h, (size_t)(colon - h)) : xstrdup(h);
	if (colon)
		*port = (int)strtol(colon + 1, NULL, 10);
}

/* Connect to the jump host and open a forwarding channel to t->host:port;
 * c->fd becomes our end of a socketpair relayed to that channel. */
static int connect_via_jump(struct ssh_conn *c, const struct ssh_target *t, int port, struct gerr *err)
{
	char *juser = NULL, *jhost = NULL;
	int jport = 22;
	parse_jump(t->jump, &juser, &jhost, &jport);
	char *jname = xasprintf("%s (jump host %s)", t->name, jhost);
	struct ssh_target jt = *t;
	jt.name = jname;
	jt.host = jhost;
	jt.port = jport;
	jt.user = juser ? juser : t->user;
	jt.jump = NULL;
	jt.sudo = 0;
	int rc = ssh_open(&jt, &c->jump, err);
	free(jname);
	free(juser);
	free(jhost);
	if (rc < 0)
		return -1;
	c->tunnel = libssh2_channel_direct_tcpip(c->jump->s, t->host, port);
	if (!c->tunnel)
		return gerr_set(err, GERR_SSH_CONN, "node %s: the jump host %s refused to forward to %s port %d: %s", t->name,
				t->jump, t->host, port, session_error(c->jump->s));
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return gerr_set(err, GERR_IO, "socketpair: %s", strerror(errno));
	c->fd = sp[0];
	c->relay_fd = sp[1];
	fcntl(c->relay_fd, F_SETFL, fcntl(c->relay_fd, F_GETFL) | O_NONBLOCK);
	if (pthread_create(&c->relay, NULL, relay_main, c) != 0)
		return gerr_set(err, GERR_INTERNAL, "cannot start the jump host relay");
	c->relay_started = 1;
	return 0;
}

/* Prefer ed25519, then ecdsa, then rsa host keys, naming only the methods
 * this libssh2 supports: libssh2 1.10 removes unknown names from a
 * preference list with an overlapping memcpy. */
static void set_hostkey_pref(LIBSSH2_SESSION *s)
{
	static const char *const want[] = { "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
					    "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", NULL };
	const char **algs = NULL;
	int n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
	struct buf pref = BUF_INIT;
	for (int i = 0; want[i]; i++)
		for (int k = 0; k < n; k++)
			if (!strcmp(algs[k], want[i]))
				buf_addf(&pref, "%s%s", pref.len ? "," : "", want[i]);
	if (n > 0)
		libssh2_free(s, algs);
	if (pref.len)
		libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, pref.s);
	buf_release(&pref);
}

int ssh_open(const struct ssh_target *t, struct ssh_conn **out, struct gerr *err)
{
	struct ssh_conn *c = xcalloc(1, sizeof(*c));
	c->fd = -1;
	c->relay_fd = -1;
	c->name = xstrdup(t->name ? t->name : t->host);
	c->user = xstrdup(t->user && *t->user ? t->user : "root");
	c->sudo = t->sudo && strcmp(c->user, "root") != 0;
	c->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : 30000;
	struct ssh_target tt = *t;
	tt.name = c->name;
	if (tt.port <= 0)
		tt.port = 22;
	char *khdef = NULL;
	const char *kh = t->known_hosts;
	if (!kh) {
		const char *home = getenv("HOME");
		khdef = xasprintf("%s/.ssh/known_hosts", home ? home : "");
		kh = khdef;
	}
	if (t->jump && *t->jump) {
		if (connect_via_jump(c, &tt, tt.port, err) < 0)
			goto fail;
	} else if (tcp_connect(c->name, t->host, tt.port, c->timeout_ms, &c->fd, err) < 0) {
		goto fail;
	}
	c->s = libssh2_session_init();
	if (!c->s) {
		gerr_set(err, GERR_INTERNAL, "cannot create an SSH session");
		goto fail;
	}
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, c->timeout_ms);
	set_hostkey_pref(c->s);
	long hs_start = now_ms();
	if (libssh2_session_handshake(c->s, c->fd) != 0) {
		int code = libssh2_session_last_errno(c->s);
		/* a server that never answers shows as a timeout, whatever code libssh2 gives */
		int timed_out = code == LIBSSH2_ERROR_TIMEOUT || now_ms() - hs_start >= c->timeout_ms - 50;
		if (timed_out)
			gerr_set(err, GERR_SSH_TIMEOUT, "node %s: SSH handshake with %s port %d failed: no answer within %ld s",
				 c->name, t->host, tt.port, c->timeout_ms / 1000);
		else
			gerr_set(err, GERR_SSH_CONN, "node %s: SSH handshake with %s port %d failed: %s (libssh2 error %d)",
				 c->name, t->host, tt.port, session_error(c->s), code);
		goto fail;
	}
	if (check_host_key(c, &tt, kh, err) < 0)
		goto fail;
	if (authenticate(c, &tt, err) < 0)
		goto fail;
	free(khdef);
	*out = c;
	return 0;
fail:
	free(khdef);
	ssh_close(c);
	return -1;
}

void ssh_close(struct ssh_conn *c)
{
	if (!c)
		return;
	if (c->s) {
		libssh2_session_set_timeout(c->s, 2000);
		libssh2_session_disconnect(c->s, "bye");
		libssh2_session_free(c->s);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->relay_started) {
		c->relay_stop = 1;
		pthread_join(c->relay, NULL);
	}
	if (c->relay_fd >= 0)
		close(c->relay_fd);
	if (c->tunnel) {
		libssh2_session_set_blocking(c->jump->s, 1);
		libssh2_channel_free(c->tunnel);
	}
	ssh_close(c->jump);
	free(c->name);
	free(c->user);
	free(c);
}

const char *ssh_fingerprint(const struct ssh_conn *c)
{
	return c->fingerprint;
}

static int read_stream(LIBSSH2_CHANNEL *ch, int stream, struct buf *b, int *got)
{
	char tmp[16384];
	ssize_t n = libssh2_channel_read_ex(ch, stream, tmp, sizeof(tmp));
	if (n > 0) {
		*got = 1;
		if (b && b->len + (size_t)n <= MAX_OUTPUT)
			buf_add(b, tmp, (size_t)n);
		return 0;
	}
	if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
		return 0;
	return (int)n;
}

int ssh_exec(struct ssh_conn *c, const char *cmdline, const char *stdin_data, size_t stdin_len,
	     struct buf *out, struct buf *errout, int *exit_status, struct gerr *err)
{
	struct buf cmd = BUF_INIT;
	if (c->sudo) {
		buf_adds(&cmd, "sudo -n -- sh -c ");
		sh_quote(&cmd, cmdline);
	} else {
		buf_adds(&cmd, cmdline);
	}
	struct buf errb = BUF_INIT;
	struct buf *eb = errout ? errout : &errb;
	size_t err_start = eb->len;
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->s);
	int rc = -1;
	if (!ch) {
		gerr_set(err, libssh2_session_last_errno(c->s) == LIBSSH2_ERROR_TIMEOUT ? GERR_SSH_TIMEOUT : GERR_SSH_CONN,
			 "node %s: cannot open an SSH channel: %s", c->name, session_error(c->s));
		goto out;
	}
	if (libssh2_channel_exec(ch, cmd.s) != 0) {
		gerr_set(err, GERR_SSH_CONN, "node %s: cannot start the command: %s", c->name, session_error(c->s));
		goto out_ch;
	}
	if (stdin_data && stdin_len) {
		size_t off = 0;
		while (off < stdin_len) {
			ssize_t w = libssh2_channel_write(ch, stdin_data + off, stdin_len - off);
			if (w < 0) {
				gerr_set(err, w == LIBSSH2_ERROR_TIMEOUT ? GERR_SSH_TIMEOUT : GERR_SSH_CONN,
					 "node %s: sending input failed: %s", c->name, session_error(c->s));
				goto out_ch;
			}
			off += (size_t)w;
		}
	}
	libssh2_channel_send_eof(ch);
	/* read both streams in non-blocking mode under one deadline */
	libssh2_session_set_blocking(c->s, 0);
	long deadline = now_ms() + c->timeout_ms;
	for (;;) {
		int got = 0;
		int r1 = read_stream(ch, 0, out, &got);
		int r2 = read_stream(ch, SSH_EXTENDED_DATA_STDERR, eb, &got);
		if (r1 < 0 || r2 < 0) {
			libssh2_session_set_blocking(c->s, 1);
			gerr_set(err, GERR_SSH_CONN, "node %s: reading the output failed: %s", c->name, session_error(c->s));
			goto out_ch;
		}
		if (libssh2_channel_eof(ch))
			break;
		if (got)
			continue;
		long left = deadline - now_ms();
		if (left <= 0) {
			libssh2_session_set_blocking(c->s, 1);
			gerr_set(err, GERR_SSH_TIMEOUT, "node %s: the command did not finish within %ld s", c->name,
				 c->timeout_ms / 1000);
			goto out_ch;
		}
		struct pollfd p = { c->fd, 0, 0 };
		int dir = libssh2_session_block_directions(c->s);
		if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
			p.events |= POLLIN;
		if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			p.events |= POLLOUT;
		if (!p.events)
			p.events = POLLIN;
		poll(&p, 1, (int)(left < 1000 ? left : 1000));
	}
	libssh2_session_set_blocking(c->s, 1);
	libssh2_channel_close(ch);
	libssh2_channel_wait_closed(ch);
	*exit_status = libssh2_channel_get_exit_status(ch);
	if (c->sudo && *exit_status != 0 && strstr(eb->s + err_start, "sudo: a password is required")) {
		gerr_set(err, GERR_SSH_AUTH,
			 "node %s: user %s needs a password for sudo; gpuctl uses sudo -n and never types passwords",
			 c->name, c->user);
		gerr_hint(err, "allow passwordless sudo for %s on the node (NOPASSWD in /etc/sudoers.d) or connect as root",
			  c->user);
		goto out_ch;
	}
	rc = 0;
out_ch:
	libssh2_channel_free(ch);
out:
	buf_release(&cmd);
	buf_release(&errb);
	return rc;
}
