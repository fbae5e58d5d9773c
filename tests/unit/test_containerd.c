/* The containerd config text gpuctl writes, and the import it adds. */
#include <criterion/criterion.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "gpuctl/node.h"
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
	cr_assert_str_eq(s.flavour, "k3s");
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
