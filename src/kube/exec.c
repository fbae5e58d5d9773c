/* Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpuctl/util.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/spawn.h"

#define EXEC_TIMEOUT_MS 120000L
#define EXEC_INTERACTIVE_TIMEOUT_MS 600000L
#define EXEC_EXIT_GRACE_MS 5000L

/* gpuctl's own secrets stay with gpuctl: a credential plugin is a program
 * named by the kubeconfig, and it inherits the rest of our environment (as
 * kubectl's plugins do), but not these. */
static const char *const exec_env_remove[] = {
	"GPUCTL_SSH_*",
	"GPUCTL_*PASSPHRASE*",
	"GPUCTL_*PASSWORD*",
	"GPUCTL_*TOKEN*",
	"GPUCTL_*SECRET*",
	NULL,
};

/* RFC 3339 timestamp to time_t (UTC); -1 when malformed. */
static time_t parse_rfc3339(const char *s)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		int hh = 0, mm = 0;
		if (strlen(p) < 6 || p[3] != ':')
			return -1;
		hh = (p[1] - '0') * 10 + (p[2] - '0');
		mm = (p[4] - '0') * 10 + (p[5] - '0');
		off = sign * (hh * 3600L + mm * 60L);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	return timegm(&tm) - off;
}

static cJSON *exec_info(const struct kube_config *cfg, int interactive)
{
	const struct kube_exec_config *e = cfg->exec;
	cJSON *info = cJSON_CreateObject();
	cJSON_AddStringToObject(info, "kind", "ExecCredential");
	cJSON_AddStringToObject(info, "apiVersion", e->api_version);
	cJSON *spec = cJSON_AddObjectToObject(info, "spec");
	cJSON_AddBoolToObject(spec, "interactive", interactive);
	if (e->provide_cluster_info) {
		cJSON *cl = cJSON_AddObjectToObject(spec, "cluster");
		cJSON_AddStringToObject(cl, "server", cfg->server);
		if (cfg->tls_server_name)
			cJSON_AddStringToObject(cl, "tls-server-name", cfg->tls_server_name);
		if (cfg->insecure)
			cJSON_AddBoolToObject(cl, "insecure-skip-tls-verify", 1);
		if (cfg->ca_pem.len) {
			struct buf b = BUF_INIT;
			base64_encode(cfg->ca_pem.s, cfg->ca_pem.len, 1, &b);
			cJSON_AddStringToObject(cl, "certificate-authority-data", b.s);
			buf_release(&b);
		}
		if (cfg->proxy_url)
			cJSON_AddStringToObject(cl, "proxy-url", cfg->proxy_url);
		if (e->cluster_config)
			cJSON_AddItemToObject(cl, "config", cJSON_Duplicate(e->cluster_config, 1));
	}
	return info;
}

void kube_exec_cred_release(struct kube_exec_cred *cred)
{
	free_secret(cred->token);
	cred->token = NULL;
	buf_release(&cred->cert_pem);
	buf_wipe(&cred->key_pem);
	cred->expires = 0;
}

int kube_exec_run(const struct kube_config *cfg, int stdin_is_tty, struct kube_exec_cred *cred,
		  struct gerr *err)
{
	const struct kube_exec_config *e = cfg->exec;
	const char *who = cfg->user_name ? cfg->user_name : "?";
	int interactive;
	if (!strcmp(e->interactive_mode, "Never")) {
		interactive = 0;
	} else if (!strcmp(e->interactive_mode, "Always")) {
		if (!stdin_is_tty)
			return gerr_set(err, GERR_AUTH,
					"user \"%s\": exec plugin %s needs an interactive terminal (interactiveMode: Always) but standard input is not a terminal",
					who, e->command);
		interactive = 1;
	} else {
		interactive = stdin_is_tty;
	}
	cJSON *info = exec_info(cfg, interactive);
	char *infos = cJSON_PrintUnformatted(info);
	cJSON_Delete(info);
	size_t nenv = 0, nargs = 0;
	while (e->env[nenv])
		nenv++;
	while (e->args[nargs])
		nargs++;
	const char **env = xcalloc(nenv + 2, sizeof(char *));
	for (size_t i = 0; i < nenv; i++)
		env[i] = e->env[i];
	char *infoenv = xasprintf("KUBERNETES_EXEC_INFO=%s", infos);
	free(infos);
	env[nenv] = infoenv;
	const char **argv = xcalloc(nargs + 2, sizeof(char *));
	argv[0] = e->command;
	for (size_t i = 0; i < nargs; i++)
		argv[i + 1] = e->args[i];
	struct spawn_opts so = {
		.argv = argv,
		.env_extra = env,
		.env_remove = exec_env_remove,
		.stdin_inherit = interactive,
		.stderr_inherit = 1,
		/* an interactive login (a browser, a prompt) may take a while, but not forever */
		.timeout_ms = interactive ? EXEC_INTERACTIVE_TIMEOUT_MS : EXEC_TIMEOUT_MS,
		.exit_grace_ms = EXEC_EXIT_GRACE_MS,
		.max_output = 1u << 20,
	};
	struct buf out = BUF_INIT;
	int status = 0;
	struct gerr serr = GERR_INIT;
	int rc = spawn_run(&so, &out, NULL, &status, &serr);
	free(env);
	free(argv);
	free(infoenv);
	if (rc < 0) {
		if (serr.code == GERR_NOTFOUND) {
			gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin \"%s\" not found in PATH", who,
				 e->command);
			if (e->install_hint)
				gerr_hint(err, "%s", e->install_hint);
		} else {
			gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin \"%s\": %s", who, e->command, serr.msg);
			if (serr.code == GERR_TIMEOUT)
				gerr_hint(err, "the plugin was killed; run it by hand to see where it hangs");
		}
		gerr_clear(&serr);
		buf_wipe(&out);
		return -1;
	}
	if (status != 0) {
		buf_wipe(&out);
		return gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin \"%s\" failed with exit code %d", who,
				e->command, status);
	}
	cJSON *resp = cJSON_ParseWithLength(out.s, out.len);
	buf_wipe(&out);
	if (!cJSON_IsObject(resp)) {
		cJSON_Delete(resp);
		return gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin \"%s\" did not print an ExecCredential (JSON)",
				who, e->command);
	}
	rc = -1;
	const char *kind = json_str(resp, "kind");
	const char *av = json_str(resp, "apiVersion");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
	if (!kind || strcmp(kind, "ExecCredential")) {
		gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin printed kind \"%s\", expected ExecCredential",
			 who, kind ? kind : "");
		goto out;
	}
	if (!av || strcmp(av, e->api_version)) {
		gerr_set(err, GERR_AUTH,
			 "user \"%s\": exec plugin printed apiVersion \"%s\", but the kubeconfig asks for \"%s\"",
			 who, av ? av : "", e->api_version);
		goto out;
	}
	if (!cJSON_IsObject(st)) {
		gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin printed an ExecCredential without status", who);
		goto out;
	}
	const char *tok = json_str(st, "token");
	const char *cert = json_str(st, "clientCertificateData");
	const char *key = json_str(st, "clientKeyData");
	const char *exp = json_str(st, "expirationTimestamp");
	if ((cert && *cert) != (key && *key)) {
		gerr_set(err, GERR_AUTH,
			 "user \"%s\": exec plugin must give clientCertificateData and clientKeyData together", who);
		goto out;
	}
	if (!(tok && *tok) && !(cert && *cert)) {
		gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin gave neither a token nor a client certificate",
			 who);
		goto out;
	}
	time_t expires = 0;
	if (exp && *exp) {
		expires = parse_rfc3339(exp);
		if (expires == (time_t)-1) {
			gerr_set(err, GERR_AUTH, "user \"%s\": exec plugin: expirationTimestamp \"%s\" is not RFC 3339",
				 who, exp);
			goto out;
		}
	}
	kube_exec_cred_release(cred);
	if (tok && *tok)
		cred->token = xstrdup(tok);
	if (cert && *cert) {
		buf_adds(&cred->cert_pem, cert);
		buf_adds(&cred->key_pem, key);
	}
	cred->expires = expires;
	rc = 0;
out:
	/* wipe the token in the parsed tree before freeing it */
	if (cJSON_IsObject(st)) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(st, "token");
		if (cJSON_IsString(t))
			memset(t->valuestring, 0, strlen(t->valuestring));
		t = cJSON_GetObjectItemCaseSensitive(st, "clientKeyData");
		if (cJSON_IsString(t))
			memset(t->valuestring, 0, strlen(t->valuestring));
	}
	cJSON_Delete(resp);
	return rc;
}
