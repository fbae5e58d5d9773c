/* SSH sessions with libssh2: host key policy, authentication, commands with timeouts. */
#include <arpa/inet.h>
#include <ctype.h>
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
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdatomic.h>

#include "gpuctl/ssh.h"
#include "gpuctl/util.h"

/* the stderr kept only to recognise sudo's password prompt */
#define MAX_PRIVATE_STDERR (64u << 10)

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
	atomic_int relay_stop;
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

static const char *session_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	libssh2_session_last_error(s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

/* ---- known_hosts ---- */

/* base64 as known_hosts has it, into a new array; -1 on bad input. */
static int b64_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	if (n == 0 || n > (1u << 20))
		return -1;
	char *in = xstrndup(s, n);
	struct buf b = BUF_INIT;
	int rc = base64_decode(in, &b);
	free(in);
	if (rc < 0 || b.len == 0) {
		buf_release(&b);
		return -1;
	}
	*outlen = b.len;
	*out = (unsigned char *)buf_detach(&b);
	return 0;
}

/* The key type a key blob starts with ("ssh-ed25519"), or NULL. */
static char *blob_keytype(const unsigned char *k, size_t n)
{
	if (!k || n < 4)
		return NULL;
	size_t l = (size_t)k[0] << 24 | (size_t)k[1] << 16 | (size_t)k[2] << 8 | k[3];
	if (l == 0 || l > 64 || l > n - 4)
		return NULL;
	for (size_t i = 0; i < l; i++)
		if (!isgraph(k[4 + i]))
			return NULL;
	return xstrndup((const char *)k + 4, l);
}

/* The name known_hosts files record host:port under, lower-cased as OpenSSH does. */
static char *kh_name(const char *host, int port)
{
	char *n = port == 22 || port <= 0 ? xstrdup(host) : xasprintf("[%s]:%d", host, port);
	for (char *p = n; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return n;
}

/* s against pattern p[0..pn) with * and ?, ignoring case (OpenSSH's match_pattern). */
static int wild_match(const char *s, const char *p, size_t pn)
{
	size_t pi = 0, star = (size_t)-1;
	const char *mark = NULL;
	while (*s) {
		if (pi < pn && (p[pi] == '?' || tolower((unsigned char)p[pi]) == tolower((unsigned char)*s))) {
			s++;
			pi++;
		} else if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = s;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			s = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

/* A hashed entry "salt|hmac" (after "|1|") names name when HMAC-SHA1(salt, name) == hmac. */
static int kh_hashed_match(const char *f, size_t fn, const char *name)
{
	const char *bar = memchr(f, '|', fn);
	if (!bar)
		return 0;
	unsigned char *salt = NULL, *hash = NULL;
	size_t sl = 0, hl = 0;
	int ok = 0;
	if (b64_decode(f, (size_t)(bar - f), &salt, &sl) == 0 &&
	    b64_decode(bar + 1, fn - (size_t)(bar + 1 - f), &hash, &hl) == 0 && sl == 20 && hl == 20) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned ml = 0;
		if (HMAC(EVP_sha1(), salt, (int)sl, (const unsigned char *)name, strlen(name), mac, &ml) && ml == 20)
			ok = CRYPTO_memcmp(mac, hash, 20) == 0;
	}
	free(salt);
	free(hash);
	return ok;
}

/* The host field of a line (patterns separated by commas, or one hashed name) names name. */
static int kh_host_match(const char *f, size_t fn, const char *name)
{
	if (fn > 3 && !memcmp(f, "|1|", 3))
		return kh_hashed_match(f + 3, fn - 3, name);
	int yes = 0;
	for (size_t i = 0; i < fn;) {
		size_t j = i;
		while (j < fn && f[j] != ',')
			j++;
		const char *p = f + i;
		size_t pn = j - i;
		int neg = pn > 0 && *p == '!';
		if (neg) {
			p++;
			pn--;
		}
		if (pn && wild_match(name, p, pn)) {
			if (neg)
				return 0; /* a negated pattern overrides any other */
			yes = 1;
		}
		i = j + 1;
	}
	return yes;
}

/* The next blank-separated field of [*p, end). */
static int next_field(const char **p, const char *end, const char **f, size_t *fn)
{
	const char *s = *p;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	const char *e = s;
	while (e < end && *e != ' ' && *e != '\t' && *e != '\r')
		e++;
	*f = s;
	*fn = (size_t)(e - s);
	*p = e;
	return e > s;
}

static int csv_has(const char *csv, const char *w, size_t wn)
{
	for (const char *p = csv; p && *p;) {
		size_t l = strcspn(p, ",");
		if (l == wn && !memcmp(p, w, wn))
			return 1;
		p += l + (p[l] == ',');
	}
	return 0;
}

void knownhosts_check(const char *text, const char *host, int port, const unsigned char *key, size_t keylen,
		      struct knownhosts_result *r)
{
	memset(r, 0, sizeof(*r));
	char *name = kh_name(host, port);
	struct buf types = BUF_INIT;
	int lineno = 0, first = 0, matched = 0, revoked = 0;
	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');
		const char *end = nl ? nl : l + strlen(l);
		const char *p = l;
		l = nl ? nl + 1 : end;
		lineno++;
		const char *f, *kt, *kb;
		size_t fn, ktn, kbn;
		if (!next_field(&p, end, &f, &fn) || *f == '#')
			continue;
		int is_revoked = 0;
		if (*f == '@') {
			/* CA keys sign certificates, which gpuctl does not use; they make no host known */
			if (fn != 8 || memcmp(f, "@revoked", 8))
				continue;
			is_revoked = 1;
			if (!next_field(&p, end, &f, &fn))
				continue;
		}
		if (!next_field(&p, end, &kt, &ktn) || !next_field(&p, end, &kb, &kbn) || isdigit((unsigned char)*kt))
			continue; /* malformed, or an SSH-1 key: OpenSSH skips those too */
		if (!kh_host_match(f, fn, name))
			continue;
		unsigned char *blob = NULL;
		size_t bl = 0;
		if (b64_decode(kb, kbn, &blob, &bl) < 0)
			continue;
		int same = key && bl == keylen && !memcmp(blob, key, bl);
		free(blob);
		if (is_revoked) {
			if (same && !revoked)
				revoked = lineno;
			continue;
		}
		if (!csv_has(types.s, kt, ktn)) {
			if (types.len)
				buf_addc(&types, ',');
			buf_add(&types, kt, ktn);
		}
		if (!first)
			first = lineno;
		if (same && !matched)
			matched = lineno;
	}
	free(name);
	if (revoked) {
		r->match = KNOWNHOSTS_REVOKED;
		r->line = revoked;
	} else if (matched) {
		r->match = KNOWNHOSTS_MATCH;
		r->line = matched;
	} else if (first) {
		r->match = KNOWNHOSTS_CHANGED;
		r->line = first;
	}
	r->recorded = types.len ? buf_detach(&types) : NULL;
	buf_release(&types);
}

void knownhosts_result_release(struct knownhosts_result *r)
{
	free(r->recorded);
	r->recorded = NULL;
}

char *knownhosts_hashed_line(const char *host, int port, const unsigned char *key, size_t keylen,
			     const unsigned char *salt)
{
	char *type = blob_keytype(key, keylen);
	if (!type)
		return NULL;
	unsigned char s[20];
	if (salt)
		memcpy(s, salt, sizeof(s));
	else if (RAND_bytes(s, sizeof(s)) != 1)
		abort(); /* no randomness: nothing sensible to continue with */
	char *name = kh_name(host, port);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned ml = 0;
	HMAC(EVP_sha1(), s, sizeof(s), (const unsigned char *)name, strlen(name), mac, &ml);
	struct buf b = BUF_INIT;
	buf_adds(&b, "|1|");
	base64_encode(s, sizeof(s), 1, &b);
	buf_addc(&b, '|');
	base64_encode(mac, ml, 1, &b);
	buf_addf(&b, " %s ", type);
	base64_encode(key, keylen, 1, &b);
	buf_addc(&b, '\n');
	free(name);
	free(type);
	return buf_detach(&b);
}

int knownhosts_append(const char *path, const char *line, struct gerr *err)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return gerr_set(err, GERR_IO, "cannot open %s to add a host key: %s", path, strerror(errno));
	struct buf b = BUF_INIT;
	struct stat st;
	char last = '\n';
	/* a hand-edited file without a final newline would glue the new entry to its last line */
	if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
		buf_addc(&b, '\n');
	buf_adds(&b, line);
	/* one write with O_APPEND: nodes connecting in parallel never interleave their lines */
	ssize_t w = write(fd, b.s, b.len);
	int rc = 0;
	if (w != (ssize_t)b.len)
		rc = gerr_set(err, GERR_IO, "cannot add a host key to %s: %s", path,
			      w < 0 ? strerror(errno) : "short write");
	if (close(fd) < 0 && rc == 0)
		rc = gerr_set(err, GERR_IO, "cannot add a host key to %s: %s", path, strerror(errno));
	buf_release(&b);
	return rc;
}

static int check_host_key(struct ssh_conn *c, const struct ssh_target *t, const char *kh_path, const char *kh_text,
			  struct gerr *err)
{
	size_t klen = 0;
	int ktype = 0;
	const char *key = libssh2_session_hostkey(c->s, &klen, &ktype);
	if (!key)
		return gerr_set(err, GERR_SSH_CONN, "node %s: the server sent no host key", t->name);
	const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(c->s, LIBSSH2_HOSTKEY_HASH_SHA256);
	struct buf fp = BUF_INIT;
	if (h)
		base64_encode(h, 32, 0, &fp); /* OpenSSH writes SHA256 fingerprints unpadded */
	snprintf(c->fingerprint, sizeof(c->fingerprint), "SHA256:%s", fp.s);
	buf_release(&fp);
	char *offered = blob_keytype((const unsigned char *)key, klen);
	const char *otype = offered ? offered : "unknown-type";
	/* what ssh-keygen -R and -F take */
	char *spec = t->port == 22 ? xstrdup(t->host) : xasprintf("[%s]:%d", t->host, t->port);
	struct knownhosts_result r;
	knownhosts_check(kh_text, t->host, t->port, (const unsigned char *)key, klen, &r);
	int rc = 0;
	switch (r.match) {
	case KNOWNHOSTS_MATCH:
		break;
	case KNOWNHOSTS_REVOKED:
		rc = gerr_set(err, GERR_HOSTKEY_CHANGED,
			      "node %s: the host key of %s port %d (%s %s) is marked @revoked in %s line %d; refusing to connect",
			      t->name, t->host, t->port, otype, c->fingerprint, kh_path, r.line);
		break;
	case KNOWNHOSTS_CHANGED:
		/* OpenSSH's rule: any recorded key makes the host known, so a key of
		 * another type is a changed key, never a new one to add */
		rc = gerr_set(err, GERR_HOSTKEY_CHANGED,
			      "node %s: the host key of %s port %d has CHANGED: %s line %d records %s, the node offered %s %s; refusing to connect: someone may be intercepting the connection",
			      t->name, t->host, t->port, kh_path, r.line, r.recorded, otype, c->fingerprint);
		gerr_hint(err,
			  "if the node was reinstalled, check the new fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then remove the old entries (ssh-keygen -R '%s' -f %s)%s",
			  spec, kh_path, t->accept_new ? "; --ssh-accept-new adds keys of unknown hosts only" : "");
		break;
	case KNOWNHOSTS_UNKNOWN:
		if (t->accept_new) {
			char *line = knownhosts_hashed_line(t->host, t->port, (const unsigned char *)key, klen, NULL);
			if (!line)
				rc = gerr_set(err, GERR_SSH_CONN, "node %s: the server sent a malformed host key", t->name);
			else if (knownhosts_append(kh_path, line, err) < 0)
				rc = gerr_prefix(err, "node %s", t->name);
			free(line);
		} else {
			rc = gerr_set(err, GERR_HOSTKEY_UNKNOWN,
				      "node %s: unknown host key for %s port %d (%s %s); refusing to connect", t->name,
				      t->host, t->port, otype, c->fingerprint);
			gerr_hint(err,
				  "check the fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it to %s, or pass --ssh-accept-new",
				  kh_path);
		}
		break;
	}
	knownhosts_result_release(&r);
	free(spec);
	free(offered);
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

int ssh_send_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		/* MSG_NOSIGNAL: a peer that closed its end gives EPIPE here instead of killing gpuctl */
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			if (poll(&pf, 1, 1000) < 0 && errno != EINTR)
				return -1;
			continue;
		}
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy bytes both ways between the forwarding channel and the socketpair
 * end; the jump session is used by this thread only.  It ends when either
 * side closes: the socket end (our session went away: the channel gets EOF)
 * or the channel (the jump host or the node went away: the socket end is
 * shut down, so our session reads EOF instead of waiting). */
static void *relay_main(void *arg)
{
	struct ssh_conn *c = arg;
	LIBSSH2_SESSION *js = c->jump->s;
	char buf[16384];
	char pend[16384];
	size_t plen = 0, poff = 0;
	int sock_eof = 0;
	libssh2_session_set_blocking(js, 0);
	while (!atomic_load(&c->relay_stop)) {
		int progress = 0;
		/* socket -> channel */
		if (plen == 0 && !sock_eof) {
			ssize_t n = read(c->relay_fd, pend, sizeof(pend));
			if (n == 0) {
				sock_eof = 1;
				progress = 1;
			} else if (n > 0) {
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
		if (sock_eof && plen == 0) {
			/* our session is done with the node: tell the jump host, and stop */
			for (int i = 0; i < 50 && libssh2_channel_send_eof(c->tunnel) == LIBSSH2_ERROR_EAGAIN; i++) {
				struct pollfd p = { c->jump->fd, POLLIN | POLLOUT, 0 };
				poll(&p, 1, 20);
			}
			break;
		}
		/* channel -> socket */
		ssize_t r = libssh2_channel_read(c->tunnel, buf, sizeof(buf));
		if (r > 0) {
			if (ssh_send_all(c->relay_fd, buf, (size_t)r) < 0)
				break;
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

static int jump_error(struct gerr *err, const char *spec, const char *what, const char *part)
{
	gerr_set(err, GERR_USAGE, "jump host \"%s\": %s%s%s%s", spec, what, part ? " \"" : "", part ? part : "",
		 part ? "\"" : "");
	gerr_hint(err, "write it as [USER@]HOST[:PORT] or [USER@][IPV6-ADDRESS]:PORT");
	return -1;
}

int ssh_parse_jump(const char *spec, char **user, char **host, int *port, struct gerr *err)
{
	*user = *host = NULL;
	*port = 22;
	if (strchr(spec, ','))
		return jump_error(err, spec, "only one jump host is supported", NULL);
	const char *at = strrchr(spec, '@');
	if (at == spec)
		return jump_error(err, spec, "the user before \"@\" is empty", NULL);
	const char *h = at ? at + 1 : spec;
	const char *hend, *portp = NULL;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		if (!e)
			return jump_error(err, spec, "no \"]\" after the address", NULL);
		if (e[1] && e[1] != ':')
			return jump_error(err, spec, "expected \":PORT\" after \"]\", not", e + 1);
		if (e[1] == ':')
			portp = e + 2;
		hend = e;
		h++;
	} else {
		const char *colon = strchr(h, ':');
		if (colon && strchr(colon + 1, ':')) {
			/* two colons: a bare IPv6 address (a port needs the [ADDRESS]:PORT form) */
			hend = h + strlen(h);
		} else {
			hend = colon ? colon : h + strlen(h);
			portp = colon ? colon + 1 : NULL;
		}
	}
	if (hend == h)
		return jump_error(err, spec, "no host", NULL);
	if (portp) {
		char *end = NULL;
		errno = 0;
		long v = strtol(portp, &end, 10);
		if (!*portp || *end || errno || !isdigit((unsigned char)*portp) || v < 1 || v > 65535)
			return jump_error(err, spec, "the port is not a number from 1 to 65535:", portp);
		*port = (int)v;
	}
	*user = at ? xstrndup(spec, (size_t)(at - spec)) : NULL;
	*host = xstrndup(h, (size_t)(hend - h));
	return 0;
}

/* Connect to the jump host and open a forwarding channel to t->host:port;
 * c->fd becomes our end of a socketpair relayed to that channel. */
static int connect_via_jump(struct ssh_conn *c, const struct ssh_target *t, int port, struct gerr *err)
{
	char *juser = NULL, *jhost = NULL;
	int jport = 22;
	if (ssh_parse_jump(t->jump, &juser, &jhost, &jport, err) < 0)
		return gerr_prefix(err, "node %s", t->name);
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
		return gerr_set(err, GERR_IO, "node %s: socketpair for the jump host relay: %s", t->name, strerror(errno));
	c->fd = sp[0];
	c->relay_fd = sp[1];
	fcntl(c->relay_fd, F_SETFL, fcntl(c->relay_fd, F_GETFL) | O_NONBLOCK);
	if (pthread_create(&c->relay, NULL, relay_main, c) != 0)
		return gerr_set(err, GERR_INTERNAL, "node %s: cannot start the jump host relay", t->name);
	c->relay_started = 1;
	return 0;
}

/* The key type a host key algorithm signs with. */
static const char *alg_keytype(const char *alg)
{
	return !strncmp(alg, "rsa-sha2-", 9) ? "ssh-rsa" : alg;
}

char *ssh_hostkey_order(const char *const *supported, size_t n, const char *recorded)
{
	static const char *const want[] = { "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
					    "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", NULL };
	struct buf first = BUF_INIT, rest = BUF_INIT;
	for (int i = 0; want[i]; i++) {
		int have = 0;
		for (size_t k = 0; k < n && !have; k++)
			have = !strcmp(supported[k], want[i]);
		if (!have)
			continue;
		const char *kt = alg_keytype(want[i]);
		struct buf *b = recorded && csv_has(recorded, kt, strlen(kt)) ? &first : &rest;
		buf_addf(b, "%s%s", b->len ? "," : "", want[i]);
	}
	if (first.len && rest.len)
		buf_addc(&first, ',');
	buf_add(&first, rest.s, rest.len);
	buf_release(&rest);
	return buf_detach(&first);
}

/* Offer the host key algorithms of the keys known_hosts records for the
 * host first (as OpenSSH does), so a node recorded with its ecdsa key is
 * asked for that key rather than refused for offering ed25519; then
 * ed25519, ecdsa, rsa.  Only the methods this libssh2 supports are named:
 * libssh2 1.10 removes unknown names from a preference list with an
 * overlapping memcpy. */
static void set_hostkey_pref(LIBSSH2_SESSION *s, const char *recorded)
{
	const char **algs = NULL;
	int n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
	char *pref = ssh_hostkey_order(algs, n > 0 ? (size_t)n : 0, recorded);
	if (n > 0)
		libssh2_free(s, algs);
	if (*pref)
		libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, pref);
	free(pref);
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
	/* read before connecting: the recorded key types decide which host key to ask for */
	struct buf khtext = BUF_INIT;
	struct knownhosts_result rec = { KNOWNHOSTS_UNKNOWN, 0, NULL };
	struct stat st;
	if (stat(kh, &st) == 0 && buf_read_file(&khtext, kh, 64u << 20, err) < 0) {
		gerr_prefix(err, "node %s: known_hosts", c->name);
		goto fail;
	}
	knownhosts_check(khtext.s, t->host, tt.port, NULL, 0, &rec);
	if (t->jump && *t->jump) {
		if (connect_via_jump(c, &tt, tt.port, err) < 0)
			goto fail;
	} else if (tcp_connect(c->name, t->host, tt.port, c->timeout_ms, &c->fd, err) < 0) {
		goto fail;
	}
	c->s = libssh2_session_init();
	if (!c->s) {
		gerr_set(err, GERR_INTERNAL, "node %s: cannot create an SSH session", c->name);
		goto fail;
	}
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, c->timeout_ms);
	set_hostkey_pref(c->s, rec.recorded);
	long hs_start = mono_ms();
	if (libssh2_session_handshake(c->s, c->fd) != 0) {
		int code = libssh2_session_last_errno(c->s);
		/* a server that never answers shows as a timeout, whatever code libssh2 gives */
		int timed_out = code == LIBSSH2_ERROR_TIMEOUT || mono_ms() - hs_start >= c->timeout_ms - 50;
		if (timed_out)
			gerr_set(err, GERR_SSH_TIMEOUT, "node %s: SSH handshake with %s port %d failed: no answer within %ld s",
				 c->name, t->host, tt.port, c->timeout_ms / 1000);
		else
			gerr_set(err, GERR_SSH_CONN, "node %s: SSH handshake with %s port %d failed: %s (libssh2 error %d)",
				 c->name, t->host, tt.port, session_error(c->s), code);
		goto fail;
	}
	if (check_host_key(c, &tt, kh, khtext.s, err) < 0)
		goto fail;
	if (authenticate(c, &tt, err) < 0)
		goto fail;
	knownhosts_result_release(&rec);
	buf_release(&khtext);
	free(khdef);
	*out = c;
	return 0;
fail:
	knownhosts_result_release(&rec);
	buf_release(&khtext);
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
		atomic_store(&c->relay_stop, 1);
		pthread_join(c->relay, NULL);
	}
	if (c->relay_fd >= 0)
		close(c->relay_fd);
	if (c->tunnel) {
		libssh2_session_set_blocking(c->jump->s, 1);
		libssh2_session_set_timeout(c->jump->s, 2000);
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

/* The first words of a command line, for messages: at most 4 words and 60
 * characters of its first line, blanks collapsed (a new string). */
static char *cmd_words(const char *cmdline)
{
	struct buf b = BUF_INIT;
	const char *p = cmdline ? cmdline : "";
	int words = 0;
	while (*p && *p != '\n' && words < 4) {
		p += strspn(p, " \t");
		size_t l = strcspn(p, " \t\n");
		if (!l)
			break;
		if (b.len)
			buf_addc(&b, ' ');
		buf_add(&b, p, l);
		p += l;
		words++;
	}
	p += strspn(p, " \t");
	if (b.len > 60) {
		b.len = 57;
		b.s[b.len] = '\0';
		buf_adds(&b, "...");
	} else if (*p) {
		buf_adds(&b, " ...");
	}
	return buf_detach(&b);
}

int ssh_exit_result(const char *node, const char *cmdline, int have_status, int code, const char *signal,
		    int *exit_status, struct gerr *err)
{
	*exit_status = -1;
	if (!(signal && *signal) && have_status) {
		*exit_status = code;
		return 0;
	}
	char *w = cmd_words(cmdline);
	if (signal && *signal)
		gerr_set(err, GERR_SSH_COMMAND, "node %s: \"%s\" was killed by signal SIG%s", node, w, signal);
	else
		gerr_set(err, GERR_SSH_COMMAND,
			 "node %s: \"%s\" ended without an exit status (the connection or the node's sshd went away)", node,
			 w);
	free(w);
	return -1;
}

/* How a command that outlasts --ssh-timeout is stopped on the node.
 *
 * Closing our channel does not stop it: OpenSSH gives an exec session no
 * pty and sends its processes no signal when the channel or connection
 * goes; a command that does not write keeps running.  The "signal" channel
 * request (sent by stop_command) makes sshd killpg() the session as the
 * logged-in user, but OpenSSH refuses it for root logins ("session
 * signalling requires privilege separation": seen with Debian 12's
 * OpenSSH 9.2), older and other servers ignore it, and as the login user
 * it cannot reach a command running as root under sudo (sudo relays it).
 * So the command also runs under timeout(1) on the node, as root when sudo
 * is used: it ends 1 s after the limit (gpuctl's own deadline counts from
 * before the channel opened, so it fires first and reports the timeout),
 * and a command that ignores SIGTERM gets SIGKILL 5 s later, whether gpuctl
 * is still connected or not.  As the session's leader, timeout(1) signals
 * the whole process group.  A command killed by a signal still shows as
 * one: timeout(1) and sudo re-raise it, so sshd reports exit-signal.
 * Nodes without timeout(1) run the command plainly. */
char *ssh_remote_command(const char *cmdline, int sudo, long timeout_ms)
{
	long secs = (timeout_ms > 0 ? (timeout_ms + 999) / 1000 : 30) + 1;
	struct buf in = BUF_INIT;
	buf_adds(&in, "gpuctl_cmd=");
	sh_quote(&in, cmdline);
	buf_addf(&in,
		 "; if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 %ld sh -c \"$gpuctl_cmd\"; fi; "
		 "exec sh -c \"$gpuctl_cmd\"",
		 secs);
	if (!sudo)
		return buf_detach(&in);
	struct buf b = BUF_INIT;
	buf_adds(&b, "exec sudo -n -- sh -c ");
	sh_quote(&b, in.s);
	buf_release(&in);
	return buf_detach(&b);
}

enum exec_fail { EXEC_OK, EXEC_TIMEOUT, EXEC_TOO_MUCH, EXEC_TRANSPORT };

/* Read what is there on one stream into b (NULL: discard).  cap: the most b
 * may hold; hard: more is an error (else it is dropped). */
static enum exec_fail read_stream(LIBSSH2_CHANNEL *ch, int stream, struct buf *b, size_t start, size_t cap, int hard,
				  int *got)
{
	char tmp[16384];
	ssize_t n = libssh2_channel_read_ex(ch, stream, tmp, sizeof(tmp));
	if (n > 0) {
		*got = 1;
		if (!b)
			return EXEC_OK;
		if (b->len - start + (size_t)n > cap)
			return hard ? EXEC_TOO_MUCH : EXEC_OK;
		buf_add(b, tmp, (size_t)n);
		return EXEC_OK;
	}
	if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
		return EXEC_OK;
	return EXEC_TRANSPORT;
}

/* Ask the node to end the command (see ssh_remote_command) and close our
 * side of the channel without waiting: sshd answers the close only once
 * the command has ended, which may be up to the remote limit.  The channel
 * is left to libssh2, which frees it with the session; the session stays
 * usable for further commands (a rollback after a timed-out step). */
static void stop_command(struct ssh_conn *c, LIBSSH2_CHANNEL *ch)
{
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, 2000);
#if LIBSSH2_VERSION_NUM >= 0x010b00
	/* TERM, not KILL: sudo relays TERM to the command, and timeout(1) then
	 * follows up with KILL; a KILL would only end sudo or timeout itself */
	libssh2_channel_signal_ex(ch, "TERM", 4);
#endif
	libssh2_session_set_blocking(c->s, 0);
	libssh2_channel_close(ch);
	libssh2_session_set_blocking(c->s, 1);
}

int ssh_exec(struct ssh_conn *c, const char *cmdline, const char *stdin_data, size_t stdin_len,
	     struct buf *out, struct buf *errout, int *exit_status, struct gerr *err)
{
	*exit_status = -1;
	/* the deadline covers all of it, output or not */
	long deadline = mono_ms() + c->timeout_ms;
	char *remote = ssh_remote_command(cmdline, c->sudo, c->timeout_ms);
	struct buf errb = BUF_INIT;
	struct buf *eb = errout ? errout : &errb;
	size_t out_start = out ? out->len : 0, err_start = eb->len;
	int rc = -1;
	enum exec_fail fail = EXEC_OK;
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, c->timeout_ms);
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->s);
	if (!ch) {
		gerr_set(err, libssh2_session_last_errno(c->s) == LIBSSH2_ERROR_TIMEOUT ? GERR_SSH_TIMEOUT : GERR_SSH_CONN,
			 "node %s: cannot open an SSH channel: %s", c->name, session_error(c->s));
		goto out;
	}
	if (libssh2_channel_exec(ch, remote) != 0) {
		gerr_set(err, libssh2_session_last_errno(c->s) == LIBSSH2_ERROR_TIMEOUT ? GERR_SSH_TIMEOUT : GERR_SSH_CONN,
			 "node %s: cannot start the command: %s", c->name, session_error(c->s));
		goto out_ch;
	}
	/* write stdin, read both streams, in non-blocking mode under the one deadline;
	 * interleaved, so a command that prints before it reads cannot deadlock us */
	libssh2_session_set_blocking(c->s, 0);
	size_t in_off = stdin_data ? 0 : stdin_len;
	int eof_sent = 0;
	for (;;) {
		int got = 0;
		if (in_off < stdin_len) {
			ssize_t w = libssh2_channel_write(ch, stdin_data + in_off, stdin_len - in_off);
			if (w > 0) {
				in_off += (size_t)w;
				got = 1;
			} else if (w < 0 && w != LIBSSH2_ERROR_EAGAIN) {
				if (!libssh2_channel_eof(ch)) {
					fail = EXEC_TRANSPORT;
					break;
				}
				in_off = stdin_len; /* the command ended without reading all of it */
			}
		}
		if (in_off >= stdin_len && !eof_sent) {
			int r = libssh2_channel_send_eof(ch);
			if (r == 0)
				eof_sent = 1;
			else if (r != LIBSSH2_ERROR_EAGAIN)
				eof_sent = 1; /* the channel is closing anyway; reading tells the rest */
		}
		fail = read_stream(ch, 0, out, out_start, SSH_MAX_OUTPUT, 1, &got);
		if (fail == EXEC_OK)
			fail = read_stream(ch, SSH_EXTENDED_DATA_STDERR, eb, err_start,
					   errout ? SSH_MAX_OUTPUT : MAX_PRIVATE_STDERR, errout != NULL, &got);
		if (fail != EXEC_OK)
			break;
		if (libssh2_channel_eof(ch))
			break;
		long left = deadline - mono_ms();
		if (left <= 0) {
			fail = EXEC_TIMEOUT;
			break;
		}
		if (got)
			continue;
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
	int have_status = 0;
	if (fail == EXEC_OK) {
		/* the exit status comes before the server closes the channel; a
		 * command may also close its output and go on running: wait for
		 * the close under the same deadline */
		libssh2_session_set_blocking(c->s, 1);
		long left = deadline - mono_ms();
		libssh2_session_set_timeout(c->s, left > 0 ? left : 1);
		int wc = libssh2_channel_wait_closed(ch);
		if (wc == LIBSSH2_ERROR_TIMEOUT || (wc != 0 && mono_ms() >= deadline))
			fail = EXEC_TIMEOUT;
		/* libssh2 has no flag for "an exit-status came" and reads 0 when none
		 * did; OpenSSH always sends exit-status or exit-signal before it closes
		 * the channel, so a close that never came (the connection broke after
		 * the output ended) is what a missing status looks like */
		have_status = wc == 0;
	}
	switch (fail) {
	case EXEC_OK:
		break;
	case EXEC_TIMEOUT: {
		char *w = cmd_words(cmdline);
		stop_command(c, ch);
		ch = NULL;
		gerr_set(err, GERR_SSH_TIMEOUT, "node %s: \"%s\" did not finish within %ld s; stopped it", c->name, w,
			 c->timeout_ms / 1000);
		gerr_hint(err, "give it longer with --ssh-timeout SECONDS");
		free(w);
		goto out_ch;
	}
	case EXEC_TOO_MUCH: {
		char *w = cmd_words(cmdline);
		stop_command(c, ch);
		ch = NULL;
		gerr_set(err, GERR_SSH_COMMAND, "node %s: \"%s\" printed more than %u MiB; stopped it", c->name, w,
			 SSH_MAX_OUTPUT >> 20);
		free(w);
		goto out_ch;
	}
	case EXEC_TRANSPORT:
		libssh2_session_set_blocking(c->s, 1);
		gerr_set(err, GERR_SSH_CONN, "node %s: reading the output failed: %s", c->name, session_error(c->s));
		goto out_ch;
	}
	char *sig = NULL;
	libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL);
	int code = libssh2_channel_get_exit_status(ch);
	int erc = ssh_exit_result(c->name, cmdline, have_status, code, sig, exit_status, err);
	if (sig)
		libssh2_free(c->s, sig);
	if (erc < 0)
		goto out_ch;
	if (c->sudo && *exit_status != 0 && strstr(eb->s + err_start, "sudo: a password is required")) {
		*exit_status = -1;
		gerr_set(err, GERR_SSH_AUTH,
			 "node %s: user %s needs a password for sudo; gpuctl uses sudo -n and never types passwords",
			 c->name, c->user);
		gerr_hint(err, "allow passwordless sudo for %s on the node (NOPASSWD in /etc/sudoers.d) or connect as root",
			  c->user);
		goto out_ch;
	}
	rc = 0;
out_ch:
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, 2000);
	if (ch)
		libssh2_channel_free(ch);
out:
	libssh2_session_set_blocking(c->s, 1);
	libssh2_session_set_timeout(c->s, c->timeout_ms);
	free(remote);
	buf_release(&errb);
	return rc;
}
