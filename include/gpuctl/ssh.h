/* ssh.h - running commands on nodes over SSH (libssh2), safely.
 *
 * Host keys are checked against an OpenSSH known_hosts file (hashed entries
 * too); an unknown or changed key is refused with its SHA256 fingerprint
 * unless accept_new (OpenSSH's StrictHostKeyChecking=accept-new) allows
 * adding an unknown one.  Every connect and command has a timeout.  Nothing
 * reaches the remote shell unquoted: build commands with sh_quote/sh_join.
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
	long timeout_ms;           /* connect, handshake and each command; default 30 s */
	int sudo;                  /* run commands through sudo -n when user is not root */
	const char *jump;          /* [user@]host[:port]: reach host through this SSH server (ProxyJump);
				      it is checked and authenticated like the node itself */
};

struct ssh_conn;

/* Connect, verify the host key, authenticate.  *out owned by the caller. */
int ssh_open(const struct ssh_target *t, struct ssh_conn **out, struct gerr *err);
void ssh_close(struct ssh_conn *c);

/* Run a shell command line (already quoted).  stdin_data may be NULL.
 * With sudo (target.sudo and a non-root user) it runs under `sudo -n sh -c`.
 * Fills out/errout (may be NULL) and *exit_status; -1 only on transport
 * errors, timeouts, or a sudo that wants a password. */
int ssh_exec(struct ssh_conn *c, const char *cmdline, const char *stdin_data, size_t stdin_len,
	     struct buf *out, struct buf *errout, int *exit_status, struct gerr *err);

/* SHA256 fingerprint of the server's host key, as OpenSSH prints it ("SHA256:..."). */
const char *ssh_fingerprint(const struct ssh_conn *c);

/* Append s to b as one POSIX shell word ('...' with embedded quotes escaped). */
void sh_quote(struct buf *b, const char *s);
/* Quote each argument and join with spaces (a new string, caller frees). */
char *sh_join(const char *const *argv);

#endif
