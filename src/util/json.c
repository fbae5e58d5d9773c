#include "gpuctl/buf.h"
#include "gpuctl/json.h"

#include <stdlib.h>
#include <string.h>

const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *json_get2(const cJSON *obj, const char *a, const char *b)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, a), b);
}

void json_pointer_escape(struct buf *b, const char *key)
{
	for (const char *p = key; *p; p++) {
		if (*p == '~')
			buf_adds(b, "~0");
		else if (*p == '/')
			buf_adds(b, "~1");
		else
			buf_addc(b, *p);
	}
}

/* One token of a JSON pointer, unescaped (RFC 6901), from *p up to the next
 * '/' or the end; *p moves past it, to NULL after the last token. */
static char *pointer_token(const char **p)
{
	const char *s = *p, *e = s + strcspn(s, "/");
	char *t = xmalloc((size_t)(e - s) + 1), *o = t;
	for (const char *c = s; c < e; c++) {
		if (*c == '~' && c + 1 < e && (c[1] == '0' || c[1] == '1')) {
			*o++ = c[1] == '0' ? '~' : '/';
			c++;
		} else {
			*o++ = *c;
		}
	}
	*o = 0;
	*p = *e ? e + 1 : NULL;
	return t;
}

int json_patch_apply(cJSON *doc, const cJSON *ops)
{
	const cJSON *op;
	cJSON_ArrayForEach(op, ops) {
		const char *name = json_str(op, "op"), *path = json_str(op, "path");
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
		if (!name || !path || *path != '/')
			return -1;
		/* the parent object, then the last token */
		cJSON *parent = doc;
		const char *p = path + 1;
		char *tok = pointer_token(&p);
		while (p) {
			cJSON *next = cJSON_GetObjectItemCaseSensitive(parent, tok);
			free(tok);
			if (!cJSON_IsObject(next))
				return -1;
			parent = next;
			tok = pointer_token(&p);
		}
		if (!cJSON_IsObject(parent)) {
			free(tok);
			return -1;
		}
		cJSON *cur = cJSON_GetObjectItemCaseSensitive(parent, tok);
		int rc = 0;
		if (!strcmp(name, "test")) {
			rc = cur && value && cJSON_Compare(cur, value, 1) ? 0 : -1;
		} else if (!strcmp(name, "add") || !strcmp(name, "replace")) {
			if (!value || (!cur && name[0] == 'r'))
				rc = -1;
			else if (cur)
				cJSON_ReplaceItemInObjectCaseSensitive(parent, tok, cJSON_Duplicate(value, 1));
			else
				cJSON_AddItemToObject(parent, tok, cJSON_Duplicate(value, 1));
		} else if (!strcmp(name, "remove")) {
			if (cur)
				cJSON_DeleteItemFromObjectCaseSensitive(parent, tok);
			else
				rc = -1;
		} else {
			rc = -1;
		}
		free(tok);
		if (rc < 0)
			return -1;
	}
	return 0;
}
