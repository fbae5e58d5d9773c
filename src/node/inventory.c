/* The inventory: how to reach nodes (YAML, defaults plus per-node entries). */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/yaml.h"

void node_spec_release(struct node_spec *s)
{
	free(s->name);
	free(s->address);
	free(s->user);
	free(s->identity_file);
	free(s->known_hosts);
	free(s->config_path);
	free(s->restart_command);
	free(s->check_command);
	free(s->jump_host);
	memset(s, 0, sizeof(*s));
	s->sudo = -1;
}

static void fill_str(char **dst, const char *src)
{
	if (!*dst && src)
		*dst = xstrdup(src);
}

void node_spec_fill(struct node_spec *dst, const struct node_spec *src)
{
	fill_str(&dst->address, src->address);
	fill_str(&dst->user, src->user);
	fill_str(&dst->identity_file, src->identity_file);
	fill_str(&dst->known_hosts, src->known_hosts);
	if (dst->flavour == CR_UNKNOWN)
		dst->flavour = src->flavour;
	fill_str(&dst->config_path, src->config_path);
	fill_str(&dst->restart_command, src->restart_command);
	fill_str(&dst->check_command, src->check_command);
	fill_str(&dst->jump_host, src->jump_host);
	if (!dst->port)
		dst->port = src->port;
	if (dst->sudo < 0)
		dst->sudo = src->sudo;
}

static const char *const spec_keys[] = { "name", "address", "port", "user", "identityFile", "knownHosts",
					 "sudo", "jumpHost", "containerd", NULL };
static const char *const containerd_keys[] = { "flavour", "configPath", "restartCommand", "checkCommand", NULL };

static int known_key(const char *const *keys, const char *k)
{
	for (; *keys; keys++)
		if (!strcmp(*keys, k))
			return 1;
	return 0;
}

static int get_str(const cJSON *o, const char *key, char **dst, const char *path, const char *where,
		   struct gerr *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || !*v->valuestring)
		return gerr_set(err, GERR_CONFIG, "%s: %s.%s must be a non-empty string", path, where, key);
	*dst = xstrdup(v->valuestring);
	return 0;
}

static int parse_spec(const cJSON *o, struct node_spec *s, const char *path, const char *where, struct gerr *err)
{
	memset(s, 0, sizeof(*s));
	s->sudo = -1;
	if (!cJSON_IsObject(o))
		return gerr_set(err, GERR_CONFIG, "%s: %s must be a mapping", path, where);
	for (const cJSON *c = o->child; c; c = c->next)
		if (!known_key(spec_keys, c->string))
			return gerr_set(err, GERR_CONFIG, "%s: %s: unknown field \"%s\"", path, where, c->string);
	if (get_str(o, "name", &s->name, path, where, err) < 0 || get_str(o, "address", &s->address, path, where, err) < 0 ||
	    get_str(o, "user", &s->user, path, where, err) < 0 ||
	    get_str(o, "identityFile", &s->identity_file, path, where, err) < 0 ||
	    get_str(o, "knownHosts", &s->known_hosts, path, where, err) < 0 ||
	    get_str(o, "jumpHost", &s->jump_host, path, where, err) < 0)
		return -1;
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(o, "port");
	if (port && !cJSON_IsNull(port)) {
		if (!cJSON_IsNumber(port) || port->valuedouble < 1 || port->valuedouble > 65535 ||
		    port->valuedouble != (int)port->valuedouble)
			return gerr_set(err, GERR_CONFIG, "%s: %s.port must be a number from 1 to 65535", path, where);
		s->port = port->valueint;
	}
	const cJSON *sudo = cJSON_GetObjectItemCaseSensitive(o, "sudo");
	if (sudo && !cJSON_IsNull(sudo)) {
		if (!cJSON_IsBool(sudo))
			return gerr_set(err, GERR_CONFIG, "%s: %s.sudo must be true or false", path, where);
		s->sudo = cJSON_IsTrue(sudo);
	}
	const cJSON *ct = cJSON_GetObjectItemCaseSensitive(o, "containerd");
	if (ct && !cJSON_IsNull(ct)) {
		char *w = xasprintf("%s.containerd", where);
		int rc = 0;
		if (!cJSON_IsObject(ct))
			rc = gerr_set(err, GERR_CONFIG, "%s: %s must be a mapping", path, w);
		for (const cJSON *c = rc ? NULL : ct->child; c; c = c->next)
			if (!known_key(containerd_keys, c->string)) {
				rc = gerr_set(err, GERR_CONFIG, "%s: %s: unknown field \"%s\"", path, w, c->string);
				break;
			}
		char *fl = NULL;
		if (rc == 0 && (get_str(ct, "flavour", &fl, path, w, err) < 0 ||
				get_str(ct, "configPath", &s->config_path, path, w, err) < 0 ||
				get_str(ct, "restartCommand", &s->restart_command, path, w, err) < 0 ||
				get_str(ct, "checkCommand", &s->check_command, path, w, err) < 0))
			rc = -1;
		if (rc == 0 && fl && cr_flavour_parse(fl, &s->flavour) < 0)
			rc = gerr_set(err, GERR_CONFIG, "%s: %s.flavour \"%s\" is not one of containerd1, containerd2, k3s, rke2",
				      path, w, fl);
		/* a relative path, or one starting with '-', would reach cp/mv as an option or another folder */
		if (rc == 0 && s->config_path && s->config_path[0] != '/')
			rc = gerr_set(err, GERR_CONFIG, "%s: %s%s%s: %s.configPath \"%s\" must be an absolute path", path,
				      s->name ? "node \"" : "", s->name ? s->name : where, s->name ? "\"" : "", w, s->config_path);
		free(fl);
		free(w);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int inventory_load(const char *path, struct inventory *inv, struct gerr *err)
{
	memset(inv, 0, sizeof(*inv));
	inv->defaults.sudo = -1;
	struct buf text = BUF_INIT;
	if (buf_read_file(&text, path, 8u << 20, err) < 0) {
		buf_release(&text);
		return gerr_prefix(err, "inventory");
	}
	cJSON *doc = NULL;
	int rc = yaml_parse(text.s, text.len, path, &doc, err);
	buf_release(&text);
	if (rc < 0)
		return -1;
	inv->path = xstrdup(path);
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(doc, "apiVersion");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
	if (!cJSON_IsObject(doc) || !cJSON_IsString(av) || strcmp(av->valuestring, "gpuctl.io/v1alpha1") ||
	    !cJSON_IsString(kind) || strcmp(kind->valuestring, "Inventory")) {
		gerr_set(err, GERR_CONFIG, "%s: expected apiVersion: gpuctl.io/v1alpha1 and kind: Inventory", path);
		goto fail;
	}
	for (const cJSON *c = doc->child; c; c = c->next)
		if (strcmp(c->string, "apiVersion") && strcmp(c->string, "kind") && strcmp(c->string, "defaults") &&
		    strcmp(c->string, "nodes")) {
			gerr_set(err, GERR_CONFIG, "%s: unknown field \"%s\" (expected defaults, nodes)", path, c->string);
			goto fail;
		}
	const cJSON *def = cJSON_GetObjectItemCaseSensitive(doc, "defaults");
	if (def && !cJSON_IsNull(def) && parse_spec(def, &inv->defaults, path, "defaults", err) < 0)
		goto fail;
	if (inv->defaults.name || inv->defaults.address) {
		gerr_set(err, GERR_CONFIG, "%s: defaults cannot have a name or an address", path);
		goto fail;
	}
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
	if (nodes && !cJSON_IsNull(nodes) && !cJSON_IsArray(nodes)) {
		gerr_set(err, GERR_CONFIG, "%s: nodes must be a list", path);
		goto fail;
	}
	size_t n = (size_t)cJSON_GetArraySize(nodes);
	inv->nodes = xcalloc(n ? n : 1, sizeof(*inv->nodes));
	const cJSON *it;
	cJSON_ArrayForEach(it, nodes) {
		char *where = xasprintf("nodes[%zu]", inv->n);
		struct node_spec *s = &inv->nodes[inv->n];
		rc = parse_spec(it, s, path, where, err);
		inv->n++;
		if (rc == 0 && !s->name)
			rc = gerr_set(err, GERR_CONFIG, "%s: %s has no name", path, where);
		for (size_t j = 0; rc == 0 && j + 1 < inv->n; j++)
			if (!strcmp(inv->nodes[j].name, s->name))
				rc = gerr_set(err, GERR_CONFIG, "%s: node \"%s\" is listed twice", path, s->name);
		free(where);
		if (rc < 0)
			goto fail;
	}
	cJSON_Delete(doc);
	return 0;
fail:
	cJSON_Delete(doc);
	inventory_release(inv);
	return -1;
}

void inventory_release(struct inventory *inv)
{
	for (size_t i = 0; i < inv->n; i++)
		node_spec_release(&inv->nodes[i]);
	free(inv->nodes);
	node_spec_release(&inv->defaults);
	free(inv->path);
	memset(inv, 0, sizeof(*inv));
}

int node_specs_check_addresses(const struct node_spec *first, size_t n, size_t stride, struct gerr *err)
{
	const char *base = (const char *)first;
	for (size_t i = 0; i < n; i++) {
		const struct node_spec *a = (const struct node_spec *)(const void *)(base + i * stride);
		if (!a->address)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct node_spec *b = (const struct node_spec *)(const void *)(base + j * stride);
			if (b->address && !strcmp(a->address, b->address) && (b->port ? b->port : 22) == (a->port ? a->port : 22)) {
				gerr_set(err, GERR_USAGE, "nodes %s and %s have the same address %s:%d: one run changes each node once",
					 b->name ? b->name : "?", a->name ? a->name : "?", a->address, a->port ? a->port : 22);
				gerr_hint(err, "give each node its own address in the inventory, or name only one of them");
				return -1;
			}
		}
	}
	return 0;
}

const struct node_spec *inventory_find(const struct inventory *inv, const char *name)
{
	for (size_t i = 0; i < inv->n; i++)
		if (!strcmp(inv->nodes[i].name, name))
			return &inv->nodes[i];
	return NULL;
}
