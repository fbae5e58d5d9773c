/* The templates compiled into the binary: the table comes from
 * templates_data.c, which src/render/embed.py generates at build time. */
#include <string.h>

#include "gpuctl/render.h"

extern const struct render_embedded render_embedded_set_[];

const struct render_embedded *render_embedded_find(const char *name)
{
	for (const struct render_embedded *e = render_embedded_set_; e->name; e++)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

const struct render_embedded *render_embedded_list(void)
{
	return render_embedded_set_;
}
