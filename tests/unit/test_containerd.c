/* The containerd config text gpuctl writes, and the import it adds. */
#include <criterion/criterion.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "gpuctl/node.h"
#include "gpuctl/buf.h"
#include "gpuctl/toml.h"
#include "gpuctl/yaml.h"

Test(containerd, dropin_v1_and_v2)
{
	char *d = containerd_dropin(1, "/usr/bin/nvidia-container-runtime", 0, NULL);
	cr_assert(strstr(d, "version = 2\n"));
	cr_assert(strstr(d, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n  runtime_type = \"io.containerd.runc.v2\""));
	cr_assert(strstr(d, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n  BinaryName = \"/usr/bin/nvidia-container-runtime\""));
	cr_assert_null(strstr(d, "default_runtime_name"));
	free(d);
	d = containerd_dropin(2, "/opt/nv/runtime \"x\"", 1, NULL);
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
	char *d = containerd_dropin(1, "/usr/bin/nvidia-container-runtime", 1, dump);
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
	char *d = containerd_dropin(2, "/usr/bin/nvidia-container-runtime", 0, sd);
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
	d = containerd_dropin(1, "/usr/bin/nvidia-container-runtime", 1, sd1);
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
