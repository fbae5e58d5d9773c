/* The SSH layer without a server: quoting for remote shells (hostile strings
 * survive a real /bin/sh unchanged), the remote command wrapper and its
 * timeout, jump host specs, exit statuses, the jump relay's writes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gpuctl/spawn.h"
#include "gpuctl/ssh.h"

static char *through_shell(const char *cmdline)
{
	const char *argv[] = { "/bin/sh", "-c", cmdline, NULL };
	struct spawn_opts o = { .argv = argv, .timeout_ms = 10000 };
	struct buf out = BUF_INIT, errb = BUF_INIT;
	int status = -1;
	struct gerr err = GERR_INIT;
	cr_assert_eq(spawn_run(&o, &out, &errb, &status, &err), 0, "%s", err.msg);
	cr_assert_eq(status, 0, "sh failed: %s", errb.s);
	buf_release(&errb);
	return buf_detach(&out);
}

Test(ssh, quoting_survives_hostile_strings)
{
	static const char *const hostile[] = {
		"plain", "", "it's", "'", "''", "\"double\"", "$(touch /tmp/gpuctl-pwned)", "`id`", "${HOME}",
		"a b\tc", "line1\nline2", "semi;colon && or || pipe | amp &", "back\\slash", "glob * ? [a]",
		"-n", "--", "~root", "#comment", "!bang", "\x01\x7f", "nvidia.com/gpu=true:NoSchedule",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct buf cmd = BUF_INIT;
		buf_adds(&cmd, "printf %s ");
		sh_quote(&cmd, hostile[i]);
		char *got = through_shell(cmd.s);
		cr_expect_str_eq(got, hostile[i], "case %zu", i);
		free(got);
		buf_release(&cmd);
	}
	cr_assert(access("/tmp/gpuctl-pwned", F_OK) != 0, "a quoted string was executed");
}

Test(ssh, join_keeps_arguments_apart)
{
	const char *argv[] = { "printf", "[%s]", "a b", "it's", "$(x)", "", NULL };
	char *line = sh_join(argv);
	char *got = through_shell(line);
	cr_assert_str_eq(got, "[a b][it's][$(x)][]");
	free(got);
	free(line);
}

Test(ssh, connect_refused_is_a_clear_error)
{
	struct ssh_target t = { .name = "gpu-x", .host = "127.0.0.1", .port = 1, .timeout_ms = 2000,
				.known_hosts = "/dev/null" };
	struct ssh_conn *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(ssh_open(&t, &c, &err), -1);
	cr_assert(strstr(err.msg, "node gpu-x: cannot connect to 127.0.0.1 port 1"), "%s", err.msg);
	gerr_clear(&err);
}

Test(ssh, jump_specs)
{
	static const struct {
		const char *spec, *user, *host;
		int port;
	} ok[] = {
		{ "bastion", NULL, "bastion", 22 },
		{ "bastion:2222", NULL, "bastion", 2222 },
		{ "ops@bastion", "ops", "bastion", 22 },
		{ "ops@bastion:65535", "ops", "bastion", 65535 },
		{ "fe80::1", NULL, "fe80::1", 22 },
		{ "ops@2001:db8::7", "ops", "2001:db8::7", 22 },
		{ "[fe80::1]", NULL, "fe80::1", 22 },
		{ "[fe80::1]:2200", NULL, "fe80::1", 2200 },
		{ "ops@[2001:db8::7]:22", "ops", "2001:db8::7", 22 },
		{ "10.0.0.1:1", NULL, "10.0.0.1", 1 },
		{ "a@b@bastion", "a@b", "bastion", 22 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *user = NULL, *host = NULL;
		int port = 0;
		struct gerr err = GERR_INIT;
		cr_assert_eq(ssh_parse_jump(ok[i].spec, &user, &host, &port, &err), 0, "%s: %s", ok[i].spec, err.msg);
		if (ok[i].user)
			cr_expect_str_eq(user, ok[i].user, "%s", ok[i].spec);
		else
			cr_expect_null(user, "%s", ok[i].spec);
		cr_expect_str_eq(host, ok[i].host, "%s", ok[i].spec);
		cr_expect_eq(port, ok[i].port, "%s", ok[i].spec);
		free(user);
		free(host);
	}
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "host:abc", "port is not a number from 1 to 65535: \"abc\"" },
		{ "host:", "port is not a number from 1 to 65535: \"\"" },
		{ "host:0", "\"0\"" },
		{ "host:65536", "\"65536\"" },
		{ "host:22x", "\"22x\"" },
		{ "host:-22", "\"-22\"" },
		{ "host: 22", "\" 22\"" },
		{ "[fe80::1]:http", "\"http\"" },
		{ "[fe80::1", "no \"]\"" },
		{ "[fe80::1]2222", "expected \":PORT\" after \"]\", not \"2222\"" },
		{ "", "no host" },
		{ "ops@", "no host" },
		{ ":22", "no host" },
		{ "[]:22", "no host" },
		{ "@bastion", "user" },
		{ "a,b", "only one jump host" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *user = NULL, *host = NULL;
		int port = 0;
		struct gerr err = GERR_INIT;
		cr_assert_eq(ssh_parse_jump(bad[i].spec, &user, &host, &port, &err), -1, "%s accepted", bad[i].spec);
		cr_expect_eq(err.code, GERR_USAGE, "%s", bad[i].spec);
		char *want = xasprintf("jump host \"%s\": ", bad[i].spec);
		cr_expect(strstr(err.msg, want) == err.msg, "%s: %s", bad[i].spec, err.msg);
		cr_expect(strstr(err.msg, bad[i].msg), "%s: %s", bad[i].spec, err.msg);
		cr_expect_null(user);
		cr_expect_null(host);
		free(want);
		gerr_clear(&err);
	}
}

Test(ssh, exit_status_without_status_or_with_a_signal_is_a_failure)
{
	struct gerr err = GERR_INIT;
	int st = 99;
	cr_assert_eq(ssh_exit_result("gpu-1", "true", 1, 0, NULL, &st, &err), 0);
	cr_assert_eq(st, 0);
	cr_assert_eq(ssh_exit_result("gpu-1", "false", 1, 3, "", &st, &err), 0);
	cr_assert_eq(st, 3);
	/* libssh2 reads 0 for a command killed by a signal: that must not be success */
	cr_assert_eq(ssh_exit_result("gpu-1", "containerd config dump >/tmp/x 2>&1", 1, 0, "KILL", &st, &err), -1);
	cr_assert_eq(st, -1);
	cr_assert_eq(err.code, GERR_SSH_COMMAND);
	cr_assert_str_eq(err.msg, "node gpu-1: \"containerd config dump >/tmp/x ...\" was killed by signal SIGKILL");
	gerr_clear(&err);
	cr_assert_eq(ssh_exit_result("gpu-2", "nvidia-smi\n--query", 0, 0, NULL, &st, &err), -1);
	cr_assert_eq(st, -1);
	cr_assert_eq(err.code, GERR_SSH_COMMAND);
	cr_assert(strstr(err.msg, "node gpu-2: \"nvidia-smi ...\" ended without an exit status"), "%s", err.msg);
	gerr_clear(&err);
	char *longcmd = xasprintf("%0200d", 7);
	cr_assert_eq(ssh_exit_result("gpu-3", longcmd, 1, 0, "SEGV", &st, &err), -1);
	cr_assert(strlen(err.msg) < 140 && strstr(err.msg, "...\" was killed by signal SIGSEGV"), "%s", err.msg);
	gerr_clear(&err);
	free(longcmd);
}

static int run_remote(const char *cmdline, long timeout_ms, struct buf *out, long *elapsed_ms)
{
	char *remote = ssh_remote_command(cmdline, 0, timeout_ms);
	const char *argv[] = { "/bin/sh", "-c", remote, NULL };
	struct spawn_opts o = { .argv = argv, .timeout_ms = 30000 };
	struct buf errb = BUF_INIT;
	int status = -1;
	struct gerr err = GERR_INIT;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(spawn_run(&o, out, &errb, &status, &err), 0, "%s", err.msg);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*elapsed_ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	buf_release(&errb);
	free(remote);
	return status;
}

Test(ssh, remote_commands_keep_their_text_and_status)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	buf_adds(&cmd, "printf '%s|' ");
	const char *hostile[] = { "it's", "$(touch /tmp/gpuctl-pwned)", "`id`", "\"$gpuctl_cmd\"", "a\nb", NULL };
	for (int i = 0; hostile[i]; i++) {
		sh_quote(&cmd, hostile[i]);
		buf_addc(&cmd, ' ');
	}
	buf_adds(&cmd, "; exit 7");
	long ms = 0;
	cr_assert_eq(run_remote(cmd.s, 10000, &out, &ms), 7);
	cr_assert_str_eq(out.s, "it's|$(touch /tmp/gpuctl-pwned)|`id`|\"$gpuctl_cmd\"|a\nb|");
	cr_assert(access("/tmp/gpuctl-pwned", F_OK) != 0);
	char *sudo = ssh_remote_command("id -u", 1, 10000);
	cr_assert(!strncmp(sudo, "exec sudo -n -- sh -c '", 23), "%s", sudo);
	cr_assert(strstr(sudo, "timeout -k 5 11 sh -c"), "timeout runs under sudo, as root: %s", sudo);
	free(sudo);
	buf_release(&cmd);
	buf_release(&out);
}

/* the node ends a command that outlasts the timeout by itself (no signal
 * from gpuctl needed), and kills one that ignores SIGTERM 5 s later */
Test(ssh, remote_commands_end_on_the_node_after_the_timeout, .timeout = 60)
{
	struct buf out = BUF_INIT;
	long ms = 0;
	cr_assert_eq(run_remote("echo started; sleep 60", 1000, &out, &ms), 124);
	cr_assert_str_eq(out.s, "started\n");
	cr_assert(ms >= 1500 && ms < 5000, "ended after %ld ms", ms);
	buf_reset(&out);
	cr_assert_eq(run_remote("trap '' TERM; sleep 60", 1000, &out, &ms), 128 + 9);
	cr_assert(ms >= 6500 && ms < 11000, "ended after %ld ms", ms);
	buf_release(&out);
}

Test(ssh, relay_writes_to_a_closed_peer_fail_without_sigpipe)
{
	int sp[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	close(sp[1]);
	errno = 0;
	cr_assert_eq(ssh_send_all(sp[0], "data", 4), -1);
	cr_assert_eq(errno, EPIPE);
	close(sp[0]);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	cr_assert_eq(ssh_send_all(sp[0], "data", 4), 0);
	char got[8] = "";
	cr_assert_eq(read(sp[1], got, sizeof(got)), 4);
	cr_assert(!memcmp(got, "data", 4));
	close(sp[0]);
	close(sp[1]);
}
