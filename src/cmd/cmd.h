/* Private to src/cmd: the subcommand entry points and the node-edit engine
 * shared by label and taint. */
#ifndef GPUCTL_CMD_H
#define GPUCTL_CMD_H

#include <cjson/cJSON.h>

#include "gpuctl/cli.h"
#include "gpuctl/err.h"

int cmd_label(struct gctx *g, int argc, char **argv);
int cmd_taint(struct gctx *g, int argc, char **argv);
int cmd_deploy(struct gctx *g, int argc, char **argv);
int cmd_slice(struct gctx *g, int argc, char **argv);
int cmd_smoke_test(struct gctx *g, int argc, char **argv);
/* smoke-test's pinned image (versions.yaml.tmpl smokeTest.image), new string. */
int smoke_default_image(const struct gctx *g, char **image, struct gerr *err);
/* What a smoke run left in the cluster, and how to remove it, on stderr. */
struct smoke_left;
void smoke_print_left(const struct gctx *g, const char *ns, const struct smoke_left *left);
int cmd_validate(struct gctx *g, int argc, char **argv);
int cmd_cleanup(struct gctx *g, int argc, char **argv);
int cmd_complete(struct gctx *g, int argc, char **argv);

/* ---- label and taint: output and the shared command body ---- */

#include "gpuctl/nodes.h"

/* Print results: one line per node (or -o json/yaml with kind); returns the
 * exit code (0 all done, 1 some failed, 3 cluster access failures).  The
 * changes and state of r move into the report (NULL in r afterwards). */
int edit_report(struct gctx *g, const char *kind, const char *state_field, const char *verb,
		enum dry_run dry, struct edit_result *r, size_t n);

/* Connect, resolve the targets, edit, report; returns the exit code. */
int edit_run(struct gctx *g, const struct node_target *t, edit_plan_fn plan, void *ud, enum dry_run dry,
	     const char *kind, const char *state_field, const char *verb);

/* What label and taint each bring to the shared command body: their
 * argument syntax, defaults and plan.  plan is the command's own state. */
struct edit_cmd {
	const char *name;          /* "label" */
	const char *usage;
	const char *summary;
	const char *overwrite_help;
	const char *kind;          /* NodeLabelResult */
	const char *state_field;   /* labels */
	const char *verb;          /* labeled */
	int (*is_op)(const char *arg);
	int (*add_op)(void *plan, const char *arg, struct gerr *err);
	int (*check_ops)(void *plan, struct gerr *err);
	size_t (*count_ops)(void *plan);
	int (*default_ops)(struct gctx *g, void *plan, struct gerr *err);
	void (*set_overwrite)(void *plan, int overwrite);
	edit_plan_fn plan;
	unsigned parts;            /* the parts of a Node plan reads (enum node_part); 0: all */
	const struct opt *extra;   /* the command's own flags (at most 2, OPT_END-terminated), or NULL */
	/* after the operations are known (given or defaults): add what the
	 * command's own flags ask for (GERR_USAGE for a bad flag value); may be NULL */
	int (*complete)(struct gctx *g, void *plan, struct gerr *err);
	/* the parts of a Node the command's own flags make plan read too (then the
	 * plan's state is an object of fields, not state_field's value); may be NULL */
	unsigned (*more_parts)(void *plan);
};

/* Parse flags and arguments (NODE... vs operations), validate, fill
 * defaults, run; returns the exit code. */
int edit_cmd_main(struct gctx *g, int argc, char **argv, const struct edit_cmd *c, void *plan);

/* ---- reaching GPU nodes over SSH: shared by deploy and validate ---- */

#include "gpuctl/node.h"

struct node_access {
	/* flags */
	const char *inventory, *ssh_user, *identity, *known_hosts, *jump, *min_driver;
	int ssh_port, ssh_timeout, accept_new, parallel, from_inventory;
	/* completed */
	struct inventory inv;
	struct node_spec flags;   /* what the flags say (restart/check commands: deploy's) */
	const char *passphrase;   /* GPUCTL_SSH_PASSPHRASE */
};

#define NODE_ACCESS_OPTS(a)                                                                                            \
	{ "inventory", 0, OPT_STRING, &(a)->inventory, "FILE", "how to reach nodes (see gpuctl-inventory(5))", NULL },   \
	{ "ssh-user", 0, OPT_STRING, &(a)->ssh_user, "USER", "SSH user (default root; others use sudo -n)", NULL },      \
	{ "identity", 'i', OPT_STRING, &(a)->identity, "FILE", "SSH private key (default: ssh-agent, ~/.ssh/id_*)", NULL }, \
	{ "ssh-port", 0, OPT_INT, &(a)->ssh_port, "PORT", "SSH port (default 22)", NULL },                                \
	{ "ssh-timeout", 0, OPT_INT, &(a)->ssh_timeout, "SECONDS", "limit for each connection and command (default 30)", NULL }, \
	{ "ssh-accept-new", 0, OPT_BOOL, &(a)->accept_new, NULL, "add unknown host keys to known_hosts (never changed ones)", NULL }, \
	{ "ssh-jump", 'J', OPT_STRING, &(a)->jump, "[USER@]HOST[:PORT]", "reach the nodes through this SSH server (like ssh -J)", NULL }, \
	{ "known-hosts", 0, OPT_STRING, &(a)->known_hosts, "FILE", "known_hosts file (default ~/.ssh/known_hosts)", NULL }, \
	{ "parallel", 0, OPT_INT, &(a)->parallel, "N", "nodes worked on at once (default 32)", NULL },                   \
	{ "min-driver", 0, OPT_STRING, &(a)->min_driver, "VERSION", "oldest acceptable NVIDIA driver (default 470)", NULL }, \
	{ "from-inventory", 0, OPT_BOOL, &(a)->from_inventory, NULL, "take the nodes from the inventory, not the cluster (with --only nodes)", NULL }

void node_access_init(struct node_access *a);

/* The preamble every node-access command (deploy, validate) runs after
 * parsing its flags: -o among formats, --only/--skip among groups, the
 * target (NODE... and -l) checked, the node-access flags completed (the
 * inventory loaded), and --from-inventory only with the node group alone and
 * without -l.  On error err says why: GERR_USAGE (print usage, exit 2) or a
 * configuration error naming the file (exit 2). */
struct node_cmd {
	const char *const *formats;   /* -o values allowed, NULL-terminated */
	const char *const *groups;    /* --only/--skip values, NULL-terminated */
	const char *group_word;       /* "phase", "group": for messages */
	const char *node_group;       /* the group that works over SSH: "nodes" */
	const struct strlist *only, *skip;
	const char *selector;         /* -l */
	char **rest;                  /* positional arguments: node names */
	int nrest;
};
int node_cmd_complete(struct gctx *g, const struct node_cmd *c, struct node_access *a, struct node_target *t,
		      struct gerr *err);
/* Check the flags (GERR_USAGE) and load the inventory (its errors name the file). */
int node_access_complete(struct node_access *a, struct gerr *err);
void node_access_release(struct node_access *a);
/* How to reach the cluster Node `node`: flags over its inventory entry over
 * the inventory defaults, the address from its InternalIP otherwise.
 * *talos_os is set (borrowed from node) when it runs Talos (no SSH). */
void node_access_spec(const struct node_access *a, const cJSON *node, struct node_spec *spec, const char **talos_os);
/* --from-inventory: the inventory's nodes (those named, or all) as minimal
 * Node objects ({metadata: {name}}), without asking the cluster; names
 * missing from the inventory are an error naming them. */
int node_access_inventory_nodes(const struct node_access *a, char **names, size_t n, cJSON **nodes, struct gerr *err);
/* A fresh connection for a rollback after the first broke (the reconnect
 * hook of struct containerd_opts): ud is a struct node_access_ref.  sshd
 * that just died takes a moment to come back, so connection failures are
 * tried again for up to --ssh-timeout; a refused host key or login is not. */
struct node_access_ref {
	const struct node_access *a;
	const struct node_spec *spec;
};
int node_access_reconnect(void *ud, struct ssh_conn **c, struct gerr *err);
/* Connect to a node and run the read-only probe (errors name the node). */
int node_access_probe(const struct node_access *a, const struct node_spec *spec, struct ssh_conn **c,
		      struct probe_result *p, struct gerr *err);
/* The containerd options for one node: base with the node's inventory
 * settings (restart/check commands) over it, the inventory's configPath and
 * flavour over what the probe found, and the reconnect hook bound to ref
 * (which must outlive the options). */
struct containerd_opts node_access_containerd_opts(const struct containerd_opts *base, const struct node_spec *spec,
						   struct probe_result *p, struct node_access_ref *ref);
/* Connect to a node (host key checked, authenticated). */
int node_access_connect(const struct node_access *a, const struct node_spec *spec, struct ssh_conn **c, struct gerr *err);
/* The machine-config patch that does on Talos what deploy does over SSH
 * (templates/talos-patch.yaml.tmpl, rendered and parsed), appended to text. */
int talos_patch_render(const struct gctx *g, struct buf *text, struct gerr *err);

#endif
