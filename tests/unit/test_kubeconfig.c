/* kubeconfig: every shape kubectl reads, and every broken one we can think of. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "gpuctl/buf.h"
#include "gpuctl/kube.h"

#define KC FIXTURES "/kubeconfig"

static struct kube_config *load_ok(const char *file, const char *context)
{
	struct kube_opts o = { .kubeconfig = file, .context = context };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_config_load(&o, &c, &err);
	cr_assert_eq(rc, 0, "%s: %s", file, err.msg);
	gerr_clear(&err);
	return c;
}

static char *load_err(const char *file, const char *context, enum gerr_code *code)
{
	struct kube_opts o = { .kubeconfig = file, .context = context };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_config_load(&o, &c, &err);
	cr_assert_eq(rc, -1, "%s: expected an error", file);
	cr_assert_null(c);
	if (code)
		*code = err.code;
	char *msg = err.msg; /* handed to the caller; the rest of the error freed */
	err.msg = NULL;
	gerr_clear(&err);
	return msg;
}

/* Every file in bad/ starts with "# expect: TEXT" (or has NAME.expect):
 * loading it must fail with a message containing TEXT and naming the file. */
Test(kubeconfig, bad_inputs_table)
{
	DIR *d = opendir(KC "/bad");
	cr_assert_not_null(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".yaml"))
			continue;
		char *path = xasprintf("%s/bad/%s", KC, de->d_name);
		struct buf text = BUF_INIT;
		struct gerr e = GERR_INIT;
		cr_assert_eq(buf_read_file(&text, path, 1 << 20, &e), 0);
		char expect[512] = "";
		if (!strncmp(text.s, "# expect: ", 10)) {
			const char *nl = strchr(text.s, '\n');
			snprintf(expect, sizeof(expect), "%.*s", (int)(nl - text.s - 10), text.s + 10);
		} else {
			char *ep = xasprintf("%s/bad/%.*s.expect", KC, (int)(l - 5), de->d_name);
			struct buf eb = BUF_INIT;
			cr_assert_eq(buf_read_file(&eb, ep, 4096, &e), 0, "%s has no expectation", path);
			snprintf(expect, sizeof(expect), "%.*s", (int)strcspn(eb.s, "\n"), eb.s);
			buf_release(&eb);
			free(ep);
		}
		buf_release(&text);
		enum gerr_code code;
		char *msg = load_err(path, NULL, &code);
		cr_expect(strstr(msg, expect) != NULL, "%s: message \"%s\" lacks \"%s\"", de->d_name, msg, expect);
		cr_expect(strstr(msg, path) != NULL, "%s: message \"%s\" does not name the file", de->d_name, msg);
		cr_expect(code == GERR_CONFIG || code == GERR_PARSE || code == GERR_IO, "%s: code %d", de->d_name,
			  code);
		free(msg);
		free(path);
		n++;
	}
	closedir(d);
	cr_assert_geq(n, 30, "only %d bad kubeconfigs found", n);
}

Test(kubeconfig, yaml_error_has_line_and_column)
{
	char *msg = load_err(KC "/bad/not-yaml.yaml", NULL, NULL);
	cr_assert(strstr(msg, "not-yaml.yaml:") != NULL, "%s", msg);
	/* file:line:col */
	const char *p = strstr(msg, "not-yaml.yaml:") + strlen("not-yaml.yaml:");
	cr_assert(p[0] >= '1' && p[0] <= '9' && strchr(p, ':') != NULL, "%s", msg);
	free(msg);
}

Test(kubeconfig, missing_file_named)
{
	enum gerr_code code;
	char *msg = load_err("/nonexistent/gpuctl/kubeconfig", NULL, &code);
	cr_assert(strstr(msg, "/nonexistent/gpuctl/kubeconfig") && strstr(msg, "No such file"), "%s", msg);
	cr_assert_eq(code, GERR_IO);
	free(msg);
}

Test(kubeconfig, directory_is_not_a_file)
{
	char *msg = load_err(KC "/good", NULL, NULL);
	cr_assert(strstr(msg, KC "/good") != NULL, "%s", msg);
	free(msg);
}

Test(kubeconfig, unknown_context_flag)
{
	char *msg = load_err(KC "/good/kind.yaml", "prod", NULL);
	cr_assert(strstr(msg, "context \"prod\" not found"), "%s", msg);
	free(msg);
}

Test(kubeconfig, eks_exec_v1beta1)
{
	struct kube_config *c = load_ok(KC "/good/eks.yaml", NULL);
	cr_assert_str_eq(c->server, "https://ABCDEF0123456789.gr7.us-west-2.eks.amazonaws.com");
	cr_assert_not_null(c->exec);
	cr_assert_str_eq(c->exec->command, "aws");
	cr_assert_str_eq(c->exec->api_version, "client.authentication.k8s.io/v1beta1");
	cr_assert_str_eq(c->exec->args[3], "get-token");
	cr_assert_null(c->exec->args[8]);
	cr_assert_str_eq(c->exec->env[0], "AWS_PROFILE=prod");
	cr_assert_str_eq(c->exec->interactive_mode, "IfAvailable");
	cr_assert_gt(c->ca_pem.len, 0);
	cr_assert(strstr(c->ca_pem.s, "BEGIN CERTIFICATE"));
	cr_assert_str_eq(c->namespace_, "default");
	kube_config_free(c);
}

Test(kubeconfig, gke_exec_with_install_hint)
{
	struct kube_config *c = load_ok(KC "/good/gke.yaml", NULL);
	cr_assert_str_eq(c->exec->command, "gke-gcloud-auth-plugin");
	cr_assert(c->exec->provide_cluster_info);
	cr_assert(strstr(c->exec->install_hint, "gke-gcloud-auth-plugin"));
	kube_config_free(c);
}

Test(kubeconfig, aks_kubelogin_env_null)
{
	struct kube_config *c = load_ok(KC "/good/aks-kubelogin.yaml", NULL);
	cr_assert_str_eq(c->exec->command, "kubelogin");
	cr_assert_null(c->exec->env[0]);
	cr_assert_str_eq(c->server, "https://gpu-aks-dns-12345678.hcp.westeurope.azmk8s.io:443");
	cr_assert(strstr(c->exec->install_hint, "kubelogin is not installed"));
	kube_config_free(c);
}

Test(kubeconfig, kind_and_k3s_client_certificates)
{
	const char *files[] = { KC "/good/kind.yaml", KC "/good/k3s.yaml" };
	for (int i = 0; i < 2; i++) {
		struct kube_config *c = load_ok(files[i], NULL);
		cr_assert(strstr(c->cert_pem.s, "BEGIN CERTIFICATE"), "%s", files[i]);
		cr_assert(strstr(c->key_pem.s, "PRIVATE KEY"), "%s", files[i]);
		cr_assert_null(c->token);
		cr_assert_null(c->exec);
		kube_config_free(c);
	}
}

Test(kubeconfig, openshift_token_and_namespace)
{
	struct kube_config *c = load_ok(KC "/good/openshift.yaml", NULL);
	cr_assert_str_eq(c->token, "sha256~Xyz0123456789abcdefghijklmnopqrstuvwxyzABCD");
	cr_assert_str_eq(c->namespace_, "gpu-operator");
	cr_assert_str_eq(c->user_name, "kube:admin/api-gpu-example-com:6443");
	cr_assert_eq(c->ca_pem.len, 0, "no CA: the system trust store is used");
	kube_config_free(c);
}

Test(kubeconfig, relative_paths_resolve_against_the_file)
{
	/* run from elsewhere: paths must not depend on the working directory */
	char cwd[4096];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir("/"), 0);
	struct kube_config *c = load_ok(KC "/good/relative/config", NULL);
	cr_assert(strstr(c->ca_pem.s, "BEGIN CERTIFICATE"));
	cr_assert(strstr(c->key_pem.s, "PRIVATE KEY"));
	cr_assert_str_eq(c->server, "https://10.1.2.3:6443", "trailing slash trimmed");
	cr_assert_str_eq(c->tls_server_name, "kubernetes.default");
	cr_assert_str_eq(c->proxy_url, "http://proxy.internal:3128");
	cr_assert_str_eq(c->namespace_, "ml");
	kube_config_free(c);
	c = load_ok(KC "/good/relative/config", "tok");
	cr_assert_str_eq(c->token_file, KC "/good/relative/token");
	kube_config_free(c);
	cr_assert_eq(chdir(cwd), 0);
}

Test(kubeconfig, kubeconfig_env_merges_files_first_wins)
{
	char *env = xasprintf("%s/good/merge-a.yaml:/nonexistent/skipped:%s/good/merge-b.yaml", KC, KC);
	setenv("KUBECONFIG", env, 1);
	struct kube_opts o = { 0 };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	/* current-context comes from b (a sets none); cluster "bonly" only in b */
	cr_assert_eq(kube_config_load(&o, &c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(c->context_name, "b");
	cr_assert_str_eq(c->server, "https://bonly.example:6443");
	cr_assert_str_eq(c->token, "token-b");
	kube_config_free(c);
	/* context a uses cluster "shared": defined in both, the first file wins */
	o.context = "a";
	cr_assert_eq(kube_config_load(&o, &c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(c->server, "https://a.example:6443");
	cr_assert(c->insecure);
	cr_assert_str_eq(c->token, "token-a");
	cr_assert(strstr(c->source, "merge-a.yaml") && strstr(c->source, "merge-b.yaml"));
	kube_config_free(c);
	unsetenv("KUBECONFIG");
	free(env);
}

Test(kubeconfig, kubeconfig_env_with_no_existing_file)
{
	setenv("KUBECONFIG", "/nonexistent/a:/nonexistent/b", 1);
	struct kube_opts o = { 0 };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_config_load(&o, &c, &err), -1);
	cr_assert(strstr(err.msg, "KUBECONFIG"), "%s", err.msg);
	gerr_clear(&err);
	unsetenv("KUBECONFIG");
}

Test(kubeconfig, flags_override_the_file)
{
	struct kube_opts o = { .kubeconfig = KC "/good/openshift.yaml", .namespace_ = "other",
			       .server = "https://override:1234", .token = "flag-token" };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_config_load(&o, &c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(c->server, "https://override:1234");
	cr_assert_str_eq(c->namespace_, "other");
	cr_assert_str_eq(c->token, "flag-token");
	kube_config_free(c);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Temporary folders are removed when the test process ends, also on failure. */
static char *tempdirs[32];
static size_t ntempdirs;

static void rm_tempdirs(void)
{
	for (size_t i = 0; i < ntempdirs; i++)
		nftw(tempdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *mktempdir(void)
{
	char tmpl[] = "/tmp/gpuctl-test-XXXXXX";
	cr_assert_not_null(mkdtemp(tmpl));
	if (ntempdirs == 0)
		atexit(rm_tempdirs);
	if (ntempdirs < 32)
		tempdirs[ntempdirs++] = xstrdup(tmpl);
	return xstrdup(tmpl);
}

static void write_file(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

Test(kubeconfig, in_cluster_service_account)
{
	char *dir = mktempdir();
	char *p = xasprintf("%s/token", dir);
	write_file(p, "sa-token\n", 0600);
	free(p);
	p = xasprintf("%s/ca.crt", dir);
	write_file(p, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n", 0644);
	free(p);
	p = xasprintf("%s/namespace", dir);
	write_file(p, "gpu-system", 0644);
	free(p);
	setenv("GPUCTL_SERVICEACCOUNT_DIR", dir, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	unsetenv("KUBECONFIG");
	setenv("HOME", dir, 1); /* no ~/.kube/config there */
	struct kube_opts o = { 0 };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_config_load(&o, &c, &err), 0, "%s", err.msg);
	cr_assert(c->in_cluster);
	cr_assert_str_eq(c->server, "https://10.96.0.1:443");
	cr_assert_str_eq(c->namespace_, "gpu-system");
	cr_assert(strstr(c->token_file, "/token"));
	cr_assert(strstr(c->ca_pem.s, "BEGIN CERTIFICATE"));
	kube_config_free(c);
	/* IPv6 service host gets brackets */
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	cr_assert_eq(kube_config_load(&o, &c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(c->server, "https://[fd00::1]:443");
	kube_config_free(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("GPUCTL_SERVICEACCOUNT_DIR");
	free(dir);
}

Test(kubeconfig, nothing_found_says_what_to_do)
{
	char *dir = mktempdir();
	setenv("HOME", dir, 1);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	struct kube_opts o = { 0 };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_config_load(&o, &c, &err), -1);
	cr_assert(strstr(err.msg, "--kubeconfig") && strstr(err.msg, "KUBECONFIG"), "%s", err.msg);
	gerr_clear(&err);
	free(dir);
}

/* ---- exec credential plugins ---- */

static char *plugin(const char *dir, const char *body)
{
	char *p = xasprintf("%s/plugin.sh", dir);
	char *text = xasprintf("#!/bin/sh\n%s\n", body);
	write_file(p, text, 0755);
	free(text);
	return p;
}

static struct kube_config *exec_config(const char *dir, const char *command, const char *extra)
{
	char *kc = xasprintf("%s/kubeconfig", dir);
	char *text = xasprintf("apiVersion: v1\nkind: Config\n"
			       "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"
			       "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
			       "    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: gpu}\n"
			       "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
			       "users:\n- name: u\n  user:\n    exec:\n"
			       "      apiVersion: client.authentication.k8s.io/v1\n      command: %s\n"
			       "      args: [\"--flag\", \"a b\"]\n      env:\n      - {name: PLUGIN_ENV, value: from-kubeconfig}\n"
			       "%s",
			       command, extra);
	write_file(kc, text, 0600);
	free(text);
	struct kube_config *c = load_ok(kc, NULL);
	free(kc);
	return c;
}

Test(exec, token_args_env_and_expiry)
{
	char *dir = mktempdir();
	char *cap = xasprintf("%s/captured", dir);
	char *body = xasprintf("printf '%%s|%%s|%%s|%%s' \"$1\" \"$2\" \"$PLUGIN_ENV\" \"$KUBERNETES_EXEC_INFO\" > %s\n"
			       "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
			       "\"status\":{\"token\":\"exec-token\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}'",
			       cap);
	char *p = plugin(dir, body);
	struct kube_config *c = exec_config(dir, p, "      interactiveMode: Never\n      provideClusterInfo: true\n");
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cred.token, "exec-token");
	cr_assert_eq(cred.expires, 1893553445);
	struct buf got = BUF_INIT;
	cr_assert_eq(buf_read_file(&got, cap, 1 << 16, &err), 0);
	cr_assert(!strncmp(got.s, "--flag|a b|from-kubeconfig|", 27), "%s", got.s);
	cr_assert(strstr(got.s, "\"interactive\":false"), "%s", got.s);
	cr_assert(strstr(got.s, "\"server\":\"https://127.0.0.1:6443\""), "%s", got.s);
	cr_assert(strstr(got.s, "\"certificate-authority-data\""), "%s", got.s);
	cr_assert(strstr(got.s, "\"audience\":\"gpu\""), "cluster config extension: %s", got.s);
	buf_release(&got);
	kube_exec_cred_release(&cred);
	kube_config_free(c);
	free(p);
	free(body);
	free(cap);
	free(dir);
}

Test(exec, client_certificate_credential)
{
	char *dir = mktempdir();
	char *p = plugin(dir, "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
			      "\"status\":{\"clientCertificateData\":\"CERT\",\"clientKeyData\":\"KEY\"}}'");
	struct kube_config *c = exec_config(dir, p, "      interactiveMode: Never\n");
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), 0, "%s", err.msg);
	cr_assert_null(cred.token);
	cr_assert_str_eq(cred.cert_pem.s, "CERT");
	cr_assert_str_eq(cred.key_pem.s, "KEY");
	cr_assert_eq(cred.expires, 0);
	kube_exec_cred_release(&cred);
	kube_config_free(c);
	free(p);
	free(dir);
}

struct exec_case {
	const char *body;
	const char *expect;
};

Test(exec, bad_plugin_outputs)
{
	static const struct exec_case cases[] = {
		{ "exit 3", "failed with exit code 3" },
		{ "echo not-json", "did not print an ExecCredential" },
		{ "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'",
		  "apiVersion \"client.authentication.k8s.io/v1beta1\", but the kubeconfig asks for" },
		{ "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"Pod\"}'", "kind \"Pod\"" },
		{ "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"}'", "without status" },
		{ "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{}}'",
		  "neither a token nor a client certificate" },
		{ "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":\"C\"}}'",
		  "together" },
		{ "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}'",
		  "not RFC 3339" },
	};
	char *dir = mktempdir();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = plugin(dir, cases[i].body);
		struct kube_config *c = exec_config(dir, p, "      interactiveMode: Never\n");
		struct kube_exec_cred cred = { 0 };
		struct gerr err = GERR_INIT;
		cr_expect_eq(kube_exec_run(c, 0, &cred, &err), -1, "case %zu", i);
		cr_expect(err.msg && strstr(err.msg, cases[i].expect), "case %zu: \"%s\" lacks \"%s\"", i, err.msg,
			  cases[i].expect);
		cr_expect_eq(err.code, GERR_AUTH);
		gerr_clear(&err);
		kube_exec_cred_release(&cred);
		kube_config_free(c);
		free(p);
	}
	free(dir);
}

Test(exec, missing_command_shows_install_hint)
{
	char *dir = mktempdir();
	struct kube_config *c = exec_config(dir, "gpuctl-no-such-plugin",
					    "      interactiveMode: Never\n      installHint: install it with 'apt install gpuctl-plugin'\n");
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), -1);
	cr_assert(strstr(err.msg, "\"gpuctl-no-such-plugin\" not found"), "%s", err.msg);
	cr_assert(err.hint && strstr(err.hint, "apt install gpuctl-plugin"), "%s", err.msg);
	gerr_clear(&err);
	kube_config_free(c);
	free(dir);
}

Test(exec, interactive_always_needs_a_terminal)
{
	char *dir = mktempdir();
	char *p = plugin(dir, "echo never-run");
	struct kube_config *c = exec_config(dir, p, "      interactiveMode: Always\n");
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), -1);
	cr_assert(strstr(err.msg, "interactive terminal"), "%s", err.msg);
	gerr_clear(&err);
	kube_config_free(c);
	free(p);
	free(dir);
}

Test(exec, relative_command_resolves_against_kubeconfig)
{
	char *dir = mktempdir();
	char *p = plugin(dir, "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"rel\"}}'");
	struct kube_config *c = exec_config(dir, "./plugin.sh", "      interactiveMode: Never\n");
	char *want = xasprintf("%s/./plugin.sh", dir);
	cr_assert_str_eq(c->exec->command, want);
	cr_assert_eq(chdir("/"), 0);
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cred.token, "rel");
	kube_exec_cred_release(&cred);
	kube_config_free(c);
	free(want);
	free(p);
	free(dir);
}

Test(exec, gpuctl_secrets_do_not_reach_the_plugin)
{
	char *dir = mktempdir();
	setenv("GPUCTL_SSH_PASSPHRASE", "hunter2-passphrase", 1);
	setenv("GPUCTL_TEST_TOKEN", "hunter2-token", 1);
	setenv("GPUCTL_PLAIN_SETTING", "kept", 1);
	/* the plugin puts its whole environment into the token it prints */
	char *p = plugin(dir, "env=$(env | tr -d '\\n\"\\\\' | tr '=' ':')\n"
			      "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
			      "\"status\":{\"token\":\"%s\"}}' \"$env\"");
	struct kube_config *c = exec_config(dir, p, "      interactiveMode: Never\n");
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), 0, "%s", err.msg);
	cr_assert_not_null(cred.token);
	cr_assert(strstr(cred.token, "PLUGIN_ENV:from-kubeconfig"), "%s", cred.token);
	cr_assert(strstr(cred.token, "GPUCTL_PLAIN_SETTING:kept"), "other variables are inherited: %s", cred.token);
	cr_assert_null(strstr(cred.token, "hunter2"), "a gpuctl secret reached the plugin: %s", cred.token);
	cr_assert_null(strstr(cred.token, "GPUCTL_SSH_PASSPHRASE"), "%s", cred.token);
	unsetenv("GPUCTL_SSH_PASSPHRASE");
	unsetenv("GPUCTL_TEST_TOKEN");
	unsetenv("GPUCTL_PLAIN_SETTING");
	kube_exec_cred_release(&cred);
	kube_config_free(c);
	free(p);
	free(dir);
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

Test(exec, plugin_that_closes_its_output_but_keeps_running_is_killed, .timeout = 60)
{
	char *dir = mktempdir();
	/* a credential, then stdout closed, then the plugin lingers (exec: the
	 * process that is killed is the one that sleeps) */
	char *p = plugin(dir, "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
			      "\"status\":{\"token\":\"t\"}}'\nexec 1>&-\nexec sleep 50");
	struct kube_config *c = exec_config(dir, p, "      interactiveMode: Never\n");
	struct kube_exec_cred cred = { 0 };
	struct gerr err = GERR_INIT;
	long t0 = mono_ms();
	cr_assert_eq(kube_exec_run(c, 0, &cred, &err), -1, "a plugin that never exits was accepted");
	long dt = mono_ms() - t0;
	cr_assert_lt(dt, 20000, "waited %ld ms for the plugin", dt);
	cr_assert(strstr(err.msg, p), "the message names the plugin: %s", err.msg);
	cr_assert(strstr(err.msg, "did not exit"), "%s", err.msg);
	cr_assert_eq(err.code, GERR_AUTH);
	gerr_clear(&err);
	kube_exec_cred_release(&cred);
	kube_config_free(c);
	free(p);
	free(dir);
}

Test(kubeconfig, server_credentials_never_in_messages)
{
	char *dir = mktempdir();
	char *kc = xasprintf("%s/kubeconfig", dir);
	write_file(kc, "apiVersion: v1\nkind: Config\n"
		       "clusters:\n- name: c\n  cluster:\n    server: ftp://admin:s3cr3t-pw@10.0.0.1:6443\n"
		       "    proxy-url: gopher://proxyuser:pr0xy-pw@proxy:3128\n"
		       "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
		       "users:\n- name: u\n  user: {token: t}\n",
		   0600);
	char *m = load_err(kc, NULL, NULL);
	cr_assert(strstr(m, "must start with https://"), "%s", m);
	cr_assert(strstr(m, "10.0.0.1:6443"), "the server is still named: %s", m);
	cr_assert_null(strstr(m, "s3cr3t-pw"), "password in the message: %s", m);
	free(m);
	struct kube_opts o = { .kubeconfig = kc, .server = "https://admin:s3cr3t-pw@10.0.0.1:6443" };
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(kube_config_load(&o, &c, &err), -1);
	cr_assert(strstr(err.msg, "proxy-url"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "pr0xy-pw"), "password in the message: %s", err.msg);
	gerr_clear(&err);
	unlink(kc);
	free(kc);
	free(dir);
}

Test(kubeconfig, url_redact_table)
{
	static const char *const cases[][2] = {
		{ "https://user:pw@host:6443/prefix", "https://***@host:6443/prefix" },
		{ "https://token@host", "https://***@host" },
		{ "https://a@b:p@w@host/x@y?q=@", "https://***@host/x@y?q=@" },
		{ "https://host:6443/p@th", "https://host:6443/p@th" },
		{ "https://[fd00::1]:443", "https://[fd00::1]:443" },
		{ "http://u:p@[fd00::1]:8080", "http://***@[fd00::1]:8080" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = kube_url_redact(cases[i][0]);
		cr_expect_str_eq(r, cases[i][1], "%s", cases[i][0]);
		free(r);
	}
	cr_assert_null(kube_url_redact(NULL));
}
