/* Quoting for remote shells: hostile strings survive a real /bin/sh unchanged. */
#include <criterion/criterion.h>
#include <string.h>
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
