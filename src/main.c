/* gpuctl: turn a Kubernetes cluster into a GPU platform, and prove it works. */
#include <curl/curl.h>
#include <libssh2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "gpuctl/sig.h"
#include "gpuctl/cli.h"
#include "gpuctl/out.h"

struct cmd_entry {
	const char *name;
	int (*fn)(struct gctx *g, int argc, char **argv);
	const char *help;
	int hidden;
};

static const struct cmd_entry commands[] = {
	{ "label", cmd_label, "set or remove labels on GPU nodes", 0 },
	{ "taint", cmd_taint, "add or remove taints on GPU nodes", 0 },
	{ "deploy", cmd_deploy, "prepare GPU nodes over SSH (containerd + nvidia runtime) and the RuntimeClass", 0 },
	{ "slice", cmd_slice, "share GPUs (time-slicing, MPS), use MIG devices, or stop sharing", 0 },
	{ "smoke-test", cmd_smoke_test, "run GPU workloads and check they work", 0 },
	{ "validate", cmd_validate, "check the cluster and its GPU nodes; table, JSON or JUnit report", 0 },
	{ "cleanup", cmd_cleanup, "remove what gpuctl created: objects, labels, taints, containerd changes", 0 },
	{ "__complete", cmd_complete, "shell completion helper", 1 },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("usage: gpuctl [--version] [--help] <command> [options] [args]\n\n"
	      "gpuctl turns a Kubernetes cluster into a working GPU platform and proves that it works.\n\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!commands[i].hidden)
			fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
	fputs("\nGlobal options (any command): --kubeconfig FILE, --context NAME, -n NS, -o json|yaml,\n"
	      "  --request-timeout DURATION, --chunk-size N, --insecure-skip-tls-verify, --config FILE, --templates DIR, -v.\n"
	      "Exit codes: 0 done, 1 something failed, 2 usage error, 3 cluster unreachable or unauthorized.\n\n"
	      "Run 'gpuctl help <command>' for a command's options; 'man gpuctl' for more.\n", f);
}

static const struct cmd_entry *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int run(const struct cmd_entry *c, int argc, char **argv)
{
	struct gctx g = { 0 };
	char prog[64];
	snprintf(prog, sizeof(prog), "gpuctl %s", c->name);
	g.prog = prog;
	g.kopts.max_retries = 5;
	g.kopts.request_timeout_ms = 60000;
	g.color = out_want_color(stdout);
	int rc = c->fn(&g, argc, argv);
	gctx_release(&g);
	return rc;
}

int main(int argc, char **argv)
{
	sig_install();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *a = argv[1];
	if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(a, "--version") || !strcmp(a, "version")) {
		/* the libssh2 this process runs with: before 1.11, RSA keys fail against OpenSSH 8.8+ */
		printf("gpuctl %s\nlibssh2 %s\n", GPUCTL_VERSION, libssh2_version(0));
		return 0;
	}
	if (!strcmp(a, "help")) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		const struct cmd_entry *c = find(argv[2]);
		if (!c || c->hidden) {
			fprintf(stderr, "gpuctl: unknown command \"%s\"; see 'gpuctl --help'\n", argv[2]);
			return 2;
		}
		char *hargv[] = { argv[2], (char *)"--help", NULL };
		curl_global_init(CURL_GLOBAL_DEFAULT);
		int rc = run(c, 2, hargv);
		curl_global_cleanup();
		return rc;
	}
	/* global flags may come before the command (gpuctl --context x label ...):
	 * find the command and hand it every other argument */
	int ci = 1;
	while (ci < argc && argv[ci][0] == '-')
		ci += gctx_global_takes_value(argv[ci]) ? 2 : 1;
	if (ci >= argc) {
		usage(stderr);
		return 2;
	}
	char **nargv = NULL;
	if (ci > 1) {
		nargv = calloc((size_t)argc + 1, sizeof(char *));
		if (!nargv)
			return 1;
		int k = 0;
		nargv[k++] = argv[ci];
		for (int i = 1; i < argc; i++)
			if (i != ci)
				nargv[k++] = argv[i];
		a = argv[ci];
	}
	const struct cmd_entry *c = find(a);
	if (!c) {
		fprintf(stderr, "gpuctl: unknown command \"%s\"; see 'gpuctl --help'\n", a);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fputs("gpuctl: error: cannot initialise libcurl\n", stderr);
		return 1;
	}
	libssh2_init(0);
	int rc = nargv ? run(c, argc - 1, nargv) : run(c, argc - 1, argv + 1);
	free(nargv);
	libssh2_exit();
	curl_global_cleanup();
	return rc;
}
