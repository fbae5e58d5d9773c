/* libFuzzer target: the kubeconfig loader (kube_config_load), from a
 * memory file, with and without the flags that override the file. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpuctl/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	setenv("HOME", "/nonexistent", 1);
	fd = memfd_create("kubeconfig", 0);
	if (fd < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

static void load(const struct kube_opts *o)
{
	struct kube_config *c = NULL;
	struct gerr err = GERR_INIT;
	if (kube_config_load(o, &c, &err) == 0) {
		if (!c || !c->server || !c->namespace_)
			abort();
		kube_config_free(c);
	} else {
		if (!err.msg || c)
			abort();
		gerr_clear(&err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	struct kube_opts o = { .kubeconfig = path };
	load(&o);
	struct kube_opts flags = { .kubeconfig = path, .context = "c", .cluster = "c", .user = "u",
				   .namespace_ = "ns", .server = "https://u:p@127.0.0.1:6443", .token = "t" };
	load(&flags);
	return 0;
}
