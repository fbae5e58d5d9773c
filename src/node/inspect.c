/* Validate's read-only look at a node's containerd: the effective
 * configuration, whether containerd answers, whether the runtime binary is
 * there.  Nothing is written and no lock is taken. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/toml.h"

void containerd_state_release(struct containerd_state *st)
{
	free(st->dump_error);
	free(st->server_version);
	free(st->binary);
	free(st->cgroup_mismatch);
	memset(st, 0, sizeof(*st));
}

int containerd_inspect(struct ssh_conn *c, const struct probe_result *p, struct containerd_state *st, struct gerr *err)
{
	memset(st, 0, sizeof(*st));
	int major = p->containerd_major ? p->containerd_major : 1;
	/* k3s/rke2 run containerd on the config.toml they generate from the template */
	char *cfg = xstrdup(p->config_path ? p->config_path : "/etc/containerd/config.toml");
	size_t cl = strlen(cfg);
	if (cl > 5 && !strcmp(cfg + cl - 5, ".tmpl"))
		cfg[cl - 5] = '\0';
	int embedded = cr_flavour_embedded(p->flavour);
	struct buf cmd = BUF_INIT, out = BUF_INIT, errb = BUF_INIT;
	if (embedded) {
		/* their containerd is not on PATH, and the file they generate is the whole configuration */
		buf_adds(&cmd, "cat -- ");
		sh_quote(&cmd, cfg);
	} else {
		buf_adds(&cmd, "containerd --config ");
		sh_quote(&cmd, cfg);
		buf_adds(&cmd, " config dump");
	}
	free(cfg);
	int status = 0, rc = -1;
	if (ssh_exec(c, cmd.s, NULL, 0, &out, &errb, &status, err) < 0)
		goto out;
	if (status != 0) {
		const char *e = errb.len ? errb.s : out.s;
		st->dump_error = xstrndup(e, strcspn(e, "\n"));
		rc = 0;
		goto out;
	}
	st->dump_ok = 1;
	char *dump = buf_detach(&out);
	char *t = containerd_cri_table(major, ".containerd.runtimes.nvidia.options");
	st->configured = containerd_runtime_configured(dump, major, NULL, 0);
	st->binary = toml_get_string(dump, t, "BinaryName");
	st->is_default = containerd_runtime_configured(dump, major, NULL, 1);
	char *base = containerd_base_runtime(dump, major);
	if (st->configured && base) {
		char *seg = xasprintf(".containerd.runtimes.%s.options", base);
		char *bt = containerd_cri_table(major, seg);
		char *a = toml_get_raw(dump, t, "SystemdCgroup"), *b = toml_get_raw(dump, bt, "SystemdCgroup");
		if (strcmp(a ? a : "false", b ? b : "false"))
			st->cgroup_mismatch = xasprintf("the nvidia runtime has SystemdCgroup = %s but %s has %s", a ? a : "false",
							base, b ? b : "false");
		free(a);
		free(b);
		free(bt);
		free(seg);
	}
	free(base);
	free(t);
	/* does it run and answer, and is the runtime binary there */
	char *addr = containerd_grpc_address(dump);
	free(dump);
	/* k3s and rke2 give containerd its socket on the command line (the dump shows the default) */
	if (embedded) {
		free(addr);
		addr = xstrdup("/run/k3s/containerd/containerd.sock");
	}
	buf_reset(&cmd);
	if (embedded) /* where k3s and rke2 keep their ctr */
		buf_adds(&cmd, "PATH=$PATH:/var/lib/rancher/rke2/bin:/var/lib/rancher/k3s/data/current/bin ");
	buf_adds(&cmd, "ctr --connect-timeout 5s --timeout 10s ");
	if (addr) {
		buf_adds(&cmd, "--address ");
		sh_quote(&cmd, addr);
		buf_addc(&cmd, ' ');
	}
	free(addr);
	buf_adds(&cmd, "version 2>&1; printf '\\n@@rc:%s\\n' $?");
	if (st->binary && *st->binary) {
		buf_adds(&cmd, "; test -x ");
		sh_quote(&cmd, st->binary);
		buf_adds(&cmd, " && echo @@binary-ok");
	}
	buf_reset(&out);
	if (ssh_exec(c, cmd.s, NULL, 0, &out, NULL, &status, err) < 0)
		goto out;
	st->running = strstr(out.s, "\n@@rc:0\n") != NULL;
	st->binary_ok = strstr(out.s, "@@binary-ok") != NULL;
	const char *srv = strstr(out.s, "Server:");
	const char *v = srv ? strstr(srv, "Version:") : NULL;
	if (st->running && v) {
		v += 8;
		v += strspn(v, " \t");
		st->server_version = xstrndup(v, strcspn(v, " \t\n"));
	}
	rc = 0;
out:
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errb);
	return rc;
}
