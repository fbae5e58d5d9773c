/* The remote file helper: the scripts it sends are plain sh, so they run
 * here under /bin/sh against a temporary folder (no SSH), through an exec
 * hook that can cut the input short or break "the connection". */
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

static struct fake second;

static int fake_reconnect(void *ud, struct ssh_conn **c, struct gerr *err)
{
	(void)err;
	struct fake *f = ud;
	f->reconnects++;
	memset(&second, 0, sizeof(second));
	*c = (struct ssh_conn *)&second;
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

static struct remote_opts opts(struct fake *f)
{
	struct remote_opts o = { .node = "t", .lockdir = dir, .exec = local_exec, .close = fake_close };
	(void)f;
	return o;
}

TestSuite(remote, .init = mkdir_tmp, .fini = rm_tmp);

Test(remote, sha256_and_backup_names)
{
	char h[65];
	remote_sha256_hex("abc", 3, h);
	cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	char *a = remote_backup_name("/etc/containerd/config.toml", 1764700000, "1a2b");
	cr_assert_str_eq(a, "/etc/containerd/config.toml.gpuctl-backup-20251202T182640Z-1a2b");
	free(a);
	/* two runs in the same second never share a name */
	char *r1 = remote_random_hex(4), *r2 = remote_random_hex(4);
	cr_assert_eq(strlen(r1), 8);
	cr_assert_str_neq(r1, r2);
	char *n1 = remote_backup_name("/x", 1764700000, r1), *n2 = remote_backup_name("/x", 1764700000, r2);
	cr_assert_str_neq(n1, n2);
	free(r1), free(r2), free(n1), free(n2);
}

Test(remote, write_keeps_hostile_paths_quoted)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	static const char *const names[] = { "-n", "with space", "it's", "$(touch pwned)", "`touch pwned2`", "a\"b", "new\nline", NULL };
	for (int i = 0; names[i]; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		cr_assert_eq(remote_change_write(chg, p, "x = 1\n", 6, (struct remote_mode){ 0, 0 }, &err), 0, "%s: %s",
			     names[i], err.msg);
		char *t = slurp(p);
		cr_assert_str_eq(t, "x = 1\n", "%s", names[i]);
		cr_assert_eq(mode_of(p), 0644, "a new file gets 0644");
		free(t);
		free(p);
	}
	cr_assert_eq(count_files(".", "pwned"), 0);
	char *pw = xasprintf("%s/pwned", dir);
	cr_assert_eq(access(pw, F_OK), -1, "a path reached the shell unquoted");
	free(pw);
	cr_assert_eq(count_files(dir, "gpuctl-tmp"), 0, "no temporary file left");
	cr_assert_eq(remote_change_commit(chg, &err), 0, "%s", err.msg);
	remote_change_free(chg);
}

Test(remote, write_keeps_mode_and_caps_new_files)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *cfg = xasprintf("%s/config.toml", dir), *drop = xasprintf("%s/conf.d/99.toml", dir);
	spit(cfg, "version = 2\n", 0600);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	struct buf t = BUF_INIT;
	struct remote_stat st;
	cr_assert_eq(remote_change_read(chg, cfg, &t, &st, &err), 0, "%s", err.msg);
	cr_assert(st.exists);
	cr_assert_eq(st.mode, 0600);
	cr_assert_str_eq(t.s, "version = 2\n");
	cr_assert_eq(remote_change_read(chg, drop, &t, &st, &err), 0, "%s", err.msg);
	cr_assert_not(st.exists);
	cr_assert_eq(remote_change_write(chg, cfg, "version = 2\nimports = []\n", 25, (struct remote_mode){ 0, 0 }, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(mode_of(cfg), 0600, "a replaced file keeps its mode");
	/* auth material copied from a 0600 file: the new file is never wider */
	cr_assert_eq(remote_change_write(chg, drop, "password = 'x'\n", 15, (struct remote_mode){ 0644, 0600 }, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(mode_of(drop), 0600);
	char *cd = xasprintf("%s/conf.d", dir);
	cr_assert_eq(mode_of(cd), 0755, "a new folder is readable as before (umask 022)");
	free(cd);
	remote_change_commit(chg, &err);
	remote_change_free(chg);
	buf_release(&t);
	free(cfg);
	free(drop);
}

Test(remote, truncated_input_is_never_renamed)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *cfg = xasprintf("%s/config.toml", dir);
	spit(cfg, "original\n", 0644);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	f.cut = 10; /* the connection dropped after 10 bytes */
	const char *content = "a much longer configuration that did not arrive whole\n";
	cr_assert_eq(remote_change_write(chg, cfg, content, strlen(content), (struct remote_mode){ 0, 0 }, &err), -1);
	cr_assert(strstr(err.msg, "what arrived differs from what was sent"), "%s", err.msg);
	cr_assert(strstr(err.msg, "the file was not replaced"), "%s", err.msg);
	char *now = slurp(cfg);
	cr_assert_str_eq(now, "original\n");
	cr_assert_eq(count_files(dir, "gpuctl-tmp"), 0, "no temporary file left");
	f.cut = 0;
	free(now);
	gerr_clear(&err);
	remote_change_free(chg);
	free(cfg);
}

Test(remote, lock_excludes_a_second_run)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *a, *b;
	struct gerr err = GERR_INIT;
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &b, &err), -1);
	cr_assert_eq(err.code, GERR_CONFLICT);
	char *want = xasprintf("node t: another gpuctl is changing this node (lock %s/.gpuctl.lock held)", dir);
	cr_assert_str_eq(err.msg, want);
	cr_assert(err.hint && strstr(err.hint, "expires at"), "%s", err.hint);
	free(want);
	gerr_clear(&err);
	/* the first run's commands still work; after it ends the node is free */
	int st;
	struct buf out = BUF_INIT;
	cr_assert_eq(remote_change_exec(a, "echo hello; exit 3", NULL, &out, NULL, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st, 3);
	cr_assert_str_eq(out.s, "hello\n");
	buf_release(&out);
	cr_assert_eq(remote_change_commit(a, &err), 0, "%s", err.msg);
	remote_change_free(a);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &b, &err), 0, "%s", err.msg);
	remote_change_free(b); /* releases */
	/* an expired lease of a run that died is taken over */
	char *lease = xasprintf("%s/.gpuctl.lease", dir);
	spit(lease, "gpuctl-dead-run 1\n", 0644);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &b, &err), 0, "%s", err.msg);
	remote_change_free(b);
	free(lease);
}

Test(remote, rollback_restores_and_proves_it)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *cfg = xasprintf("%s/config.toml", dir), *drop = xasprintf("%s/conf.d/99.toml", dir);
	spit(cfg, "original\n", 0640);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	cr_assert_eq(remote_change_write(chg, cfg, "changed\n", 8, (struct remote_mode){ 0, 0 }, &err), 0, "%s", err.msg);
	cr_assert_eq(remote_change_write(chg, drop, "new\n", 4, (struct remote_mode){ 0, 0 }, &err), 0, "%s", err.msg);
	cr_assert_eq(count_files(dir, "config.toml.gpuctl-backup-"), 1);
	cr_assert_eq(remote_change_written(chg), 2);
	cJSON *manual = NULL;
	cr_assert_eq(remote_change_rollback(chg, &manual, &err), 0, "%s", err.msg);
	cr_assert_null(manual);
	char *now = slurp(cfg);
	cr_assert_str_eq(now, "original\n");
	cr_assert_eq(mode_of(cfg), 0640);
	cr_assert_eq(access(drop, F_OK), -1, "a file that did not exist is removed");
	free(now);
	remote_change_free(chg);
	free(cfg);
	free(drop);
}

Test(remote, rollback_failed_gives_manual_steps)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *cfg = xasprintf("%s/config.toml", dir);
	spit(cfg, "original\n", 0644);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	const char *bak;
	cr_assert_eq(remote_change_backup(chg, cfg, &bak, &err), 0, "%s", err.msg);
	cr_assert_not_null(bak);
	cr_assert_eq(remote_change_write(chg, cfg, "changed\n", 8, (struct remote_mode){ 0, 0 }, &err), 0, "%s", err.msg);
	spit(bak, "someone changed the backup\n", 0644);
	cJSON *manual = NULL;
	cr_assert_eq(remote_change_rollback(chg, &manual, &err), -1);
	cr_assert(strstr(err.msg, "rollback failed"), "%s", err.msg);
	cr_assert(strstr(err.msg, "differs from its backup"), "%s", err.msg);
	cr_assert_not_null(manual);
	struct buf want = BUF_INIT;
	buf_adds(&want, "cp -p -- ");
	sh_quote(&want, bak);
	buf_addc(&want, ' ');
	sh_quote(&want, cfg);
	cr_assert_str_eq(cJSON_GetArrayItem(manual, 0)->valuestring, want.s);
	cr_assert(err.hint && strstr(err.hint, want.s), "%s", err.hint);
	buf_release(&want);
	cJSON_Delete(manual);
	gerr_clear(&err);
	remote_change_free(chg);
	free(cfg);
}

Test(remote, rollback_reconnects_once)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	o.reconnect = fake_reconnect;
	o.reconnect_ud = &f;
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *cfg = xasprintf("%s/config.toml", dir);
	spit(cfg, "original\n", 0644);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	cr_assert_eq(remote_change_write(chg, cfg, "changed\n", 8, (struct remote_mode){ 0, 0 }, &err), 0, "%s", err.msg);
	f.fail = 100; /* the first connection is gone for good */
	cJSON *manual = NULL;
	cr_assert_eq(remote_change_rollback(chg, &manual, &err), 0, "%s", err.msg);
	cr_assert_eq(f.reconnects, 1);
	char *now = slurp(cfg);
	cr_assert_str_eq(now, "original\n");
	free(now);
	remote_change_free(chg);
	/* without a way to reconnect: rollback-failed, with the steps */
	f.fail = 0;
	o.reconnect = NULL;
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	cr_assert_eq(remote_change_write(chg, cfg, "changed\n", 8, (struct remote_mode){ 0, 0 }, &err), 0, "%s", err.msg);
	f.fail = 100;
	cr_assert_eq(remote_change_rollback(chg, &manual, &err), -1);
	cr_assert_eq(cJSON_GetArraySize(manual), 1);
	cJSON_Delete(manual);
	gerr_clear(&err);
	remote_change_free(chg);
	free(cfg);
}

Test(remote, missing_marker_is_a_failure)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *cfg = xasprintf("%s/config.toml", dir);
	spit(cfg, "original\n", 0644);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	int st = 0;
	f.empty = 1; /* exit 0 but no output: the connection was cut, no exit status came */
	cr_assert_eq(remote_change_exec(chg, "systemctl restart containerd", NULL, NULL, NULL, &st, &err), -1);
	cr_assert_eq(err.code, GERR_SSH_COMMAND);
	cr_assert(strstr(err.msg, "did not run to its end"), "%s", err.msg);
	gerr_clear(&err);
	const char *bak;
	cr_assert_eq(remote_change_backup(chg, cfg, &bak, &err), 0, "%s", err.msg);
	f.empty = 1;
	cr_assert_eq(remote_change_write(chg, cfg, "x\n", 2, (struct remote_mode){ 0, 0 }, &err), -1);
	gerr_clear(&err);
	remote_change_free(chg);
	free(cfg);
}

Test(remote, reply_parsers)
{
	struct gerr err = GERR_INIT;
	const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	cr_assert_eq(remote_reply_write("@@mismatch 10 abc\n", "n", "/p", &err), -1);
	cr_assert(strstr(err.msg, "was not replaced"));
	cr_assert_eq(remote_reply_write("", "n", "/p", &err), -1);
	cr_assert_eq(remote_reply_write("@@written\n", "n", "/p", &err), 0);
	char *ok = xasprintf("@@restored %s\n", sha);
	cr_assert_eq(remote_reply_restore(ok, 1, sha, "n", "/p", &err), 0);
	cr_assert_eq(remote_reply_restore(ok, 1, "0000000000000000000000000000000000000000000000000000000000000000", "n", "/p", &err),
		     -1);
	cr_assert_eq(remote_reply_restore("", 1, sha, "n", "/p", &err), -1);
	cr_assert_eq(remote_reply_restore("@@removed\n", 0, NULL, "n", "/p", &err), 0);
	cr_assert_eq(remote_reply_restore("@@still-present\n", 0, NULL, "n", "/p", &err), -1);
	free(ok);
	struct buf t = BUF_INIT;
	struct remote_stat st;
	const char *cut = "@@stat 644 0 0 100\nversion = 2\n";
	cr_assert_eq(remote_reply_read(cut, strlen(cut), &t, &st, "n", "/p", &err), -1, "a read cut short is an error");
	const char *whole = "@@stat 600 0 0 4\nabc\n@@eof\n";
	cr_assert_eq(remote_reply_read(whole, strlen(whole), &t, &st, "n", "/p", &err), 0, "%s", err.msg);
	cr_assert_str_eq(t.s, "abc\n");
	cr_assert_eq(st.mode, 0600);
	buf_release(&t);
	gerr_clear(&err);
	char *m = remote_manual_restore("/etc/x y", "/etc/x y.bak'$(z)", 1);
	cr_assert_str_eq(m, "cp -p -- '/etc/x y.bak'\\''$(z)' '/etc/x y'");
	free(m);
	m = remote_manual_restore("-n", NULL, 0);
	cr_assert_str_eq(m, "rm -f -- '-n'");
	free(m);
}

/* ---- containerd_prepare end to end against /bin/sh: a fake containerd
 * (1.x: an imported drop-in replaces the CRI plugin section), a fake ctr,
 * restart and check commands; the config under a folder with a space ---- */

static char *cfg_path, *dropin_path, *orig_text;

static void fake_node(const char *restart_fails)
{
	mkdir_tmp();
	path_prefix = dir;
	char *bin = xasprintf("%s/bin", dir), *etc = xasprintf("%s/e t c", dir), *cd = xasprintf("%s/e t c/containerd", dir);
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
	(void)restart_fails;
	free(bin);
	free(etc);
	free(cd);
}

static void fake_node_done(void)
{
	rm_tmp();
	path_prefix = NULL;
	free(cfg_path);
	free(dropin_path);
	free(orig_text);
}

static void prepare(const char *restart, struct prep_result *r)
{
	struct fake f = { 0 };
	struct probe_result p = { 0 };
	char rt[] = "/usr/bin/nvidia-container-runtime", ver[] = "1.6.20";
	p.config_path = cfg_path;
	p.containerd_major = 1;
	p.containerd_version = ver;
	p.flavour = CR_CONTAINERD1;
	p.nvidia_runtime = rt;
	struct containerd_opts o = { .restart_command = restart, .check_command = "true", .exec = local_exec, .close = fake_close };
	containerd_prepare((struct ssh_conn *)&f, &p, &o, r);
}

static int backups(void)
{
	char *cd = xasprintf("%s/e t c/containerd", dir);
	int n = count_files(cd, "config.toml.gpuctl-backup-");
	free(cd);
	return n;
}

Test(prepare, writes_verifies_and_keeps_modes)
{
	fake_node(NULL);
	struct prep_result r;
	prepare("true", &r);
	cr_assert_eq(r.status, PREP_CHANGED, "%s", r.err.msg);
	cr_assert_str_eq(r.method, "drop-in");
	char *d = slurp(dropin_path), *c = slurp(cfg_path), *b = slurp(r.backup);
	cr_assert(strstr(d, "BinaryName = \"/usr/bin/nvidia-container-runtime\""), "%s", d);
	cr_assert(strstr(c, "imports = [\"") && strstr(c, "/e t c/containerd/conf.d/*.toml\"]"), "%.200s", c);
	cr_assert_str_eq(b, orig_text, "the backup is the original");
	cr_assert_eq(mode_of(cfg_path), 0600, "config.toml keeps its mode");
	cr_assert_eq(mode_of(dropin_path), 0600, "registry credentials copied from a 0600 file stay 0600");
	char *lease = xasprintf("%s/e t c/containerd/.gpuctl.lease", dir);
	cr_assert_eq(access(lease, F_OK), -1, "the lock is released");
	free(lease);
	free(d), free(c), free(b);
	prep_result_release(&r);
	/* the second run: unchanged */
	prepare("exit 1", &r);
	cr_assert_eq(r.status, PREP_UNCHANGED, "%s", r.err.msg);
	prep_result_release(&r);
	fake_node_done();
}

Test(prepare, failed_restart_rolls_back_byte_for_byte)
{
	fake_node(NULL);
	struct prep_result r;
	/* the first restart fails, the one of the rollback works */
	prepare("if [ ! -e \"$FAKE/once\" ]; then touch \"$FAKE/once\"; exit 1; fi", &r);
	cr_assert_eq(r.status, PREP_ROLLED_BACK, "%s", r.err.msg);
	cr_assert(strstr(r.err.msg, "rolled back (original configuration restored, containerd running again)"), "%s", r.err.msg);
	char *c = slurp(cfg_path);
	cr_assert_str_eq(c, orig_text);
	free(c);
	cr_assert_eq(mode_of(cfg_path), 0600);
	cr_assert_eq(access(dropin_path, F_OK), -1, "the drop-in that did not exist is removed");
	cr_assert_null(r.manual_steps);
	prep_result_release(&r);
	fake_node_done();
}

Test(prepare, unproven_rollback_is_rollback_failed_with_manual_steps)
{
	fake_node(NULL);
	struct prep_result r;
	/* the restart fails and something spoils the backup: nothing proves the restore */
	prepare("for f in \"$FAKE/e t c/containerd/\"config.toml.gpuctl-backup-*; do echo spoiled >> \"$f\"; done; exit 1", &r);
	cr_assert_eq(r.status, PREP_ROLLBACK_FAILED, "%s", r.err.msg);
	cr_assert_str_eq(prep_status_name(r.status), "rollback-failed");
	cr_assert(strstr(r.err.msg, "ROLLBACK FAILED"), "%s", r.err.msg);
	cr_assert_not_null(r.manual_steps);
	const char *first = cJSON_GetArrayItem(r.manual_steps, 0)->valuestring;
	cr_assert(!strncmp(first, "cp -p -- '", 10) && strstr(first, "config.toml.gpuctl-backup-"), "%s", first);
	cr_assert(r.err.hint && strstr(r.err.hint, first), "%s", r.err.hint);
	prep_result_release(&r);
	fake_node_done();
}

Test(prepare, a_second_run_is_refused_while_the_lock_is_held)
{
	fake_node(NULL);
	char *lease = xasprintf("%s/e t c/containerd/.gpuctl.lease", dir);
	spit(lease, "gpuctl-other-run 99999999999\n", 0644);
	struct prep_result r;
	prepare("true", &r);
	cr_assert_eq(r.status, PREP_FAILED);
	cr_assert_eq(r.err.code, GERR_CONFLICT);
	cr_assert(strstr(r.err.msg, "another gpuctl is changing this node (lock ") && strstr(r.err.msg, "/.gpuctl.lock held)"),
		  "%s", r.err.msg);
	char *c = slurp(cfg_path);
	cr_assert_str_eq(c, orig_text);
	cr_assert_eq(backups(), 0, "nothing was backed up or written");
	free(c);
	free(lease);
	prep_result_release(&r);
	fake_node_done();
}

Test(remote, a_file_with_marker_lines_is_read_as_it_is)
{
	struct fake f = { 0 };
	struct remote_opts o = opts(&f);
	struct remote_change *chg;
	struct gerr err = GERR_INIT;
	char *p = xasprintf("%s/tricky.toml", dir);
	const char *text = "@@locked 99999999999\n@@eof\n@@written\n@@rc 0\nno newline at the end";
	spit(p, text, 0644);
	cr_assert_eq(remote_change_begin((struct ssh_conn *)&f, &o, &chg, &err), 0, "%s", err.msg);
	struct buf t = BUF_INIT;
	struct remote_stat st;
	cr_assert_eq(remote_change_read(chg, p, &t, &st, &err), 0, "%s", err.msg);
	cr_assert_str_eq(t.s, text);
	buf_reset(&t);
	struct buf cmd = BUF_INIT;
	buf_adds(&cmd, "cat -- ");
	sh_quote(&cmd, p);
	int status = -1;
	cr_assert_eq(remote_change_exec(chg, cmd.s, NULL, &t, NULL, &status, &err), 0, "%s", err.msg);
	cr_assert_eq(status, 0);
	cr_assert_str_eq(t.s, text, "the command's output comes back exactly");
	buf_release(&cmd);
	buf_release(&t);
	remote_change_free(chg);
	free(p);
}
