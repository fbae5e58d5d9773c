/* kubeconfig loading as kubectl does it: file discovery, merge rules,
 * relative paths, context selection, credential fields, in-cluster. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuctl/util.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/yaml.h"

#define MAX_KUBECONFIG (16u << 20)
#define MAX_PEM (1u << 20)

const char *kube_serviceaccount_dir(void)
{
	const char *d = getenv("GPUCTL_SERVICEACCOUNT_DIR");
	return d && *d ? d : "/var/run/secrets/kubernetes.io/serviceaccount";
}

/* ---- helpers ---- */

static char *abs_path_dir(const char *path)
{
	char *d = path_dir(path);
	if (d[0] == '/')
		return d;
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		return d;
	char *a = strcmp(d, ".") ? xasprintf("%s/%s", cwd, d) : xstrdup(cwd);
	free(d);
	return a;
}

static void resolve_field(cJSON *obj, const char *key, const char *dir)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsString(v) || !v->valuestring[0] || v->valuestring[0] == '/')
		return;
	if (v->valuestring[0] == '~' && v->valuestring[1] == '/') {
		const char *home = getenv("HOME");
		if (home) {
			char *p = xasprintf("%s%s", home, v->valuestring + 1);
			cJSON_SetValuestring(v, p);
			free(p);
		}
		return;
	}
	char *p = xasprintf("%s/%s", dir, v->valuestring);
	cJSON_SetValuestring(v, p);
	free(p);
}

/* Make file references of one kubeconfig absolute, relative to its folder. */
static void resolve_paths(cJSON *cfg, const char *file)
{
	char *dir = abs_path_dir(file);
	cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "clusters")) {
		cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "cluster");
		if (cJSON_IsObject(c))
			resolve_field(c, "certificate-authority", dir);
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "users")) {
		cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "user");
		if (!cJSON_IsObject(u))
			continue;
		resolve_field(u, "client-certificate", dir);
		resolve_field(u, "client-key", dir);
		resolve_field(u, "tokenFile", dir);
		cJSON *ex = cJSON_GetObjectItemCaseSensitive(u, "exec");
		const char *cmd = json_str(ex, "command");
		/* kubectl resolves the command only when it names a path */
		if (cmd && strchr(cmd, '/'))
			resolve_field(ex, "command", dir);
	}
	free(dir);
}

static int check_named_list(const cJSON *cfg, const char *list, const char *inner, const char *file,
			    struct gerr *err)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cfg, list);
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr))
		return gerr_set(err, GERR_CONFIG, "%s: field \"%s\" must be a list", file, list);
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsObject(it))
			return gerr_set(err, GERR_CONFIG, "%s: %s[%d] must be a mapping", file, list, i);
		const char *name = json_str(it, "name");
		if (!name || !*name)
			return gerr_set(err, GERR_CONFIG, "%s: %s[%d] has no \"name\"", file, list, i);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, inner);
		if (v && !cJSON_IsNull(v) && !cJSON_IsObject(v))
			return gerr_set(err, GERR_CONFIG, "%s: %s \"%s\": field \"%s\" must be a mapping",
					file, list, name, inner);
		i++;
	}
	return 0;
}

static cJSON *find_named(const cJSON *arr, const char *name)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) {
		const char *n = json_str(it, "name");
		if (n && !strcmp(n, name))
			return (cJSON *)it;
	}
	return NULL;
}

static void merge_list(cJSON *merged, const cJSON *cfg, const char *list)
{
	cJSON *dst = cJSON_GetObjectItemCaseSensitive(merged, list);
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, list)) {
		const char *name = json_str(it, "name");
		if (!find_named(dst, name)) /* first file to define a name wins */
			cJSON_AddItemToArray(dst, cJSON_Duplicate(it, 1));
	}
}

int kube_config_merge_files(const char *const *files, cJSON **out, struct gerr *err)
{
	cJSON *merged = cJSON_CreateObject();
	cJSON_AddArrayToObject(merged, "clusters");
	cJSON_AddArrayToObject(merged, "users");
	cJSON_AddArrayToObject(merged, "contexts");
	for (size_t i = 0; files[i]; i++) {
		struct buf text = BUF_INIT;
		if (buf_read_file(&text, files[i], MAX_KUBECONFIG, err) < 0) {
			buf_release(&text);
			gerr_prefix(err, "kubeconfig");
			goto fail;
		}
		cJSON *cfg = NULL;
		int rc = yaml_parse(text.s, text.len, files[i], &cfg, err);
		buf_release(&text);
		if (rc < 0)
			goto fail;
		if (cJSON_IsNull(cfg)) { /* empty file: ignored, as kubectl does */
			cJSON_Delete(cfg);
			continue;
		}
		if (!cJSON_IsObject(cfg)) {
			cJSON_Delete(cfg);
			gerr_set(err, GERR_CONFIG, "%s: not a kubeconfig (expected a mapping at the top)",
				 files[i]);
			goto fail;
		}
		const char *kind = json_str(cfg, "kind");
		if (kind && strcmp(kind, "Config")) {
			gerr_set(err, GERR_CONFIG, "%s: kind is \"%s\", expected \"Config\"", files[i], kind);
			cJSON_Delete(cfg);
			goto fail;
		}
		if (check_named_list(cfg, "clusters", "cluster", files[i], err) < 0 ||
		    check_named_list(cfg, "users", "user", files[i], err) < 0 ||
		    check_named_list(cfg, "contexts", "context", files[i], err) < 0) {
			cJSON_Delete(cfg);
			goto fail;
		}
		const cJSON *cc = cJSON_GetObjectItemCaseSensitive(cfg, "current-context");
		if (cc && !cJSON_IsNull(cc) && !cJSON_IsString(cc)) {
			cJSON_Delete(cfg);
			gerr_set(err, GERR_CONFIG, "%s: current-context must be a string", files[i]);
			goto fail;
		}
		resolve_paths(cfg, files[i]);
		merge_list(merged, cfg, "clusters");
		merge_list(merged, cfg, "users");
		merge_list(merged, cfg, "contexts");
		const char *cur = json_str(cfg, "current-context");
		if (cur && *cur && !json_str(merged, "current-context"))
			cJSON_AddStringToObject(merged, "current-context", cur);
		cJSON_Delete(cfg);
	}
	*out = merged;
	return 0;
fail:
	cJSON_Delete(merged);
	return -1;
}

/* Field readers that name the culprit. */
static int read_pem(struct buf *dst, const cJSON *obj, const char *data_key, const char *file_key,
		    const char *what, const char *src, char **origin, struct gerr *err)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, data_key);
	const char *path = json_str(obj, file_key);
	if (d && !cJSON_IsNull(d)) {
		if (!cJSON_IsString(d))
			return gerr_set(err, GERR_CONFIG, "%s: %s: %s must be a base64 string", src, what,
					data_key);
		if (base64_decode(d->valuestring, dst) < 0)
			return gerr_set(err, GERR_CONFIG, "%s: %s: %s is not valid base64", src, what,
					data_key);
		/* empty must not mean "the system trust store" (or no certificate) */
		if (dst->len == 0)
			return gerr_set(err, GERR_CONFIG, "%s: %s: %s is empty", src, what, data_key);
		if (origin)
			*origin = xasprintf("%s of %s", data_key, what);
		return 0;
	}
	if (path && *path) {
		if (buf_read_file(dst, path, MAX_PEM, err) < 0) {
			gerr_prefix(err, "%s: %s: %s", src, what, file_key);
			return -1;
		}
		if (dst->len == 0)
			return gerr_set(err, GERR_CONFIG, "%s: %s: %s %s is empty", src, what, file_key, path);
		if (origin)
			*origin = xasprintf("%s %s of %s", file_key, path, what);
	}
	return 0;
}

static char **str_array(const cJSON *arr, const char *src, const char *what, struct gerr *err)
{
	int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
	if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr)) {
		gerr_set(err, GERR_CONFIG, "%s: %s must be a list", src, what);
		return NULL;
	}
	char **v = xcalloc((size_t)n + 1, sizeof(char *));
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it)) {
			for (int j = 0; j < i; j++)
				free(v[j]);
			free(v);
			gerr_set(err, GERR_CONFIG, "%s: %s[%d] must be a string", src, what, i);
			return NULL;
		}
		v[i++] = xstrdup(it->valuestring);
	}
	return v;
}

static void exec_free(struct kube_exec_config *e)
{
	if (!e)
		return;
	free(e->api_version);
	free(e->command);
	strv_free(e->args);
	strv_free(e->env);
	free(e->install_hint);
	free(e->interactive_mode);
	cJSON_Delete(e->cluster_config);
	free(e);
}

static int parse_exec(const cJSON *ex, const cJSON *cluster, const char *src, const char *user,
		      struct kube_exec_config **out, struct gerr *err)
{
	struct kube_exec_config *e = xcalloc(1, sizeof(*e));
	char *what = xasprintf("user \"%s\": exec", user);
	const char *av = json_str(ex, "apiVersion");
	const char *cmd = json_str(ex, "command");
	if (!av) {
		gerr_set(err, GERR_CONFIG, "%s: %s: apiVersion is required (client.authentication.k8s.io/v1)",
			 src, what);
		goto fail;
	}
	if (strcmp(av, "client.authentication.k8s.io/v1") &&
	    strcmp(av, "client.authentication.k8s.io/v1beta1")) {
		gerr_set(err, GERR_CONFIG,
			 "%s: %s: apiVersion \"%s\" is not supported (use client.authentication.k8s.io/v1 or v1beta1)",
			 src, what, av);
		goto fail;
	}
	if (!cmd || !*cmd) {
		gerr_set(err, GERR_CONFIG, "%s: %s: command is required", src, what);
		goto fail;
	}
	e->api_version = xstrdup(av);
	e->command = xstrdup(cmd);
	char *argwhat = xasprintf("%s: args", what);
	e->args = str_array(cJSON_GetObjectItemCaseSensitive(ex, "args"), src, argwhat, err);
	free(argwhat);
	if (!e->args)
		goto fail;
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(ex, "env");
	int n = cJSON_IsArray(env) ? cJSON_GetArraySize(env) : 0;
	if (env && !cJSON_IsNull(env) && !cJSON_IsArray(env)) {
		gerr_set(err, GERR_CONFIG, "%s: %s: env must be a list of {name, value}", src, what);
		goto fail;
	}
	e->env = xcalloc((size_t)n + 1, sizeof(char *));
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, env) {
		const char *name = json_str(it, "name");
		const char *value = json_str(it, "value");
		if (!name || !*name || !value || strchr(name, '=')) {
			gerr_set(err, GERR_CONFIG, "%s: %s: env[%d] needs a name and a string value", src,
				 what, i);
			goto fail;
		}
		e->env[i++] = xasprintf("%s=%s", name, value);
	}
	const char *hint = json_str(ex, "installHint");
	e->install_hint = hint ? xstrdup(hint) : NULL;
	const cJSON *pci = cJSON_GetObjectItemCaseSensitive(ex, "provideClusterInfo");
	e->provide_cluster_info = cJSON_IsTrue(pci);
	const char *im = json_str(ex, "interactiveMode");
	if (im && strcmp(im, "Never") && strcmp(im, "IfAvailable") && strcmp(im, "Always")) {
		gerr_set(err, GERR_CONFIG,
			 "%s: %s: interactiveMode \"%s\" is invalid (Never, IfAvailable or Always)", src,
			 what, im);
		goto fail;
	}
	if (!im && !strcmp(av, "client.authentication.k8s.io/v1")) {
		gerr_set(err, GERR_CONFIG, "%s: %s: interactiveMode is required for %s", src, what, av);
		goto fail;
	}
	e->interactive_mode = xstrdup(im ? im : "IfAvailable");
	const cJSON *ext = cJSON_GetObjectItemCaseSensitive(cluster, "extensions");
	const cJSON *x;
	cJSON_ArrayForEach(x, ext) {
		const char *xn = json_str(x, "name");
		if (xn && !strcmp(xn, "client.authentication.k8s.io/exec"))
			e->cluster_config = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(x, "extension"), 1);
	}
	free(what);
	*out = e;
	return 0;
fail:
	free(what);
	exec_free(e);
	return -1;
}

void kube_config_free(struct kube_config *c)
{
	if (!c)
		return;
	free(c->source);
	free(c->context_name);
	free(c->cluster_name);
	free(c->user_name);
	free(c->server);
	free(c->namespace_);
	buf_release(&c->ca_pem);
	free(c->ca_origin);
	free(c->tls_server_name);
	free(c->proxy_url);
	buf_release(&c->cert_pem);
	buf_wipe(&c->key_pem);
	free_secret(c->token);
	free(c->token_file);
	free(c->username);
	free_secret(c->password);
	exec_free(c->exec);
	free(c);
}

static struct kube_config *config_new(void)
{
	struct kube_config *c = xcalloc(1, sizeof(*c));
	buf_init(&c->ca_pem);
	buf_init(&c->cert_pem);
	buf_init(&c->key_pem);
	return c;
}

static int trim_server(struct kube_config *c, const char *server, const char *src, struct gerr *err)
{
	if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)) {
		char *shown = kube_url_redact(server);
		gerr_set(err, GERR_CONFIG, "%s: cluster \"%s\": server \"%s\" must start with https:// (or http://)",
			 src, c->cluster_name ? c->cluster_name : "", shown);
		free(shown);
		return -1;
	}
	size_t n = strlen(server);
	while (n > 0 && server[n - 1] == '/')
		n--;
	c->server = xstrndup(server, n);
	return 0;
}

static int load_in_cluster(const struct kube_opts *o, struct kube_config **out, struct gerr *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = kube_serviceaccount_dir();
	struct kube_config *c = config_new();
	c->in_cluster = 1;
	c->source = xstrdup("in-cluster service account");
	c->context_name = xstrdup("in-cluster");
	c->cluster_name = xstrdup("in-cluster");
	c->user_name = xstrdup("serviceaccount");
	if (strchr(host, ':'))
		c->server = xasprintf("https://[%s]:%s", host, port && *port ? port : "443");
	else
		c->server = xasprintf("https://%s:%s", host, port && *port ? port : "443");
	char *ca = xasprintf("%s/ca.crt", dir);
	int rc = buf_read_file(&c->ca_pem, ca, MAX_PEM, err);
	c->ca_origin = xasprintf("service account CA %s", ca);
	free(ca);
	if (rc < 0)
		goto fail;
	c->token_file = xasprintf("%s/token", dir);
	struct buf ns = BUF_INIT;
	char *nsf = xasprintf("%s/namespace", dir);
	struct gerr ignore = GERR_INIT;
	if (buf_read_file(&ns, nsf, 4096, &ignore) == 0) {
		while (ns.len && isspace((unsigned char)ns.s[ns.len - 1]))
			ns.s[--ns.len] = '\0';
	}
	gerr_clear(&ignore);
	free(nsf);
	c->namespace_ = xstrdup(o->namespace_ ? o->namespace_ : ns.len ? ns.s : "default");
	buf_release(&ns);
	if (o->insecure)
		c->insecure = 1;
	*out = c;
	return 0;
fail:
	kube_config_free(c);
	return -1;
}

/* The list of kubeconfig files to read; NULL-terminated, caller frees. *explicit_ set
 * when the files were named by the user (then a missing file is an error). */
static char **config_files(const struct kube_opts *o, int *explicit_, int *from_env)
{
	*explicit_ = 0;
	*from_env = 0;
	if (o->kubeconfig && *o->kubeconfig) {
		char **v = xcalloc(2, sizeof(char *));
		v[0] = xstrdup(o->kubeconfig);
		*explicit_ = 1;
		return v;
	}
	const char *env = getenv("KUBECONFIG");
	if (env && *env) {
		size_t n = 1;
		for (const char *p = env; *p; p++)
			n += *p == ':';
		char **v = xcalloc(n + 1, sizeof(char *));
		size_t k = 0;
		const char *p = env;
		while (*p) {
			const char *e = strchr(p, ':');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			if (l) {
				char *f = xstrndup(p, l);
				int dup = 0;
				for (size_t j = 0; j < k; j++)
					dup |= !strcmp(v[j], f);
				if (dup)
					free(f);
				else
					v[k++] = f;
			}
			p += l;
			if (*p == ':')
				p++;
		}
		*from_env = 1;
		return v;
	}
	const char *home = getenv("HOME");
	char **v = xcalloc(2, sizeof(char *));
	if (home)
		v[0] = xasprintf("%s/.kube/config", home);
	return v;
}

int kube_config_load(const struct kube_opts *o, struct kube_config **out, struct gerr *err)
{
	int explicit_ = 0, from_env = 0;
	char **files = config_files(o, &explicit_, &from_env);
	/* Keep only existing files, except an explicit --kubeconfig, which must exist. */
	size_t k = 0;
	struct buf srcs = BUF_INIT;
	for (size_t i = 0; files[i]; i++) {
		struct stat st;
		if (!explicit_ && stat(files[i], &st) < 0) {
			free(files[i]);
			continue;
		}
		if (srcs.len)
			buf_addc(&srcs, ':');
		buf_adds(&srcs, files[i]);
		files[k++] = files[i];
	}
	files[k] = NULL;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	if (k == 0) {
		strv_free(files);
		buf_release(&srcs);
		if (host && *host && !from_env)
			return load_in_cluster(o, out, err);
		if (from_env)
			return gerr_set(err, GERR_CONFIG,
					"none of the files in KUBECONFIG (%s) exists; fix KUBECONFIG or pass --kubeconfig FILE",
					getenv("KUBECONFIG"));
		return gerr_set(err, GERR_CONFIG,
				"no kubeconfig found: set KUBECONFIG, pass --kubeconfig FILE, or create ~/.kube/config");
	}
	cJSON *merged = NULL;
	int rc = kube_config_merge_files((const char *const *)files, &merged, err);
	strv_free(files);
	char *src = buf_detach(&srcs);
	if (rc < 0) {
		free(src);
		return -1;
	}
	struct kube_config *c = config_new();
	c->source = src;

	const char *ctxname = o->context && *o->context ? o->context : json_str(merged, "current-context");
	const cJSON *contexts = cJSON_GetObjectItemCaseSensitive(merged, "contexts");
	const cJSON *ctx = NULL;
	if (!ctxname || !*ctxname) {
		if (!o->cluster || !o->user) {
			struct buf names = BUF_INIT;
			const cJSON *it;
			cJSON_ArrayForEach(it, contexts) {
				buf_addf(&names, "%s%s", names.len ? ", " : "", json_str(it, "name"));
			}
			if (names.len)
				gerr_set(err, GERR_CONFIG,
					 "%s: current-context is not set; pass --context NAME (one of: %s)",
					 src, names.s);
			else
				gerr_set(err, GERR_CONFIG, "%s: no context defined and current-context is not set",
					 src);
			buf_release(&names);
			goto fail;
		}
	} else {
		ctx = find_named(contexts, ctxname);
		if (!ctx) {
			gerr_set(err, GERR_CONFIG, "%s: context \"%s\" not found", src, ctxname);
			gerr_hint(err, "list the contexts with: kubectl config get-contexts");
			goto fail;
		}
		c->context_name = xstrdup(ctxname);
	}
	const cJSON *cbody = cJSON_GetObjectItemCaseSensitive(ctx, "context");
	const char *clname = o->cluster && *o->cluster ? o->cluster : json_str(cbody, "cluster");
	const char *uname = o->user && *o->user ? o->user : json_str(cbody, "user");
	const char *ns = o->namespace_ && *o->namespace_ ? o->namespace_ : json_str(cbody, "namespace");
	c->namespace_ = xstrdup(ns && *ns ? ns : "default");
	if (!clname || !*clname) {
		gerr_set(err, GERR_CONFIG, "%s: context \"%s\" names no cluster", src, ctxname);
		goto fail;
	}
	const cJSON *cl = find_named(cJSON_GetObjectItemCaseSensitive(merged, "clusters"), clname);
	if (!cl) {
		gerr_set(err, GERR_CONFIG, "%s: context \"%s\" refers to cluster \"%s\", which is not defined",
			 src, ctxname ? ctxname : "", clname);
		goto fail;
	}
	c->cluster_name = xstrdup(clname);
	const cJSON *cluster = cJSON_GetObjectItemCaseSensitive(cl, "cluster");
	char *clwhat = xasprintf("cluster \"%s\"", clname);
	const char *server = o->server && *o->server ? o->server : json_str(cluster, "server");
	if (!server || !*server) {
		gerr_set(err, GERR_CONFIG, "%s: %s has no server", src, clwhat);
		free(clwhat);
		goto fail;
	}
	if (trim_server(c, server, src, err) < 0) {
		free(clwhat);
		goto fail;
	}
	const cJSON *ins = cJSON_GetObjectItemCaseSensitive(cluster, "insecure-skip-tls-verify");
	if (ins && !cJSON_IsBool(ins) && !cJSON_IsNull(ins)) {
		gerr_set(err, GERR_CONFIG, "%s: %s: insecure-skip-tls-verify must be true or false", src,
			 clwhat);
		free(clwhat);
		goto fail;
	}
	c->insecure = cJSON_IsTrue(ins) || o->insecure;
	if (read_pem(&c->ca_pem, cluster, "certificate-authority-data", "certificate-authority", clwhat,
		     src, &c->ca_origin, err) < 0) {
		free(clwhat);
		goto fail;
	}
	if (c->insecure && c->ca_pem.len && !o->insecure) {
		gerr_set(err, GERR_CONFIG,
			 "%s: %s: specifying a root certificate with insecure-skip-tls-verify is not allowed; remove one of them",
			 src, clwhat);
		free(clwhat);
		goto fail;
	}
	if (c->insecure)
		buf_release(&c->ca_pem);
	const char *tsn = json_str(cluster, "tls-server-name");
	c->tls_server_name = tsn && *tsn ? xstrdup(tsn) : NULL;
	const char *proxy = json_str(cluster, "proxy-url");
	if (proxy && *proxy) {
		if (strncmp(proxy, "http://", 7) && strncmp(proxy, "https://", 8) &&
		    strncmp(proxy, "socks5://", 9)) {
			char *shown = kube_url_redact(proxy);
			gerr_set(err, GERR_CONFIG,
				 "%s: %s: proxy-url \"%s\" must be http://, https:// or socks5://", src,
				 clwhat, shown);
			free(shown);
			free(clwhat);
			goto fail;
		}
		c->proxy_url = xstrdup(proxy);
	}

	if (o->token && *o->token) {
		c->token = xstrdup(o->token);
	}
	if (uname && *uname) {
		const cJSON *us = find_named(cJSON_GetObjectItemCaseSensitive(merged, "users"), uname);
		if (!us) {
			gerr_set(err, GERR_CONFIG, "%s: context \"%s\" refers to user \"%s\", which is not defined",
				 src, ctxname ? ctxname : "", uname);
			free(clwhat);
			goto fail;
		}
		c->user_name = xstrdup(uname);
		const cJSON *user = cJSON_GetObjectItemCaseSensitive(us, "user");
		char *uwhat = xasprintf("user \"%s\"", uname);
		int urc = read_pem(&c->cert_pem, user, "client-certificate-data", "client-certificate", uwhat,
				   src, NULL, err);
		if (urc == 0)
			urc = read_pem(&c->key_pem, user, "client-key-data", "client-key", uwhat, src, NULL, err);
		if (urc == 0 && (c->cert_pem.len > 0) != (c->key_pem.len > 0))
			urc = gerr_set(err, GERR_CONFIG,
				       "%s: %s: client-certificate and client-key must be given together", src,
				       uwhat);
		const char *tok = json_str(user, "token");
		const char *tf = json_str(user, "tokenFile");
		if (urc == 0 && !c->token && tok && *tok)
			c->token = xstrdup(tok);
		if (urc == 0 && !c->token && tf && *tf) {
			struct stat st;
			if (stat(tf, &st) < 0)
				urc = gerr_set(err, GERR_CONFIG, "%s: %s: tokenFile %s: %s", src, uwhat, tf,
					       strerror(errno));
			else
				c->token_file = xstrdup(tf);
		}
		const char *un = json_str(user, "username");
		const char *pw = json_str(user, "password");
		if (urc == 0 && un && *un) {
			c->username = xstrdup(un);
			c->password = xstrdup(pw ? pw : "");
		}
		const cJSON *ex = cJSON_GetObjectItemCaseSensitive(user, "exec");
		if (urc == 0 && ex && !cJSON_IsNull(ex)) {
			if (!cJSON_IsObject(ex))
				urc = gerr_set(err, GERR_CONFIG, "%s: %s: exec must be a mapping", src, uwhat);
			else
				urc = parse_exec(ex, cluster, src, uname, &c->exec, err);
		}
		const cJSON *ap = cJSON_GetObjectItemCaseSensitive(user, "auth-provider");
		if (urc == 0 && ap && !cJSON_IsNull(ap) && !c->token && !c->exec) {
			const char *apn = json_str(ap, "name");
			const char *idt = json_str(cJSON_GetObjectItemCaseSensitive(ap, "config"), "id-token");
			if (apn && !strcmp(apn, "oidc") && idt && *idt) {
				c->token = xstrdup(idt);
			} else {
				urc = gerr_set(err, GERR_CONFIG,
					       "%s: %s: auth-provider \"%s\" is not supported (it was removed from kubectl too)",
					       src, uwhat, apn ? apn : "?");
				gerr_hint(err,
					  "use the exec plugin of your provider instead (gke-gcloud-auth-plugin, kubelogin, aws eks get-token)");
			}
		}
		const char *as = json_str(user, "as");
		if (urc == 0 && as && *as)
			urc = gerr_set(err, GERR_CONFIG, "%s: %s: impersonation (as) is not supported by gpuctl",
				       src, uwhat);
		free(uwhat);
		if (urc < 0) {
			free(clwhat);
			goto fail;
		}
	}
	free(clwhat);
	cJSON_Delete(merged);
	*out = c;
	return 0;
fail:
	cJSON_Delete(merged);
	kube_config_free(c);
	return -1;
}
