/* remote.h - changing files on a node: the one "back up, write, verify,
 * restore" helper used by every file gpuctl changes over SSH (containerd's
 * config.toml, the conf.d drop-in, the k3s/rke2 template, nvidia-ctk's
 * output).
 *
 * A change set is taken under a per-node lock (a lease, see remote.c), backs
 * up each file the first time it is written (unique names; a file that did
 * not exist is recorded as absent), writes atomically (size and SHA-256 sent
 * with the content and checked on the node before the rename; file and
 * folder fsynced; mode and owner kept), and rolls back by restoring every
 * file and proving it by hash.  Every remote script ends with a marker line,
 * so a command whose output was cut (no exit status, a broken connection)
 * never reads as a success.
 *
 * The script builders and reply parsers are public and pure so that they can
 * be tested, and run under /bin/sh locally, without SSH.
 */
#ifndef GPUCTL_REMOTE_H
#define GPUCTL_REMOTE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"
#include "gpuctl/ssh.h"

/* Runs a command line on the node; same contract as ssh_exec (conn is
 * whatever the opts' reconnect returns; the default is ssh_exec). */
typedef int (*remote_exec_fn)(struct ssh_conn *conn, const char *cmdline, const char *in, size_t in_len,
			      struct buf *out, struct buf *errout, int *status, struct gerr *err);
/* Opens a fresh connection to the same node (for a rollback after the first
 * one broke); the change set closes it with ssh_close (or the close hook). */
typedef int (*remote_reconnect_fn)(void *ud, struct ssh_conn **conn, struct gerr *err);

struct remote_opts {
	const char *node;          /* node name: messages start "node NAME: "; NULL: the caller adds it */
	int read_only;             /* no lock, no writes (a dry run reads through the same calls) */
	const char *lockdir;       /* folder of the lock file (.gpuctl.lock), made when missing */
	long lease_s;              /* how long a lock outlives a run that died; 0: 600 s */
	remote_reconnect_fn reconnect; /* NULL: no second try */
	void *reconnect_ud;
	remote_exec_fn exec;       /* NULL: ssh_exec (tests run scripts locally) */
	void (*close)(struct ssh_conn *conn); /* closes a reconnected conn; NULL: ssh_close */
};

/* The mode of a file gpuctl writes: an existing file keeps its mode and
 * owner; a new one gets new_mode.  Either way never more than cap (auth
 * material copied from a 0600 file stays 0600). */
struct remote_mode {
	unsigned new_mode; /* 0: 0644 */
	unsigned cap;      /* 0: 0777 (no cap) */
};

/* What is known of a file on the node. */
struct remote_stat {
	int exists;
	unsigned mode;   /* permission bits */
	long uid, gid;
};

struct remote_change;

/* Take the node's lock (GERR_CONFLICT "node X: another gpuctl is changing
 * this node (lock L held)" when another run holds it) and start a change set
 * on conn (borrowed: the caller closes it after remote_change_free). */
int remote_change_begin(struct ssh_conn *conn, const struct remote_opts *o, struct remote_change **out,
			struct gerr *err);
/* Read a file: its content in text (when it exists) and st. */
int remote_change_read(struct remote_change *chg, const char *path, struct buf *text, struct remote_stat *st,
		       struct gerr *err);
/* Back up path once (before its first change); *backup (borrowed, NULL when the
 * file was absent) names the copy. */
int remote_change_backup(struct remote_change *chg, const char *path, const char **backup, struct gerr *err);
/* Back up path (first time), then replace it atomically with content. */
int remote_change_write(struct remote_change *chg, const char *path, const char *content, size_t len,
			struct remote_mode mode, struct gerr *err);
/* Back up path (first time), then remove it, proven absent; a rollback
 * restores it from the backup (cleanup removes the files gpuctl added). */
int remote_change_remove(struct remote_change *chg, const char *path, struct gerr *err);
/* Run a command line under the change set's lock (restart, checks); its
 * output must end with the exit status marker, else GERR_SSH_COMMAND.
 * After a rollback began it reconnects when the connection broke. */
int remote_change_exec(struct remote_change *chg, const char *cmdline, const char *in, struct buf *out,
		       struct buf *errout, int *status, struct gerr *err);
/* Unique path for a scratch file beside path (a new string; the caller removes it). */
char *remote_change_scratch(struct remote_change *chg, const char *path);
/* The change is good: release the lock; backups stay on the node. */
int remote_change_commit(struct remote_change *chg, struct gerr *err);
/* Restore every file written (the lock stays held: restart and check
 * through remote_change_exec, then free): returns 0 when each is proven equal to its
 * backup by hash (or absent when it was absent), else -1 with err saying
 * which not, its hint and *manual (a new array of shell commands, owned by
 * the caller) the commands that finish it by hand.  Reconnects once when
 * the connection broke.  Releases the lock when it can. */
int remote_change_rollback(struct remote_change *chg, cJSON **manual, struct gerr *err);
/* How many files the change set wrote (0: nothing to roll back). */
size_t remote_change_written(const struct remote_change *chg);
/* Release (an unreleased lock is released, best effort) and free. */
void remote_change_free(struct remote_change *chg);

/* ---- pure parts, public for the tests ---- */

/* SHA-256 of data as 64 lowercase hex digits (out has room for 65). */
void remote_sha256_hex(const void *data, size_t len, char out[65]);
/* A backup name: "<path>.gpuctl-backup-<UTC time>-<rand>" (rand: hex, never empty). */
char *remote_backup_name(const char *path, long when, const char *rand);
/* Fresh random hex (2*nbytes digits), from OpenSSL's RAND_bytes. */
char *remote_random_hex(size_t nbytes);

/* The lock prologue of every script: takes flock on lockdir/.gpuctl.lock for
 * the instant it checks the lease; begin=1 takes a free or expired lease. */
void remote_script_lease(struct buf *b, const char *lockdir, const char *token, long lease_s, int begin);
/* Reads path: "@@stat MODE UID GID\n" then the content, or "@@absent\n". */
void remote_script_read(struct buf *b, const char *path);
/* Backs up path to backup: "@@backup present SIZE SHA\n" or "@@backup absent\n". */
void remote_script_backup(struct buf *b, const char *path, const char *backup);
/* Writes stdin (size bytes, SHA-256 sha) to path via tmp: refused with
 * "@@mismatch SIZE SHA" when what arrived differs; "@@written\n" when done. */
void remote_script_write(struct buf *b, const char *path, const char *tmp, size_t size, const char *sha,
			 struct remote_mode mode);
/* Restores path from backup (existed) or removes it, then proves it:
 * "@@restored SHA\n" or "@@removed\n". */
void remote_script_restore(struct buf *b, const char *path, const char *backup, int existed);
/* Releases the lease when it is ours. */
void remote_script_release(struct buf *b, const char *lockdir, const char *token);

/* Interpret replies.  Each returns 0 when the script proved success, else -1
 * with err (what went wrong with path; node is the message's prefix, "node X: " or ""). */
int remote_reply_lease(const char *out, const char *node, const char *lockdir, struct gerr *err);
int remote_reply_read(const char *out, size_t len, struct buf *text, struct remote_stat *st, const char *node,
		      const char *path, struct gerr *err);
/* *existed, and the backup's sha (65 bytes) when present. */
int remote_reply_backup(const char *out, int *existed, char sha[65], const char *node, const char *path,
			struct gerr *err);
int remote_reply_write(const char *out, const char *node, const char *path, struct gerr *err);
/* Proven restored: "@@restored SHA" with SHA == want (existed), or "@@removed". */
int remote_reply_restore(const char *out, int existed, const char *want_sha, const char *node, const char *path,
			 struct gerr *err);
/* Set err's hint to "finish the rollback by hand on the node:" and the steps. */
void remote_manual_hint(struct gerr *err, const cJSON *steps);
/* The command that restores one file by hand. */
char *remote_manual_restore(const char *path, const char *backup, int existed);

#endif
