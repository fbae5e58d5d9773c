/* prep.h - what containerd.c (containerd 1.x/2.x, nvidia-ctk) and k3s.c
 * (k3s/rke2 templates) share while preparing a node: every command and every
 * file change goes through one remote change set (gpuctl/remote.h). */
#ifndef GPUCTL_NODE_PREP_H
#define GPUCTL_NODE_PREP_H

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/remote.h"

struct prep_ctx {
	struct ssh_conn *c;
	struct prep_result *r;
	struct remote_change *chg; /* the node's lock and the files changed (read-only in a dry run) */
};

/* Start the change set (the lock in lockdir, unless dry_run); errors in r->err. */
int prep_begin(struct prep_ctx *x, const struct containerd_opts *o, const char *lockdir);
/* Record a step ("wrote %s"). */
void prep_step(struct prep_ctx *x, const char *fmt, const char *a);
/* Run a command line under the lock; -1 on transport errors (r->err set). */
int prep_run(struct prep_ctx *x, const char *cmd, struct buf *out, struct buf *errb, int *status);
/* Read a file: 1 exists (content in text, stat in st when not NULL), 0 absent, -1 error (r->err). */
int prep_read(struct prep_ctx *x, const char *path, struct buf *text, struct remote_stat *st);
/* Back up (once) and write a file; -1 with r->err. */
int prep_write(struct prep_ctx *x, const char *path, const char *content, struct remote_mode mode);
/* Wait (10 tries, 1 s apart) for check to succeed. */
int prep_service_ok(struct prep_ctx *x, const char *check);
/* Roll every written file back, then (restart != NULL) restart and check the
 * service.  Sets r->status (rolled-back or rollback-failed with
 * r->manual_steps) and words r->err: what (e.g. "original configuration")
 * and service (e.g. "containerd") go into the messages users know. */
void prep_rollback(struct prep_ctx *x, const char *restart, const char *check, const char *what, const char *service);
/* The end: release the lock, free the change set. */
void prep_end(struct prep_ctx *x);
/* The folder of path (a new string). */
char *prep_dir(const char *path);

/* k3s/rke2 (src/node/k3s.c) */
/* The active unit of a k3s/rke2 node (FLAVOUR-agent, FLAVOUR-server or
 * FLAVOUR), or NULL (a new string). */
char *k3s_active_unit(struct prep_ctx *x, const char *fl);
int k3s_prepare(struct prep_ctx *x, const struct probe_result *p, const struct containerd_opts *o, const char *rt);

#endif
