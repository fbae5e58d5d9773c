/* The containerd config text gpuctl writes, and the import it adds. */
#include <criterion/criterion.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "gpuctl/node.h"
#include "gpuctl/render.h"
#include "gpuctl/buf.h"
#include "gpuctl/toml.h"
#include "gpuctl/yaml.h"

/* The drop-in as deploy renders it (embedded template). */
static char *dropin(int major, const char *rt, int def, const char *dump)
{
	char *d = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(containerd_dropin(NULL, major, rt, def, dump, &d, &err), 0, "%s", err.msg);
	return d;
}

Test(containerd, dropin_v1_and_v2)
{
	char *d = dropin(1, "/usr/bin/nvidia-container-runtime", 0, NULL);
	cr_assert(strstr(d, "version = 2\n"));
	cr_assert(strstr(d, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n  runtime_type = \"io.containerd.runc.v2\""));
	cr_assert(strstr(d, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n  BinaryName = \"/usr/bin/nvidia-container-runtime\""));
	cr_assert_null(strstr(d, "default_runtime_name"));
	free(d);
	d = dropin(2, "/opt/nv/runtime \"x\"", 1, NULL);
	cr_assert(strstr(d, "version = 3\n"));
	cr_assert(strstr(d, "[plugins.\"io.containerd.cri.v1.runtime\".containerd]\n  default_runtime_name = \"nvidia\""));
	cr_assert(strstr(d, "BinaryName = \"/opt/nv/runtime \\\"x\\\"\""), "quotes escaped for TOML: %s", d);
	free(d);
}

Test(containerd, dropin_carries_the_whole_cri_section)
{
	const char *dump =
		"version = 2\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n\n"
		"[plugins]\n\n  [plugins.\"io.containerd.gc.v1.scheduler\"]\n    pause_threshold = 0.02\n\n"
		"  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"localhost/pause:1\"\n\n"
		"    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      default_runtime_name = \"runc\"\n      snapshotter = \"overlayfs\"\n\n"
		"      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes]\n\n"
		"        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n          runtime_type = \"io.containerd.runc.v2\"\n\n"
		"          [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n            BinaryName = \"/old/path\"\n\n"
		"        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n          runtime_type = \"io.containerd.runc.v2\"\n\n"
		"          [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n            SystemdCgroup = true\n\n"
		"  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/opt/containerd\"\n";
	char *d = dropin(1, "/usr/bin/nvidia-container-runtime", 1, dump);
	cr_assert(strstr(d, "sandbox_image = \"localhost/pause:1\""), "the CRI settings are kept: %s", d);
	cr_assert(strstr(d, "SystemdCgroup = true"), "runc's options are kept: %s", d);
	cr_assert(strstr(d, "default_runtime_name = \"nvidia\""), "%s", d);
	cr_assert_null(strstr(d, "default_runtime_name = \"runc\""), "%s", d);
	cr_assert_null(strstr(d, "/old/path"), "an old nvidia runtime is replaced: %s", d);
	cr_assert_null(strstr(d, "pause_threshold"), "other plugins are not copied: %s", d);
	cr_assert_null(strstr(d, "[grpc]"), "%s", d);
	const char *first = strstr(d, "containerd.runtimes.nvidia]");
	cr_assert(first && !strstr(first + 1, "containerd.runtimes.nvidia]"), "one nvidia table: %s", d);
	free(d);
}

Test(containerd, add_import)
{
	const char *g = "/etc/containerd/conf.d/*.toml";
	char *r = containerd_add_import("version = 2\n\n[plugins]\n  x = 1\n", g, 2);
	cr_assert_str_eq(r, "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n\n[plugins]\n  x = 1\n");
	free(r);
	r = containerd_add_import("", g, 2);
	cr_assert_str_eq(r, "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n");
	free(r);
	r = containerd_add_import("imports = [\"/other/*.toml\"]\nversion = 2\n", g, 2);
	cr_assert_str_eq(r, "imports = [\"/other/*.toml\", \"/etc/containerd/conf.d/*.toml\"]\nversion = 2\n");
	free(r);
	r = containerd_add_import("version = 3\nimports = []\n", g, 3);
	cr_assert_str_eq(r, "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n");
	free(r);
	cr_assert_null(containerd_add_import("version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", g, 2),
		       "already imported: no change");
	/* a key named like imports inside a table is not the top-level one */
	r = containerd_add_import("version = 2\n[x]\nimports = [\"a\"]\n", g, 2);
	cr_assert(strstr(r, "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[x]\nimports = [\"a\"]\n"), "%s", r);
	free(r);
}

Test(inventory, load_and_errors)
{
	char path[] = "/tmp/gpuctl-inv-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char *good = "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\n"
			   "defaults: {user: gpuadmin, port: 2222, identityFile: /k, sudo: true, containerd: {restartCommand: 'rc restart'}}\n"
			   "nodes:\n- {name: a, address: 10.0.0.1}\n- {name: b, address: 10.0.0.2, port: 22, containerd: {flavour: k3s}}\n";
	cr_assert_eq(write(fd, good, strlen(good)), (ssize_t)strlen(good));
	close(fd);
	struct inventory inv;
	struct gerr err = GERR_INIT;
	cr_assert_eq(inventory_load(path, &inv, &err), 0, "%s", err.msg);
	cr_assert_eq(inv.n, 2);
	const struct node_spec *b = inventory_find(&inv, "b");
	cr_assert_not_null(b);
	struct node_spec s = { .name = xstrdup("b"), .sudo = -1 };
	node_spec_fill(&s, b);
	node_spec_fill(&s, &inv.defaults);
	cr_assert_eq(s.port, 22);
	cr_assert_str_eq(s.user, "gpuadmin");
	cr_assert_eq(s.flavour, CR_K3S);
	cr_assert_str_eq(s.restart_command, "rc restart");
	cr_assert_eq(s.sudo, 1);
	node_spec_release(&s);
	inventory_release(&inv);
	static const char *const bad[][2] = {
		{ "apiVersion: v1\nkind: Pod\n", "expected apiVersion: gpuctl.io/v1alpha1 and kind: Inventory" },
		{ "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {address: x}\n", "nodes[0] has no name" },
		{ "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: a, port: 70000}\n", "nodes[0].port must be a number from 1 to 65535" },
		{ "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: a}\n- {name: a}\n", "node \"a\" is listed twice" },
		{ "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: a, usr: x}\n", "unknown field \"usr\"" },
		{ "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: a, containerd: {flavour: docker}}\n", "flavour \"docker\" is not one of" },
		{ "apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\ndefaults: {sudo: maybe}\n", "defaults.sudo must be true or false" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(path, "w");
		fputs(bad[i][0], f);
		fclose(f);
		cr_expect_eq(inventory_load(path, &inv, &err), -1, "case %zu", i);
		cr_expect(err.msg && strstr(err.msg, bad[i][1]) && strstr(err.msg, path), "case %zu: %s", i, err.msg);
		gerr_clear(&err);
	}
	unlink(path);
}

/* ---- reading dumps: containerd 1.6 (double quotes) and 2.2 (single quotes),
 * the real `containerd config dump` outputs of the rig's nodes ---- */

static char *fixture(const char *name)
{
	struct buf b = BUF_INIT;
	struct gerr err = GERR_INIT;
	char *path = xasprintf("%s/containerd/%s", FIXTURES, name);
	cr_assert_eq(buf_read_file(&b, path, 1 << 20, &err), 0, "%s", err.msg);
	free(path);
	return buf_detach(&b);
}

/* text with the first occurrence of from replaced by to (a new string) */
static char *replace1(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	cr_assert_not_null(at, "fixture lacks %s", from);
	return xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

Test(toml, headers_and_values_in_either_quoting)
{
	char *h = toml_header("  [plugins.'io.containerd.cri.v1.runtime'.containerd]", 54);
	cr_assert_str_eq(h, "plugins.\"io.containerd.cri.v1.runtime\".containerd");
	free(h);
	h = toml_header("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"nvidia\"]", 66);
	cr_assert_str_eq(h, "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia", "a quoted bare-safe segment is bare");
	free(h);
	cr_assert_null(toml_header("key = 1", 7));
	cr_assert_null(toml_header("[unterminated", 13));
	const char *t = "top = 'x'\n[a.'b.c']\n  s = \"q\\\"uote\\\\d\"\n  n = 3\n  lit = 'c:\\path'\n[a.\"b.c\".d]\n  s = 'deeper'\n";
	char *v = toml_get_string(t, "a.\"b.c\"", "s");
	cr_assert_str_eq(v, "q\"uote\\d");
	free(v);
	v = toml_get_string(t, "a.\"b.c\"", "lit");
	cr_assert_str_eq(v, "c:\\path", "literal strings keep backslashes");
	free(v);
	cr_assert_null(toml_get_string(t, "a.\"b.c\"", "n"), "not a string");
	v = toml_get_string(t, "", "top");
	cr_assert_str_eq(v, "x");
	free(v);
	v = toml_get_string(t, "a.\"b.c\".d", "s");
	cr_assert_str_eq(v, "deeper");
	free(v);
	cr_assert(toml_within("a.b.c", "a.b"));
	cr_assert(toml_within("a.b", "a.b"));
	cr_assert_not(toml_within("a.bc", "a.b"));
}

Test(containerd, runtime_configured_reads_both_dump_styles)
{
	char *d1 = fixture("1.6.20-dump.toml"), *d2 = fixture("2.2.9-dump.toml");
	cr_assert_not(containerd_runtime_configured(d1, 1, NULL, 0));
	cr_assert_not(containerd_runtime_configured(d2, 2, NULL, 0));
	char *grpc = toml_get_string(d2, "grpc", "address");
	cr_assert_str_eq(grpc, "/run/containerd/containerd.sock");
	free(grpc);
	/* the nvidia runtime as containerd 2 prints it */
	char *with = replace1(d2, "        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n",
			      "        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia]\n"
			      "          runtime_type = 'io.containerd.runc.v2'\n"
			      "          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia.options]\n"
			      "            BinaryName = '/usr/bin/nvidia-container-runtime'\n"
			      "        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n");
	cr_assert(containerd_runtime_configured(with, 2, "/usr/bin/nvidia-container-runtime", 0));
	cr_assert(containerd_runtime_configured(with, 2, NULL, 0));
	cr_assert_not(containerd_runtime_configured(with, 2, "/usr/local/bin/nvidia-container-runtime", 0),
		      "another BinaryName is not this runtime");
	cr_assert_not(containerd_runtime_configured(with, 1, NULL, 0), "1.x's plugin is another table");
	cr_assert_not(containerd_runtime_configured(with, 2, NULL, 1), "not the default runtime");
	char *def = replace1(with, "default_runtime_name = 'runc'", "default_runtime_name = 'nvidia'");
	cr_assert(containerd_runtime_configured(def, 2, NULL, 1));
	/* nothing but the nvidia runtime and the default's name differ */
	struct buf what = BUF_INIT;
	cr_assert_not(containerd_cri_settings_diff(d2, def, 2, &what), "%s", what.s);
	char *cdi = replace1(def, "enable_cdi = true", "enable_cdi = false");
	cr_assert(containerd_cri_settings_diff(d2, cdi, 2, &what));
	cr_assert_str_eq(what.s, "plugins.\"io.containerd.cri.v1.runtime\" enable_cdi = true, now false");
	buf_release(&what);
	char *other = replace1(d2, "pause_threshold = 0.02", "pause_threshold = 0.5");
	cr_assert_not(containerd_cri_settings_diff(d2, other, 2, NULL), "another plugin is not the CRI plugin's business");
	free(d1);
	free(d2);
	free(with);
	free(def);
	free(cdi);
	free(other);
}

Test(containerd, nvidia_runtime_modelled_on_runc)
{
	/* a node whose kubelet uses the systemd cgroup driver: runc has
	 * SystemdCgroup = true, and so must the nvidia runtime (as nvidia-ctk does) */
	char *d2 = fixture("2.2.9-dump.toml");
	char *sd = replace1(d2, "SystemdCgroup = false", "SystemdCgroup = true");
	char *d = dropin(2, "/usr/bin/nvidia-container-runtime", 0, sd);
	cr_assert(strstr(d, "version = 3\n"), "%s", d);
	const char *opt = strstr(d, "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.nvidia.options]\n");
	cr_assert_not_null(opt, "%s", d);
	cr_assert(strstr(opt, "  SystemdCgroup = true\n"), "%s", d);
	cr_assert(strstr(opt, "  BinaryName = \"/usr/bin/nvidia-container-runtime\"\n"), "%s", d);
	cr_assert_null(strstr(d, "BinaryName = ''"), "runc's empty BinaryName is not copied: %s", d);
	cr_assert(strstr(d, "  sandboxer = 'podsandbox'\n"), "runtime settings copied: %s", d);
	cr_assert_null(strstr(d, "enable_cdi"), "containerd 2 merges key by key: only the runtime is written: %s", d);
	cr_assert_null(strstr(d, "default_runtime_name"), "%s", d);
	free(d);
	/* 1.x: the whole plugin, runc's SystemdCgroup in both runtimes */
	char *d1 = fixture("1.6.20-dump.toml");
	char *sd1 = replace1(d1, "SystemdCgroup = false", "SystemdCgroup = true");
	d = dropin(1, "/usr/bin/nvidia-container-runtime", 1, sd1);
	opt = strstr(d, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n");
	cr_assert_not_null(opt, "%s", d);
	cr_assert(strstr(opt, "  SystemdCgroup = true\n"), "%s", d);
	cr_assert(strstr(d, "sandbox_image = \"localhost/gpuctl-rig/pause:1\""), "%s", d);
	cr_assert(strstr(d, "default_runtime_name = \"nvidia\""), "%s", d);
	free(d);
	free(d1);
	free(sd1);
	free(d2);
	free(sd);
}

/* ---- re-preparing a node whose nvidia runtime has no runc table to copy
 * (EKS nodeadm, nvidia-ctk --set-as-default) ---- */

Test(containerd, reprepare_keeps_the_existing_nvidia_runtime_settings)
{
	char *eks = fixture("eks-nodeadm-nvidia-1.7-dump.toml");
	cr_assert(containerd_runtime_configured(eks, 1, "/usr/bin/nvidia-container-runtime", 1), "the fixture is configured");
	/* another runtime path (the GPU operator's): re-prepared */
	cr_assert_not(containerd_runtime_configured(eks, 1, "/usr/local/nvidia/toolkit/nvidia-container-runtime", 0));
	char *d = dropin(1, "/usr/local/nvidia/toolkit/nvidia-container-runtime", 0, eks);
	const char *nv = strstr(d, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n");
	cr_assert_not_null(nv, "%s", d);
	cr_assert(strstr(nv, "  base_runtime_spec = \"/etc/containerd/base-runtime-spec.json\"\n"), "%s", nv);
	const char *opt = strstr(nv, "runtimes.nvidia.options]\n");
	cr_assert_not_null(opt, "%s", nv);
	cr_assert(strstr(opt, "  SystemdCgroup = true\n"), "the existing runtime's SystemdCgroup is kept: %s", opt);
	cr_assert(strstr(opt, "  BinaryName = \"/usr/local/nvidia/toolkit/nvidia-container-runtime\"\n"), "%s", opt);
	cr_assert_null(strstr(opt, "/usr/bin/nvidia-container-runtime"), "the old BinaryName is replaced: %s", opt);
	const char *first = strstr(d, "runtimes.nvidia]");
	cr_assert_null(strstr(first + 1, "runtimes.nvidia]"), "one nvidia table: %s", d);
	/* every key once */
	const char *sc = strstr(opt, "SystemdCgroup");
	cr_assert_null(strstr(sc + 1, "SystemdCgroup"), "no key twice: %s", opt);
	cr_assert(strstr(d, "default_runtime_name = \"nvidia\""), "%s", d);
	free(d);
	free(eks);
}

Test(containerd, verification_covers_the_nvidia_runtimes_own_settings)
{
	char *eks = fixture("eks-nodeadm-nvidia-1.7-dump.toml");
	/* what the old drop-in made of it: only runtime_type and BinaryName */
	char *lost = replace1(eks, "            SystemdCgroup = true\n", "");
	struct buf what = BUF_INIT;
	cr_assert(containerd_cri_settings_diff(eks, lost, 1, &what), "losing SystemdCgroup must be refused");
	cr_assert(strstr(what.s, "lost") && strstr(what.s, "SystemdCgroup = true"), "%s", what.s);
	buf_reset(&what);
	char *flipped = replace1(eks, "/etc/containerd/base-runtime-spec.json", "");
	cr_assert(containerd_cri_settings_diff(eks, flipped, 1, &what));
	cr_assert(strstr(what.s, "base_runtime_spec"), "%s", what.s);
	buf_reset(&what);
	/* a new BinaryName is the change itself */
	char *bin = replace1(eks, "BinaryName = \"/usr/bin/nvidia-container-runtime\"", "BinaryName = \"/opt/x\"");
	cr_assert_not(containerd_cri_settings_diff(eks, bin, 1, &what), "%s", what.s);
	/* gaining settings in the nvidia runtime is fine (copied from runc) */
	cr_assert_not(containerd_cri_settings_diff(lost, eks, 1, &what), "%s", what.s);
	buf_release(&what);
	free(eks);
	free(lost);
	free(flipped);
	free(bin);
}

Test(containerd, registry_credentials_are_found)
{
	char *plain = fixture("1.6.20-dump.toml"), *auth = fixture("1.6.20-registry-auth-dump.toml");
	char *eks = fixture("eks-nodeadm-nvidia-1.7-dump.toml"), *d2 = fixture("2.2.9-dump.toml");
	cr_assert_not(containerd_cri_has_auth(plain, 1));
	cr_assert_not(containerd_cri_has_auth(eks, 1), "config_path alone is no secret");
	cr_assert_not(containerd_cri_has_auth(d2, 2));
	cr_assert(containerd_cri_has_auth(auth, 1));
	char *legacy = replace1(plain, "      [plugins.\"io.containerd.grpc.v1.cri\".registry.auths]\n",
				"      [plugins.\"io.containerd.grpc.v1.cri\".registry.auths]\n"
				"        [plugins.\"io.containerd.grpc.v1.cri\".registry.auths.\"https://r.example\"]\n"
				"          auth = \"dXNlcjpwYXNz\"\n");
	cr_assert(containerd_cri_has_auth(legacy, 1), "the deprecated registry.auths too");
	/* the 1.x drop-in copies them: that is why containerd.c caps its mode */
	char *d = dropin(1, "/usr/bin/nvidia-container-runtime", 0, auth);
	cr_assert(strstr(d, "password = \"s3cret\""), "%s", d);
	free(d);
	free(plain);
	free(auth);
	free(eks);
	free(d2);
	free(legacy);
}

Test(node, flavour_names_and_readiness)
{
	enum cr_flavour f = CR_UNKNOWN;
	static const char *const names[] = { "containerd1", "containerd2", "k3s", "rke2" };
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(cr_flavour_parse(names[i], &f), 0);
		cr_assert_str_eq(cr_flavour_name(f), names[i]);
	}
	cr_assert_eq(cr_flavour_parse("docker", &f), -1);
	cr_assert_eq(cr_flavour_parse("none", &f), -1, "none is reported, never configured");
	cr_assert_str_eq(cr_flavour_name(CR_NONE), "none");
	cr_assert_str_eq(cr_flavour_name(CR_UNKNOWN), "unknown");
	cr_assert(cr_flavour_embedded(CR_K3S) && cr_flavour_embedded(CR_RKE2) && !cr_flavour_embedded(CR_CONTAINERD2));
	struct probe_result p = { 0 };
	p.problems = cJSON_CreateArray();
	p.driver_ok = 1;
	char rtp[] = "/usr/bin/nvidia-container-runtime";
	p.nvidia_runtime = rtp;
	p.modules.nvidia = p.modules.nvidia_uvm = 1;
	p.flavour = CR_K3S; /* k3s embeds containerd: no containerd on PATH is fine */
	struct gerr why = GERR_INIT;
	cr_assert(node_ready_for_runtime(&p, &why));
	p.flavour = CR_NONE;
	cJSON_AddItemToArray(p.problems, cJSON_CreateString("containerd is not installed or does not run: sh: containerd: not found"));
	cr_assert_not(node_ready_for_runtime(&p, &why));
	cr_assert_str_eq(why.msg, "containerd is not installed or does not run: sh: containerd: not found");
	gerr_clear(&why);
	cJSON_Delete(p.problems);
	cr_assert_str_eq(prep_status_name(PREP_ROLLBACK_FAILED), "rollback-failed");
	cr_assert_str_eq(prep_status_name(PREP_ROLLED_BACK), "rolled-back");
}

static int load_text(const char *text, struct inventory *inv, struct gerr *err)
{
	char path[] = "/tmp/gpuctl-inv-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int rc = inventory_load(path, inv, err);
	if (rc < 0)
		cr_expect(err->msg && strstr(err->msg, path), "the error names the file: %s", err->msg);
	unlink(path);
	return rc;
}

Test(inventory, config_path_must_be_absolute)
{
	static const char *const bad[] = { "-n", "etc/containerd/config.toml", "./config.toml" };
	for (size_t i = 0; i < 3; i++) {
		char *t = xasprintf("apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: gpu-7, containerd: {configPath: '%s'}}\n",
				    bad[i]);
		struct inventory inv;
		struct gerr err = GERR_INIT;
		cr_assert_eq(load_text(t, &inv, &err), -1, "%s", bad[i]);
		cr_assert(strstr(err.msg, "node \"gpu-7\"") && strstr(err.msg, "configPath") &&
				  strstr(err.msg, "must be an absolute path") && strstr(err.msg, bad[i]),
			  "%s", err.msg);
		gerr_clear(&err);
		free(t);
	}
	struct inventory inv;
	struct gerr err = GERR_INIT;
	cr_assert_eq(load_text("apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\ndefaults: {containerd: {configPath: x.toml}}\n", &inv, &err),
		     -1);
	cr_assert(strstr(err.msg, "defaults.containerd.configPath"), "%s", err.msg);
	gerr_clear(&err);
	cr_assert_eq(load_text("apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: a, containerd: {configPath: /etc/c d/config.toml}}\n",
			       &inv, &err),
		     0, "%s", err.msg);
	inventory_release(&inv);
}

struct job_like {
	int before;
	struct node_spec spec;
	char after[24];
};

Test(inventory, duplicate_addresses_are_refused)
{
	struct job_like j[3] = { 0 };
	char n1[] = "gpu-1", n2[] = "gpu-2", n3[] = "gpu-3", a1[] = "10.0.0.1", a3[] = "10.0.0.3";
	j[0].spec = (struct node_spec){ .name = n1, .address = a1, .port = 0 };
	j[1].spec = (struct node_spec){ .name = n2, .address = a1, .port = 2222 };
	j[2].spec = (struct node_spec){ .name = n3, .address = a3 };
	struct gerr err = GERR_INIT;
	cr_assert_eq(node_specs_check_addresses(&j[0].spec, 3, sizeof(j[0]), &err), 0, "another port is another node");
	j[2].spec.address = a1;
	j[2].spec.port = 22;
	cr_assert_eq(node_specs_check_addresses(&j[0].spec, 3, sizeof(j[0]), &err), -1);
	cr_assert_eq(err.code, GERR_USAGE);
	cr_assert(strstr(err.msg, "nodes gpu-1 and gpu-3 have the same address 10.0.0.1:22"), "%s", err.msg);
	gerr_clear(&err);
	j[2].spec.address = NULL; /* Talos: no address, no SSH */
	cr_assert_eq(node_specs_check_addresses(&j[0].spec, 3, sizeof(j[0]), &err), 0);
}

Test(containerd, dropin_from_an_override_template_is_checked)
{
	char dir[] = "/tmp/gpuctl-tmpl-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/containerd-dropin.toml.tmpl", dir);
	FILE *f = fopen(path, "w");
	/* an override that forgets the runtime's BinaryName */
	fputs("version = 2\n[plugins.{{ .plugin | toml }}.containerd.runtimes.nvidia]\n  runtime_type = \"io.containerd.runc.v2\"\n", f);
	fclose(f);
	struct render_ctx rc = { .dir = dir };
	char *d = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(containerd_dropin(&rc, 1, "/usr/bin/nvidia-container-runtime", 0, NULL, &d, &err), -1);
	cr_assert_eq(err.code, GERR_INVALID);
	cr_assert(strstr(err.msg, "containerd-dropin.toml.tmpl") && strstr(err.msg, "BinaryName"), "%s", err.msg);
	gerr_clear(&err);
	/* a good override is used */
	f = fopen(path, "w");
	fputs("# site policy\nversion = 2\n[plugins.{{ .plugin | toml }}.containerd.runtimes.nvidia]\n"
	      "  runtime_type = \"io.containerd.runc.v2\"\n[plugins.{{ .plugin | toml }}.containerd.runtimes.nvidia.options]\n"
	      "  BinaryName = {{ .binary_name | toml }}\n", f);
	fclose(f);
	cr_assert_eq(containerd_dropin(&rc, 1, "/usr/bin/nvidia-container-runtime", 0, NULL, &d, &err), 0, "%s", err.msg);
	cr_assert(!strncmp(d, "# site policy\n", 14), "%s", d);
	free(d);
	unlink(path);
	rmdir(dir);
}
