/* Undoing deploy's containerd change (src/node/undo.c): the change set's
 * scripts run here under /bin/sh against a temporary folder through the exec
 * hook, with a fake containerd (its `config dump` prints the drop-in when
 * config.toml imports conf.d, else config.toml), as test_remote.c does. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/remote.h"

/* a fake connection: how the next commands misbehave */
struct fake {
	size_t cut;       /* send only this many bytes of stdin (0: all) */
	int fail;         /* this many next commands fail as a broken connection */
	int empty;        /* this many next commands return nothing, exit 0 (no exit status) */
	int calls;
	int reconnects;
};

static int read_all(int fd, struct buf *b)
{
	char tmp[4096];
	ssize_t n;
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_add(b, tmp, (size_t)n);
	return 0;
}

static const char *path_prefix; /* fake node programs in path_prefix/bin */

static int local_exec(struct ssh_conn *conn, const char *cmd, const char *in, size_t in_len, struct buf *out,
		      struct buf *errout, int *status, struct gerr *err)
{
	struct fake *f = (struct fake *)conn;
	f->calls++;
	if (f->fail > 0) {
		f->fail--;
		return gerr_set(err, GERR_SSH_CONN, "node t: reading the output failed: connection reset");
	}
	if (f->empty > 0) {
		f->empty--;
		*status = 0;
		return 0;
	}
	struct buf full = BUF_INIT;
	if (path_prefix)
		buf_addf(&full, "PATH=%s/bin:$PATH; FAKE=%s; export PATH FAKE\n", path_prefix, path_prefix);
	buf_adds(&full, cmd);
	cmd = full.s;
	char inp[] = "/tmp/gpuctl-rin-XXXXXX", op[] = "/tmp/gpuctl-rout-XXXXXX", ep[] = "/tmp/gpuctl-rerr-XXXXXX";
	int fi = mkstemp(inp), fo = mkstemp(op), fe = mkstemp(ep);
	cr_assert(fi >= 0 && fo >= 0 && fe >= 0);
	size_t send = f->cut && f->cut < in_len ? f->cut : in_len;
	if (in && send)
		cr_assert_eq(write(fi, in, send), (ssize_t)send);
	lseek(fi, 0, SEEK_SET);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (out)
		read_all(fo, out);
	if (errout)
		read_all(fe, errout);
	close(fi);
	close(fo);
	close(fe);
	unlink(inp);
	unlink(op);
	unlink(ep);
	buf_release(&full);
	return 0;
}

static void fake_close(struct ssh_conn *c)
{
	(void)c;
}

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/gpuctl-remote-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	struct buf cmd = BUF_INIT;
	buf_adds(&cmd, "rm -rf -- ");
	sh_quote(&cmd, dir);
	struct fake f = { 0 };
	int st;
	local_exec((struct ssh_conn *)&f, cmd.s, NULL, 0, NULL, NULL, &st, NULL);
	buf_release(&cmd);
}

static char *slurp(const char *path)
{
	struct buf b = BUF_INIT;
	struct gerr e = GERR_INIT;
	if (buf_read_file(&b, path, 1 << 20, &e) < 0) {
		gerr_clear(&e);
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

static void spit(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return st.st_mode & 07777;
}

/* files in dir whose name contains s */
static int count_files(const char *d, const char *s)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	buf_adds(&cmd, "ls -A -- ");
	sh_quote(&cmd, d);
	struct fake f = { 0 };
	int st;
	local_exec((struct ssh_conn *)&f, cmd.s, NULL, 0, &out, NULL, &st, NULL);
	int n = 0;
	for (const char *p = out.s; (p = strstr(p, s)); p++)
		n++;
	buf_release(&cmd);
	buf_release(&out);
	return n;
}


static char *cfg_path, *dropin_path, *orig_text, *cd;

static void fake_node(void)
{
	mkdir_tmp();
	path_prefix = dir;
	char *bin = xasprintf("%s/bin", dir), *etc = xasprintf("%s/e t c", dir);
	cd = xasprintf("%s/e t c/containerd", dir);
	cr_assert_eq(mkdir(bin, 0755), 0);
	cr_assert_eq(mkdir(etc, 0755), 0);
	cr_assert_eq(mkdir(cd, 0755), 0);
	char *p = xasprintf("%s/containerd", bin);
	spit(p,
	     "#!/bin/sh\n"
	     "if [ \"$1\" = --config ]; then cfg=$2; shift 2; fi\n"
	     "case \"$1 $2\" in\n"
	     "'config dump') [ -f \"$cfg\" ] || exit 1; d=\"$(dirname \"$cfg\")/conf.d/99-gpuctl-nvidia.toml\"\n"
	     "  if [ -f \"$d\" ] && grep -q 'conf.d/\\*.toml' \"$cfg\"; then cat \"$d\"; else cat \"$cfg\"; fi;;\n"
	     "*) exit 1;;\nesac\n",
	     0755);
	free(p);
	p = xasprintf("%s/ctr", bin);
	spit(p, "#!/bin/sh\necho 'TYPE ID PLATFORMS STATUS'\necho 'io.containerd.grpc.v1 cri linux/amd64 ok'\n", 0755);
	free(p);
	cfg_path = xasprintf("%s/config.toml", cd);
	dropin_path = xasprintf("%s/conf.d/99-gpuctl-nvidia.toml", cd);
	struct buf b = BUF_INIT;
	struct gerr e = GERR_INIT;
	char *fx = xasprintf("%s/containerd/1.6.20-registry-auth-dump.toml", FIXTURES);
	cr_assert_eq(buf_read_file(&b, fx, 1 << 20, &e), 0);
	orig_text = buf_detach(&b);
	spit(cfg_path, orig_text, 0600);
	free(fx);
	free(bin);
	free(etc);
}

static void fake_node_done(void)
{
	rm_tmp();
	path_prefix = NULL;
	free(cfg_path);
	free(dropin_path);
	free(orig_text);
	free(cd);
}

static struct probe_result probe(void)
{
	static char rt[] = "/usr/bin/nvidia-container-runtime", ver[] = "1.6.20";
	struct probe_result p = { 0 };
	p.config_path = cfg_path;
	p.containerd_major = 1;
	p.containerd_version = ver;
	p.flavour = CR_CONTAINERD1;
	p.nvidia_runtime = rt;
	return p;
}

static void prepare(struct prep_result *r)
{
	struct fake f = { 0 };
	struct probe_result p = probe();
	struct containerd_opts o = { .restart_command = "true", .check_command = "true", .exec = local_exec, .close = fake_close };
	containerd_prepare((struct ssh_conn *)&f, &p, &o, r);
}

static void undo(const char *restart, int force, int dry, struct prep_result *r)
{
	struct fake f = { 0 };
	struct probe_result p = probe();
	struct containerd_opts o = { .restart_command = restart, .check_command = "true", .dry_run = dry,
				     .exec = local_exec, .close = fake_close };
	containerd_undo((struct ssh_conn *)&f, &p, &o, force, r);
}

static int steps_have(const struct prep_result *r, const char *s)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, r->steps)
		if (strstr(it->valuestring, s))
			return 1;
	return 0;
}

TestSuite(undo);

Test(undo, drop_import_takes_only_gpuctls_glob)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "version = 2\nimports = [\"/a/*.toml\", \"G\"]\n[x]\n", "version = 2\nimports = [\"/a/*.toml\"]\n[x]\n" },
		{ "version = 2\nimports = [\"G\", \"/a/*.toml\"]\n", "version = 2\nimports = [\"/a/*.toml\"]\n" },
		{ "version = 2\nimports = [\"G\"]\nroot = \"/r\"\n", "version = 2\nroot = \"/r\"\n" },
		{ "version = 2\nimports = [\"/a/*.toml\"]\n", NULL },
		{ "[x]\nimports = [\"G\"]\n", NULL }, /* not top-level: not containerd's imports */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = containerd_drop_import(cases[i].in, "G");
		if (cases[i].out)
			cr_assert(got && !strcmp(got, cases[i].out), "%zu: %s", i, got ? got : "(null)");
		else
			cr_assert_null(got, "%zu: %s", i, got);
		free(got);
	}
}

Test(undo, dump_without_nvidia_drops_its_tables_and_the_default)
{
	const char *a = "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"nvidia\"\n  snapshotter = \"overlayfs\"\n"
			"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n  runtime_type = \"io.containerd.runc.v2\"\n"
			"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n  BinaryName = \"/x\"\n"
			"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia-cdi]\n  runtime_type = \"io.containerd.runc.v2\"\n"
			"\n"
			"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
			"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidiax]\n  runtime_type = \"io.containerd.runc.v2\"\n";
	char *s = containerd_dump_without_nvidia(a, 1);
	cr_assert_str_eq(s, "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n"
			    "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
			    "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidiax]\n  runtime_type = \"io.containerd.runc.v2\"\n");
	free(s);
}

Test(undo, dropin_and_import_removed_byte_for_byte)
{
	fake_node();
	struct prep_result r;
	prepare(&r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	char *c = slurp(cfg_path);
	cr_assert_str_neq(c, orig_text, "deploy added the import");
	free(c);
	/* a dry run changes nothing */
	undo("true", 0, 1, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	cr_assert(steps_have(&r, "would remove"), "steps");
	cr_assert_eq(access(dropin_path, F_OK), 0, "a dry run leaves the drop-in");
	prep_result_release(&r);
	undo("true", 0, 0, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	cr_assert_str_eq(r.method, "drop-in");
	c = slurp(cfg_path);
	cr_assert_str_eq(c, orig_text, "config.toml byte for byte as before");
	free(c);
	cr_assert_eq(mode_of(cfg_path), 0600, "and its mode");
	cr_assert_eq(access(dropin_path, F_OK), -1, "the drop-in is gone");
	cr_assert_geq(count_files(cd, "config.toml.gpuctl-backup-"), 1, "backups are left in place");
	cr_assert(steps_have(&r, "left gpuctl's backups in place: "), "the backups are reported");
	char *lease = xasprintf("%s/.gpuctl.lease", cd);
	cr_assert_eq(access(lease, F_OK), -1, "the lock is released");
	free(lease);
	prep_result_release(&r);
	/* the second run finds nothing */
	undo("exit 1", 0, 0, &r);
	cr_assert_eq(r.status, PREP_UNCHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	fake_node_done();
}

Test(undo, a_persons_later_change_to_config_toml_is_kept)
{
	fake_node();
	struct prep_result r;
	prepare(&r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	char *c = slurp(cfg_path);
	char *changed = xasprintf("%s# a person's line\n", c);
	spit(cfg_path, changed, 0600);
	undo("true", 0, 0, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	char *after = slurp(cfg_path), *want = xasprintf("%s# a person's line\n", orig_text);
	cr_assert_str_eq(after, want, "only gpuctl's glob is taken out");
	cr_assert_eq(access(dropin_path, F_OK), -1);
	free(c), free(changed), free(after), free(want);
	prep_result_release(&r);
	fake_node_done();
}

/* what nvidia-ctk leaves: the effective configuration plus the nvidia
 * runtime, made the default; gpuctl's backup beside it */
static char *ctk_deploy(void)
{
	struct buf b = BUF_INIT;
	const char *d = strstr(orig_text, "default_runtime_name = \"runc\"");
	cr_assert_not_null(d);
	buf_add(&b, orig_text, (size_t)(d - orig_text));
	buf_adds(&b, "default_runtime_name = \"nvidia\"");
	buf_adds(&b, d + strlen("default_runtime_name = \"runc\""));
	buf_adds(&b, "\n        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia]\n"
		     "          runtime_type = \"io.containerd.runc.v2\"\n"
		     "          [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\n"
		     "            BinaryName = \"/usr/bin/nvidia-container-runtime\"\n");
	char *bk = xasprintf("%s.gpuctl-backup-20260101T000000Z-ab0", cfg_path);
	spit(bk, orig_text, 0600);
	spit(cfg_path, b.s, 0600);
	buf_release(&b);
	return bk;
}

Test(undo, nvidia_ctk_rewrite_restored_from_the_backup)
{
	fake_node();
	char *bk = ctk_deploy();
	struct prep_result r;
	undo("true", 0, 0, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	cr_assert_str_eq(r.method, "nvidia-ctk");
	cr_assert_str_eq(r.backup, bk);
	char *c = slurp(cfg_path);
	cr_assert_str_eq(c, orig_text, "config.toml is the backup again, default runtime runc");
	free(c);
	cr_assert_eq(access(bk, F_OK), 0, "the backup stays");
	prep_result_release(&r);
	undo("exit 1", 0, 0, &r);
	cr_assert_eq(r.status, PREP_UNCHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	free(bk);
	fake_node_done();
}

Test(undo, a_file_changed_by_a_person_since_is_refused_unless_forced)
{
	fake_node();
	char *bk = ctk_deploy();
	char *c = slurp(cfg_path);
	char *changed = xasprintf("%s[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"x\"]\n  endpoint = [\"y\"]\n", c);
	spit(cfg_path, changed, 0600);
	struct prep_result r;
	undo("true", 0, 0, &r);
	cr_assert_eq(r.status, PREP_FAILED);
	cr_assert_eq(r.err.code, GERR_CONFLICT, "%s", r.err.msg);
	cr_assert(strstr(r.err.msg, "was changed since gpuctl wrote it") && strstr(r.err.msg, "left untouched"), "%s", r.err.msg);
	cr_assert(r.err.hint && strstr(r.err.hint, "--force"), "the hint names --force");
	char *after = slurp(cfg_path);
	cr_assert_str_eq(after, changed, "nothing was written");
	free(after);
	prep_result_release(&r);
	undo("true", 1, 0, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	after = slurp(cfg_path);
	cr_assert_str_eq(after, orig_text, "--force restores the backup");
	free(after);
	prep_result_release(&r);
	free(c), free(changed), free(bk);
	fake_node_done();
}

Test(undo, failed_restart_rolls_back)
{
	fake_node();
	char *bk = ctk_deploy();
	char *before = slurp(cfg_path);
	struct prep_result r;
	undo("if [ ! -e \"$FAKE/once\" ]; then touch \"$FAKE/once\"; exit 1; fi", 0, 0, &r);
	cr_assert_eq(r.status, PREP_ROLLED_BACK, "%s", r.err.msg);
	char *after = slurp(cfg_path);
	cr_assert_str_eq(after, before, "gpuctl's configuration is back, proven by hash");
	free(after), free(before), free(bk);
	prep_result_release(&r);
	fake_node_done();
}

static void k3s_probe_undo(const char *tmpl, struct prep_result *r)
{
	struct fake f = { 0 };
	struct probe_result p = { 0 };
	p.config_path = (char *)tmpl;
	p.flavour = CR_K3S;
	struct containerd_opts o = { .restart_command = "true", .check_command = "true", .exec = local_exec, .close = fake_close };
	containerd_undo((struct ssh_conn *)&f, &p, &o, 0, r);
}

Test(undo, k3s_template_gpuctl_created_is_removed)
{
	fake_node();
	char *tmpl = xasprintf("%s/config.toml.tmpl", cd);
	spit(tmpl, "{{ template \"base\" . }}\n\n# Added by gpuctl: the NVIDIA container runtime.\n[plugins.x]\n", 0644);
	/* k3s regenerates config.toml: here it already is the base one */
	struct prep_result r;
	k3s_probe_undo(tmpl, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	cr_assert_eq(access(tmpl, F_OK), -1, "the template gpuctl created is gone");
	prep_result_release(&r);
	k3s_probe_undo(tmpl, &r);
	cr_assert_eq(r.status, PREP_UNCHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	free(tmpl);
	fake_node_done();
}

Test(undo, failed_restart_after_removing_the_dropin_restores_it)
{
	fake_node();
	struct prep_result r;
	prepare(&r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	char *cfg = slurp(cfg_path), *dropin = slurp(dropin_path);
	undo("if [ ! -e \"$FAKE/once\" ]; then touch \"$FAKE/once\"; exit 1; fi", 0, 0, &r);
	cr_assert_eq(r.status, PREP_ROLLED_BACK, "%s", r.err.msg);
	char *cfg2 = slurp(cfg_path), *dropin2 = slurp(dropin_path);
	cr_assert(dropin2 && !strcmp(dropin2, dropin), "the removed drop-in is back, proven by hash");
	cr_assert_str_eq(cfg2, cfg, "config.toml is gpuctl's again");
	free(cfg), free(dropin), free(cfg2), free(dropin2);
	prep_result_release(&r);
	fake_node_done();
}

Test(undo, k3s_template_goes_back_to_its_backup)
{
	fake_node();
	char *tmpl = xasprintf("%s/config.toml.tmpl", cd);
	const char *mine = "{{ template \"base\" . }}\n[plugins.mine]\n  x = 1";
	char *bk = xasprintf("%s.gpuctl-backup-20260101T000000Z-ab0", tmpl);
	spit(bk, mine, 0644);
	char *now = xasprintf("%s\n\n# Added by gpuctl: the NVIDIA container runtime.\n[plugins.x]\n", mine);
	spit(tmpl, now, 0644);
	struct prep_result r;
	k3s_probe_undo(tmpl, &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	cr_assert_str_eq(r.backup, bk);
	char *after = slurp(tmpl);
	cr_assert_str_eq(after, mine, "the template byte for byte as it was (without the newline gpuctl added)");
	free(after);
	prep_result_release(&r);
	/* a person's edit before gpuctl's marker: refused */
	char *edited = xasprintf("%s\n[plugins.theirs]\n\n# Added by gpuctl: the NVIDIA container runtime.\n[plugins.x]\n", mine);
	spit(tmpl, edited, 0644);
	k3s_probe_undo(tmpl, &r);
	cr_assert_eq(r.err.code, GERR_CONFLICT, "%s", r.err.msg);
	after = slurp(tmpl);
	cr_assert_str_eq(after, edited);
	free(after);
	prep_result_release(&r);
	free(tmpl), free(bk), free(now), free(edited);
	fake_node_done();
}
