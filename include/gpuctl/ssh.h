/* ssh.h - running commands on nodes over SSH (libssh2), safely.
 *
 * Host keys are checked against an OpenSSH known_hosts file (hashed entries
 * too).  A host with any recorded key is known: only a key equal to one of
 * its recorded keys is accepted, whatever its type; anything else is a
 * CHANGED key, refused with its SHA256 fingerprint.  accept_new (OpenSSH's
 * StrictHostKeyChecking=accept-new) adds keys of unknown hosts only, hashed
 * as with HashKnownHosts.  Every connect and command has a timeout that
 * bounds all of it; a command that outlasts it is stopped on the node.
 * Nothing reaches the remote shell unquoted: build commands with
 * sh_quote/sh_join.
 */
#ifndef GPUCTL_SSH_H
#define GPUCTL_SSH_H

#include <stddef.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

struct ssh_target {
	const char *name;          /* node name, for messages */
	const char *host;          /* address */
	int port;                  /* default 22 */
	const char *user;          /* default root */
	const char *identity_file; /* NULL: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa */
	const char *passphrase;    /* for an encrypted key (a secret) */
	const char *known_hosts;   /* default ~/.ssh/known_hosts */
	int accept_new;            /* add unknown host keys (never changed ones) */
	long timeout_ms;           /* connect, handshake, and each command from start to end; default 30 s */
	int sudo;                  /* run commands through sudo -n when user is not root */
	const char *jump;          /* [user@]host[:port], [user@][v6addr]:port or a bare IPv6 address:
				      reach host through this SSH server (ProxyJump); it is checked and
				      authenticated like the node itself */
};

struct ssh_conn;

/* Connect, verify the host key, authenticate.  *out owned by the caller. */
int ssh_open(const struct ssh_target *t, struct ssh_conn **out, struct gerr *err);
void ssh_close(struct ssh_conn *c);

/* Run a shell command line (already quoted).  stdin_data may be NULL.
 * With sudo (target.sudo and a non-root user) it runs under `sudo -n sh -c`.
 * Fills out/errout (may be NULL; each captures at most SSH_MAX_OUTPUT bytes)
 * and *exit_status.  Returns 0 only when the command exited with a status
 * (which may be non-zero).  Returns -1 with *exit_status = -1 on transport
 * errors (GERR_SSH_CONN), when the command outlasted the timeout (counted
 * from the start, output or not; GERR_SSH_TIMEOUT; it is stopped on the
 * node), printed more than SSH_MAX_OUTPUT, was killed by a signal or ended
 * without an exit status (GERR_SSH_COMMAND), or a sudo wants a password
 * (GERR_SSH_AUTH). */
int ssh_exec(struct ssh_conn *c, const char *cmdline, const char *stdin_data, size_t stdin_len,
	     struct buf *out, struct buf *errout, int *exit_status, struct gerr *err);

/* SHA256 fingerprint of the server's host key, as OpenSSH prints it ("SHA256:..."). */
const char *ssh_fingerprint(const struct ssh_conn *c);

/* Append s to b as one POSIX shell word ('...' with embedded quotes escaped). */
void sh_quote(struct buf *b, const char *s);
/* Quote each argument and join with spaces (a new string, caller frees). */
char *sh_join(const char *const *argv);

/* The most stdout (and stderr) that ssh_exec captures from one command. */
#define SSH_MAX_OUTPUT (16u << 20)

/* ---- the pieces of ssh.c that need no server (public for the unit tests) ---- */

enum knownhosts_match {
	KNOWNHOSTS_UNKNOWN, /* no entry names the host */
	KNOWNHOSTS_MATCH,   /* an entry for the host has this very key */
	KNOWNHOSTS_CHANGED, /* the host has entries, none with this key (of any type) */
	KNOWNHOSTS_REVOKED, /* the key is marked @revoked for the host */
};

struct knownhosts_result {
	enum knownhosts_match match;
	int line;       /* 1-based: the matching entry, the revoked one, or the host's first entry; 0 if none */
	char *recorded; /* owned: key types recorded for the host ("ecdsa-sha2-nistp256,ssh-rsa"), file
			   order without repeats; NULL when none */
};

/* Look host (port 22: "host", else "[host]:port", as OpenSSH) up in the
 * text of a known_hosts file: plain names with * ? and ! patterns, and
 * hashed |1|salt|hmac entries; @cert-authority lines and malformed lines
 * are skipped.  key/keylen is the offered host key blob (SSH wire format),
 * or NULL to learn only which types are recorded.  Fills r (release it with
 * knownhosts_result_release). */
void knownhosts_check(const char *text, const char *host, int port, const unsigned char *key, size_t keylen,
		      struct knownhosts_result *r);
void knownhosts_result_release(struct knownhosts_result *r);

/* The known_hosts line for host:port and key, hashed as OpenSSH's
 * HashKnownHosts writes it: "|1|base64(salt)|base64(HMAC-SHA1(salt, name)) TYPE BASE64KEY\n"
 * where name is "host" or "[host]:port".  salt (20 bytes) NULL: a random
 * one.  A new string, or NULL when key is not an SSH key blob. */
char *knownhosts_hashed_line(const char *host, int port, const unsigned char *key, size_t keylen,
			     const unsigned char *salt);

/* Append line to the known_hosts file path in one write (O_APPEND; a file
 * it creates gets mode 0600), after a newline if the file lacks a final one.
 * GERR_IO naming path on failure. */
int knownhosts_append(const char *path, const char *line, struct gerr *err);

/* The host key algorithms to offer, comma-separated (a new string): of
 * ssh-ed25519, ecdsa-sha2-nistp256/384/521, rsa-sha2-512, rsa-sha2-256 and
 * ssh-rsa, those in supported[0..n), with the ones whose key type is in
 * recorded (comma-separated, may be NULL) first, as OpenSSH orders them, so
 * a host recorded with one key type is asked for that key. */
char *ssh_hostkey_order(const char *const *supported, size_t n, const char *recorded);

/* Parse a jump host: [USER@]HOST[:PORT], [USER@][IPV6]:PORT, [USER@][IPV6],
 * or a bare IPv6 address (no port).  *user (NULL when none) and *host are
 * new strings; *port defaults to 22.  GERR_USAGE naming spec and the bad
 * part (a port that is not a number from 1 to 65535, an empty host, a
 * missing "]", a list of jump hosts). */
int ssh_parse_jump(const char *spec, char **user, char **host, int *port, struct gerr *err);

/* What a finished command's outcome means: 0 and *exit_status = code when
 * the command sent an exit status and no signal; else -1, *exit_status = -1
 * and GERR_SSH_COMMAND naming node, the command's first words and the
 * signal (SSH names, "KILL"), or saying that no exit status came. */
int ssh_exit_result(const char *node, const char *cmdline, int have_status, int code, const char *signal,
		    int *exit_status, struct gerr *err);

/* The command line ssh_exec sends for cmdline (a new string): run by sh
 * under timeout(1) with a limit a little over timeout_ms and a KILL 5 s
 * after that, so the command ends on the node even when gpuctl is gone or
 * the server ignores the channel signal; with sudo the whole of it runs
 * under `sudo -n`.  Falls back to plain sh where the node has no timeout. */
char *ssh_remote_command(const char *cmdline, int sudo, long timeout_ms);

/* Write all of p to the socket fd without raising SIGPIPE (MSG_NOSIGNAL),
 * waiting while it is full; -1 with errno (EPIPE when the peer closed). */
int ssh_send_all(int fd, const void *p, size_t n);

#endif
