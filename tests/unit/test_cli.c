/* The command-line layer (src/cmd/cli.c): durations, error printing. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/cli.h"

struct dur_case {
	const char *in;
	int ok;
	long ms;
};

Test(cli, parse_duration_table)
{
	static const struct dur_case cases[] = {
		{ "0", 1, 0 },
		{ "30", 1, 30000 },
		{ "30s", 1, 30000 },
		{ "500ms", 1, 500 },
		{ "2m", 1, 120000 },
		{ "1h", 1, 3600000 },
		{ "1m30s", 1, 90000 },
		{ "1h2m3s4ms", 1, 3723004 },
		{ "", 0, 0 },
		{ "s", 0, 0 },
		{ "-1", 0, 0 },
		{ "-5s", 0, 0 },
		{ "+5s", 0, 0 },
		{ " 5s", 0, 0 },
		{ "5x", 0, 0 },
		{ "1m30", 0, 0 },
		{ "5s ", 0, 0 },
		{ "1.5s", 0, 0 },
		/* overflow: a usage error, never a wrapped-around (negative or small) timeout */
		{ "99999999999999999999s", 0, 0 },
		{ "99999999999999999999", 0, 0 },
		{ "9223372036854775807", 0, 0 },
		{ "9223372036854775807ms", 1, LONG_MAX },
		{ "9223372036854775807ms1ms", 0, 0 },
		{ "9223372036854775s", 1, 9223372036854775000L },
		{ "9223372036854776s", 0, 0 },
		{ "2562047788015216h", 0, 0 },
		{ "153722867280912931m", 0, 0 },
		{ "4611686018427387904ms4611686018427387904ms", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long ms = -42;
		int rc = parse_duration_ms(cases[i].in, &ms);
		if (cases[i].ok) {
			cr_expect_eq(rc, 0, "\"%s\" refused", cases[i].in);
			cr_expect_eq(ms, cases[i].ms, "\"%s\": %ld ms, expected %ld", cases[i].in, ms, cases[i].ms);
		} else {
			cr_expect_eq(rc, -1, "\"%s\" accepted as %ld ms", cases[i].in, ms);
		}
	}
}

Test(cli, request_timeout_overflow_is_a_usage_error)
{
	struct gctx g = { 0 };
	char a0[] = "gpuctl", a1[] = "--request-timeout", a2[] = "99999999999999999999s";
	char *argv[] = { a0, a1, a2, NULL };
	static const struct opt none[] = { OPT_END };
	char **rest;
	int nrest, help;
	struct gerr err = GERR_INIT;
	cr_assert_eq(opt_parse(&g, 3, argv, none, "gpuctl", NULL, &rest, &nrest, &help, &err), -1);
	cr_assert_eq(err.code, GERR_USAGE);
	cr_assert(strstr(err.msg, "--request-timeout"), "%s", err.msg);
	cr_assert_eq(gerr_exit_code(&err), 2);
	gerr_clear(&err);
}

/* --chunk-size N: kubectl's flag; 0 turns paging off (the client's -1), and
 * without it the client keeps its default (0: 500 a page). */
Test(cli, chunk_size)
{
	static const struct {
		const char *in;
		int rc;
		long chunk;
	} cases[] = {
		{ NULL, 0, 0 }, { "7", 0, 7 }, { "500", 0, 500 }, { "0", 0, -1 }, { "1000000", 0, 1000000 },
		{ "-1", -1, 0 }, { "", -1, 0 }, { "5x", -1, 0 }, { "1000001", -1, 0 }, { "99999999999999999999", -1, 0 },
	};
	static const struct opt none[] = { OPT_END };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gctx g = { 0 };
		char a0[] = "gpuctl", a1[] = "--chunk-size";
		char *argv[] = { a0, a1, (char *)cases[i].in, NULL };
		int argc = cases[i].in ? 3 : 1;
		char **rest;
		int nrest, help;
		struct gerr err = GERR_INIT;
		int rc = opt_parse(&g, argc, argv, none, "gpuctl", NULL, &rest, &nrest, &help, &err);
		cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].in ? cases[i].in : "(none)", rc);
		if (rc == 0) {
			cr_expect_eq(g.kopts.chunk_size, cases[i].chunk, "\"%s\": %ld", cases[i].in ? cases[i].in : "(none)",
				     g.kopts.chunk_size);
		} else {
			cr_expect_eq(err.code, GERR_USAGE);
			cr_expect(strstr(err.msg, "--chunk-size"), "%s", err.msg);
		}
		gerr_clear(&err);
	}
}

/* Run gctx_print_error (or gctx_warn) with stderr going to a file; return what it wrote. */
static char *printed(const char *msg, int warning)
{
	char path[] = "/tmp/gpuctl-test-cli-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	struct gerr err = GERR_INIT;
	gerr_set(&err, GERR_API, "%s", msg);
	struct gctx g = { .prog = "gpuctl" };
	if (warning)
		gctx_warn(&g, msg);
	else
		gctx_print_error(&g, &err);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	gerr_clear(&err);
	struct buf b = BUF_INIT;
	struct gerr e = GERR_INIT;
	cr_assert_eq(buf_read_file(&b, path, 1 << 16, &e), 0);
	unlink(path);
	return buf_detach(&b);
}

Test(cli, error_messages_cannot_drive_the_terminal)
{
	/* a node name or a server Status message with escape sequences: clear
	 * the screen, set the window title, an 8-bit CSI, a bidi override */
	char *out = printed("node \"gpu\x1b[2J\x1b]0;pwned\x07-1\": nodes \"x\xc2\x9b" "31m\" is forbidden\n"
				  "hint: ask \xe2\x80\xae" "admin\xe2\x80\xac, caf\xc3\xa9", 0);
	cr_assert_null(strchr(out, '\x1b'), "ESC reached the terminal: %s", out);
	cr_assert_null(strchr(out, '\x07'), "BEL reached the terminal: %s", out);
	cr_assert_null(strstr(out, "\xc2\x9b"), "C1 CSI reached the terminal: %s", out);
	cr_assert_null(strstr(out, "\xe2\x80\xae"), "a bidi override reached the terminal: %s", out);
	cr_assert(strstr(out, "gpu\\x1b[2J\\x1b]0;pwned\\x07-1"), "%s", out);
	cr_assert(strstr(out, "forbidden\nhint: ask"), "the hint stays on its own line: %s", out);
	cr_assert(strstr(out, "caf\xc3\xa9"), "UTF-8 text is kept: %s", out);
	cr_assert(!strncmp(out, "gpuctl: error: node", 19), "%s", out);
	free(out);
}

Test(cli, server_warnings_cannot_drive_the_terminal)
{
	/* a Warning header of the API server */
	char *out = printed("policy \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ is deprecated", 1);
	cr_assert_null(strchr(out, '\x1b'), "ESC reached the terminal: %s", out);
	cr_assert(strstr(out, "warning: policy \\x1b]8;;http://evil/"), "%s", out);
	free(out);
}
