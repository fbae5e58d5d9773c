/* The hidden completion helper. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/kube.h"
#include "gpuctl/out.h"

/* gpuctl __complete nodes [global flags]: node names, one per line, for shell completion. */
int cmd_complete(struct gctx *g, int argc, char **argv)
{
	struct opt opts[] = { OPT_END };
	char **rest;
	int nrest, help;
	struct gerr err = GERR_INIT;
	g->kopts.request_timeout_ms = 5000;
	g->kopts.max_retries = 0;
	if (opt_parse(g, argc, argv, opts, "gpuctl __complete nodes", NULL, &rest, &nrest, &help, &err) < 0 ||
	    nrest < 1 || strcmp(rest[0], "nodes")) {
		gerr_clear(&err);
		return 2;
	}
	struct kube_client *kc;
	cJSON *items = NULL;
	struct node_target all = { .all = 1 };
	if (gctx_kube(g, &kc, &err) < 0 || nodes_resolve(kc, &all, &items, &err) < 0) {
		gerr_clear(&err);
		return 1;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, items)
		printf("%s\n", node_name(it));
	cJSON_Delete(items);
	return out_finish(&err) < 0 ? 1 : 0;
}
