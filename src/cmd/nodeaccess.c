/* Reaching GPU nodes over SSH: the flags, the inventory and the Node's
 * address, shared by deploy and validate. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "gpuctl/util.h"
#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/nvsmi.h"
#include "gpuctl/render.h"

void node_access_init(struct node_access *a)
{
	memset(a, 0, sizeof(*a));
	a->ssh_timeout = 30;
	a->parallel = 32;
	a->min_driver = "470";
	a->flags.sudo = -1;
	a->inv.defaults.sudo = -1;
}

/* A malformed jump host fails before any node is tried, not once per node. */
static int check_jump(const char *spec, enum gerr_code code, struct gerr *err)
{
	char *user = NULL, *host = NULL;
	int port = 0;
	if (!spec || !*spec)
		return 0;
	int rc = ssh_parse_jump(spec, &user, &host, &port, err);
	free(user);
	free(host);
	if (rc < 0)
		err->code = code;
	return rc;
}

int node_access_complete(struct node_access *a, struct gerr *err)
{
	if (a->ssh_timeout <= 0 || a->parallel <= 0)
		return gerr_set(err, GERR_USAGE, "--ssh-timeout and --parallel must be positive");
	if (a->ssh_port < 0 || a->ssh_port > 65535)
		return gerr_set(err, GERR_USAGE, "--ssh-port must be from 1 to 65535");
	if (version_cmp(a->min_driver, "0") == -2)
		return gerr_set(err, GERR_USAGE, "--min-driver \"%s\" is not a version like 470 or 535.104", a->min_driver);
	if (a->from_inventory && !a->inventory)
		return gerr_set(err, GERR_USAGE, "--from-inventory needs --inventory FILE");
	if (a->inventory && inventory_load(a->inventory, &a->inv, err) < 0)
		return -1;
	if (check_jump(a->jump, GERR_USAGE, err) < 0)
		return gerr_prefix(err, "--ssh-jump");
	if (check_jump(a->inv.defaults.jump_host, GERR_CONFIG, err) < 0)
		return gerr_prefix(err, "%s: defaults.jumpHost", a->inv.path);
	for (size_t i = 0; i < a->inv.n; i++)
		if (check_jump(a->inv.nodes[i].jump_host, GERR_CONFIG, err) < 0)
			return gerr_prefix(err, "%s: nodes[%zu].jumpHost", a->inv.path, i);
	if (a->ssh_user)
		a->flags.user = xstrdup(a->ssh_user);
	if (a->identity)
		a->flags.identity_file = xstrdup(a->identity);
	if (a->known_hosts)
		a->flags.known_hosts = xstrdup(a->known_hosts);
	if (a->jump)
		a->flags.jump_host = xstrdup(a->jump);
	a->flags.port = a->ssh_port;
	a->passphrase = getenv("GPUCTL_SSH_PASSPHRASE");
	return 0;
}

void node_access_release(struct node_access *a)
{
	node_spec_release(&a->flags);
	inventory_release(&a->inv);
}

void node_access_spec(const struct node_access *a, const cJSON *node, struct node_spec *spec, const char **talos_os)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(node, "status");
	memset(spec, 0, sizeof(*spec));
	spec->sudo = -1;
	spec->name = xstrdup(json_str(md, "name") ? json_str(md, "name") : "");
	/* flags override the inventory entry, which overrides its defaults */
	node_spec_fill(spec, &a->flags);
	const struct node_spec *e = a->inv.path ? inventory_find(&a->inv, spec->name) : NULL;
	if (e)
		node_spec_fill(spec, e);
	node_spec_fill(spec, &a->inv.defaults);
	if (!spec->address) {
		const cJSON *ad;
		cJSON_ArrayForEach(ad, cJSON_GetObjectItemCaseSensitive(st, "addresses")) {
			const char *ty = json_str(ad, "type");
			if (ty && !strcmp(ty, "InternalIP") && json_str(ad, "address")) {
				spec->address = xstrdup(json_str(ad, "address"));
				break;
			}
		}
	}
	const char *os = json_str(cJSON_GetObjectItemCaseSensitive(st, "nodeInfo"), "osImage");
	*talos_os = os && strstr(os, "Talos") ? os : NULL;
}

int node_access_inventory_nodes(const struct node_access *a, char **names, size_t n, cJSON **nodes, struct gerr *err)
{
	cJSON *out = cJSON_CreateArray();
	struct buf missing = BUF_INIT;
	for (size_t i = 0; i < (n ? n : a->inv.n); i++) {
		const char *name = n ? names[i] : a->inv.nodes[i].name;
		if (!inventory_find(&a->inv, name)) {
			buf_addf(&missing, "%s%s", missing.len ? ", " : "", name);
			continue;
		}
		cJSON *node = cJSON_CreateObject();
		cJSON_AddStringToObject(cJSON_AddObjectToObject(node, "metadata"), "name", name);
		cJSON_AddItemToArray(out, node);
	}
	if (missing.len) {
		gerr_set(err, GERR_NOTFOUND, "node(s) %s not in the inventory %s", missing.s, a->inv.path);
		buf_release(&missing);
		cJSON_Delete(out);
		return -1;
	}
	if (!cJSON_GetArraySize(out)) {
		cJSON_Delete(out);
		return gerr_set(err, GERR_NOTFOUND, "the inventory %s lists no nodes", a->inv.path);
	}
	*nodes = out;
	return 0;
}

int node_access_connect(const struct node_access *a, const struct node_spec *spec, struct ssh_conn **c, struct gerr *err)
{
	if (!spec->address)
		return gerr_set(err, GERR_CONFIG, "node %s has no InternalIP and no address in the inventory", spec->name);
	struct ssh_target t = {
		.name = spec->name, .host = spec->address, .port = spec->port, .user = spec->user,
		.identity_file = spec->identity_file, .passphrase = a->passphrase,
		.known_hosts = spec->known_hosts, .accept_new = a->accept_new, .timeout_ms = a->ssh_timeout * 1000L,
		.sudo = spec->sudo != 0, .jump = spec->jump_host,
	};
	return ssh_open(&t, c, err);
}

int talos_patch_render(const struct gctx *g, struct buf *text, struct gerr *err)
{
	struct render_ctx rctx = { .dir = g->templates_dir };
	cJSON *values = cJSON_CreateObject(), *docs = NULL;
	int r = render_yaml_docs(&rctx, "talos-patch.yaml.tmpl", values, &docs, text, err);
	cJSON_Delete(values);
	cJSON_Delete(docs);
	return r;
}

int node_cmd_complete(struct gctx *g, const struct node_cmd *c, struct node_access *a, struct node_target *t,
		      struct gerr *err)
{
	if (gctx_check_output(g, c->formats, err) < 0 ||
	    only_skip_check(c->only, c->skip, c->groups, c->group_word, err) < 0)
		return -1;
	*t = (struct node_target){ .names = c->rest, .nnames = (size_t)c->nrest, .selector = c->selector };
	if (node_target_check(t, err) < 0 || node_access_complete(a, err) < 0)
		return -1;
	if (a->from_inventory) {
		int others = 0;
		for (int i = 0; c->groups[i]; i++)
			others |= strcmp(c->groups[i], c->node_group) && only_skip_selected(c->groups[i], c->only, c->skip);
		if (others || c->selector)
			return gerr_set(err, GERR_USAGE,
					"--from-inventory works without the cluster: with --only %s, and without -l", c->node_group);
	}
	return 0;
}

int node_access_reconnect(void *ud, struct ssh_conn **c, struct gerr *err)
{
	const struct node_access_ref *ref = ud;
	long until = mono_ms() + ref->a->ssh_timeout * 1000L;
	for (;;) {
		gerr_clear(err);
		if (node_access_connect(ref->a, ref->spec, c, err) == 0)
			return 0;
		if ((err->code != GERR_SSH_CONN && err->code != GERR_SSH_TIMEOUT) || mono_ms() + 1000 >= until)
			return -1;
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
}

int node_access_probe(const struct node_access *a, const struct node_spec *spec, struct ssh_conn **c,
		      struct probe_result *p, struct gerr *err)
{
	if (node_access_connect(a, spec, c, err) < 0)
		return -1;
	if (node_probe(*c, a->min_driver, p, err) < 0) {
		gerr_prefix(err, "node %s: probe", spec->name);
		ssh_close(*c);
		*c = NULL;
		return -1;
	}
	return 0;
}

struct containerd_opts node_access_containerd_opts(const struct containerd_opts *base, const struct node_spec *spec,
						   struct probe_result *p, struct node_access_ref *ref)
{
	struct containerd_opts co = *base;
	if (spec->restart_command)
		co.restart_command = spec->restart_command;
	if (spec->check_command)
		co.check_command = spec->check_command;
	if (spec->config_path) {
		free(p->config_path);
		p->config_path = xstrdup(spec->config_path);
	}
	if (spec->flavour != CR_UNKNOWN)
		p->flavour = spec->flavour;
	co.reconnect = node_access_reconnect;
	co.reconnect_ud = ref;
	return co;
}
