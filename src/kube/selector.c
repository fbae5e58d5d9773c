/* Label keys/values, taints and label selectors: Kubernetes' syntax rules. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/labels.h"

static int name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters */
static const char *check_name_part(const char *s, size_t n)
{
	if (n == 0)
		return "must not be empty";
	if (n > 63)
		return "must be no more than 63 characters";
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return "must begin and end with an alphanumeric character";
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]))
			return "may contain only alphanumerics, '-', '_' and '.'";
	return NULL;
}

/* DNS-1123 subdomain: lowercase alphanumerics, '-', '.', at most 253 */
static const char *check_dns_subdomain(const char *s, size_t n)
{
	if (n == 0)
		return "prefix must not be empty";
	if (n > 253)
		return "prefix must be no more than 253 characters";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-' || c == '.'))
			return "prefix must be a lowercase DNS subdomain (a-z, 0-9, '-', '.')";
	}
	/* each dot-separated part: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (i == start)
			return "prefix must be a DNS subdomain: no empty part between dots";
		if (!isalnum((unsigned char)s[start]) || !isalnum((unsigned char)s[i - 1]))
			return "prefix must be a DNS subdomain: each part begins and ends with an alphanumeric character";
		start = i + 1;
	}
	return NULL;
}

int label_key_valid(const char *key, struct gerr *err)
{
	const char *slash = strchr(key, '/');
	const char *why;
	if (slash) {
		if (strchr(slash + 1, '/'))
			return gerr_set(err, GERR_USAGE, "invalid key \"%s\": at most one '/' is allowed", key);
		why = check_dns_subdomain(key, (size_t)(slash - key));
		if (!why)
			why = check_name_part(slash + 1, strlen(slash + 1));
	} else {
		why = check_name_part(key, strlen(key));
	}
	if (why)
		return gerr_set(err, GERR_USAGE, "invalid key \"%s\": %s", key, why);
	return 0;
}

int label_value_valid(const char *value, struct gerr *err)
{
	size_t n = strlen(value);
	if (n == 0)
		return 0;
	const char *why = check_name_part(value, n);
	if (why)
		return gerr_set(err, GERR_USAGE, "invalid value \"%s\": %s", value, why);
	return 0;
}

int taint_effect_valid(const char *effect, struct gerr *err)
{
	if (!strcmp(effect, "NoSchedule") || !strcmp(effect, "PreferNoSchedule") ||
	    !strcmp(effect, "NoExecute"))
		return 0;
	return gerr_set(err, GERR_USAGE,
			"invalid taint effect \"%s\": must be NoSchedule, PreferNoSchedule or NoExecute", effect);
}

/* ---- labels ---- */

int label_arg_is_op(const char *arg)
{
	size_t n = strlen(arg);
	return strchr(arg, '=') || (n > 1 && arg[n - 1] == '-');
}

void label_op_release(struct label_op *op)
{
	free(op->key);
	free(op->value);
	op->key = op->value = NULL;
}

int label_op_parse(const char *arg, struct label_op *op, struct gerr *err)
{
	op->key = op->value = NULL;
	const char *eq = strchr(arg, '=');
	size_t n = strlen(arg);
	if (eq) {
		if (strchr(eq + 1, '='))
			return gerr_set(err, GERR_USAGE, "invalid label \"%s\": more than one '='", arg);
		op->key = xstrndup(arg, (size_t)(eq - arg));
		op->value = xstrdup(eq + 1);
	} else if (n > 1 && arg[n - 1] == '-') {
		op->key = xstrndup(arg, n - 1);
	} else {
		return gerr_set(err, GERR_USAGE, "invalid label \"%s\": use KEY=VALUE to set or KEY- to remove",
				arg);
	}
	struct gerr e = GERR_INIT;
	if (label_key_valid(op->key, &e) < 0 || (op->value && label_value_valid(op->value, &e) < 0)) {
		gerr_set(err, GERR_USAGE, "label \"%s\": %s", arg, e.msg);
		gerr_clear(&e);
		label_op_release(op);
		return -1;
	}
	return 0;
}

int label_ops_check(const struct label_op *ops, size_t n, struct gerr *err)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			if (strcmp(ops[i].key, ops[j].key))
				continue;
			if (!ops[i].value != !ops[j].value)
				return gerr_set(err, GERR_USAGE, "can not both modify and remove label \"%s\" in the same command",
						ops[i].key);
			if (ops[i].value && strcmp(ops[i].value, ops[j].value))
				return gerr_set(err, GERR_USAGE, "label \"%s\" given twice with different values",
						ops[i].key);
		}
	return 0;
}

/* ---- taints ---- */

int taint_arg_is_op(const char *arg)
{
	size_t n = strlen(arg);
	return strchr(arg, ':') || strchr(arg, '=') || (n > 1 && arg[n - 1] == '-');
}

void taint_op_release(struct taint_op *op)
{
	free(op->key);
	free(op->value);
	free(op->effect);
	op->key = op->value = op->effect = NULL;
}

int taint_op_parse(const char *arg, struct taint_op *op, struct gerr *err)
{
	memset(op, 0, sizeof(*op));
	size_t n = strlen(arg);
	struct gerr e = GERR_INIT;
	if (n > 1 && arg[n - 1] == '-') {
		/* KEY- or KEY:EFFECT- (a value is allowed and ignored, as kubectl does) */
		char *spec = xstrndup(arg, n - 1);
		char *colon = strchr(spec, ':');
		if (colon) {
			*colon = '\0';
			op->effect = xstrdup(colon + 1);
		} else {
			op->effect = xstrdup("");
		}
		char *eq = strchr(spec, '=');
		if (eq)
			*eq = '\0';
		op->key = xstrdup(spec);
		op->value = xstrdup("");
		op->remove = 1;
		free(spec);
		if (label_key_valid(op->key, &e) < 0 || (*op->effect && taint_effect_valid(op->effect, &e) < 0))
			goto bad;
		return 0;
	}
	const char *colon = strchr(arg, ':');
	if (!colon || strchr(colon + 1, ':')) {
		gerr_set(err, GERR_USAGE,
			 "invalid taint \"%s\": use KEY=VALUE:EFFECT or KEY:EFFECT to add, KEY:EFFECT- or KEY- to remove",
			 arg);
		return -1;
	}
	op->effect = xstrdup(colon + 1);
	char *kv = xstrndup(arg, (size_t)(colon - arg));
	char *eq = strchr(kv, '=');
	if (eq) {
		if (strchr(eq + 1, '=')) {
			free(kv);
			taint_op_release(op);
			return gerr_set(err, GERR_USAGE, "invalid taint \"%s\": more than one '='", arg);
		}
		*eq = '\0';
		op->value = xstrdup(eq + 1);
	} else {
		op->value = xstrdup("");
	}
	op->key = xstrdup(kv);
	free(kv);
	if (taint_effect_valid(op->effect, &e) < 0 || label_key_valid(op->key, &e) < 0 ||
	    label_value_valid(op->value, &e) < 0)
		goto bad;
	return 0;
bad:
	gerr_set(err, GERR_USAGE, "taint \"%s\": %s", arg, e.msg);
	gerr_clear(&e);
	taint_op_release(op);
	return -1;
}

int taint_ops_check(const struct taint_op *ops, size_t n, struct gerr *err)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			const struct taint_op *a = &ops[i], *b = &ops[j];
			if (strcmp(a->key, b->key))
				continue;
			if (!a->remove && !b->remove && !strcmp(a->effect, b->effect))
				return gerr_set(err, GERR_USAGE, "duplicated taints with the same key and effect: %s:%s",
						a->key, a->effect);
			if (a->remove != b->remove) {
				const struct taint_op *r = a->remove ? a : b, *ad = a->remove ? b : a;
				if (!*r->effect || !strcmp(r->effect, ad->effect))
					return gerr_set(err, GERR_USAGE,
							"can not both modify and remove taint \"%s\" in the same command",
							a->key);
			}
		}
	return 0;
}

/* ---- selectors ---- */

struct lexer {
	const char *s;
	size_t i;
};

static void skip_ws(struct lexer *lx)
{
	while (lx->s[lx->i] == ' ' || lx->s[lx->i] == '\t')
		lx->i++;
}

static int ident_char(char c)
{
	return c && !strchr(" \t,=!()<>", c);
}

static char *read_ident(struct lexer *lx)
{
	skip_ws(lx);
	size_t st = lx->i;
	while (ident_char(lx->s[lx->i]))
		lx->i++;
	return xstrndup(lx->s + st, lx->i - st);
}

static void req_release(struct sel_req *r)
{
	free(r->key);
	if (r->values)
		for (char **v = r->values; *v; v++)
			free(*v);
	free(r->values);
}

void selector_release(struct selector *sel)
{
	for (size_t i = 0; i < sel->n; i++)
		req_release(&sel->reqs[i]);
	free(sel->reqs);
	sel->reqs = NULL;
	sel->n = 0;
}

static void add_value(struct sel_req *r, char *v)
{
	size_t n = 0;
	while (r->values && r->values[n])
		n++;
	r->values = xrealloc(r->values, (n + 2) * sizeof(char *));
	r->values[n] = v;
	r->values[n + 1] = NULL;
}

static int sel_error(struct gerr *err, const char *s, size_t at, const char *why)
{
	return gerr_set(err, GERR_USAGE, "invalid selector \"%s\" at position %zu: %s", s, at + 1, why);
}

static int parse_req(struct lexer *lx, struct sel_req *r, struct gerr *err)
{
	memset(r, 0, sizeof(*r));
	skip_ws(lx);
	size_t start = lx->i;
	int neg = 0;
	if (lx->s[lx->i] == '!') {
		neg = 1;
		lx->i++;
	}
	r->key = read_ident(lx);
	struct gerr e = GERR_INIT;
	if (!*r->key)
		return sel_error(err, lx->s, start, "expected a label key");
	if (label_key_valid(r->key, &e) < 0) {
		sel_error(err, lx->s, start, e.msg);
		gerr_clear(&e);
		return -1;
	}
	skip_ws(lx);
	char c = lx->s[lx->i];
	if (neg) {
		r->op = SEL_NOT_EXISTS;
		return 0;
	}
	if (c == ',' || c == '\0') {
		r->op = SEL_EXISTS;
		return 0;
	}
	int set = 0;
	if (c == '=' && lx->s[lx->i + 1] == '=') {
		r->op = SEL_EQ;
		lx->i += 2;
	} else if (c == '=') {
		r->op = SEL_EQ;
		lx->i++;
	} else if (c == '!' && lx->s[lx->i + 1] == '=') {
		r->op = SEL_NEQ;
		lx->i += 2;
	} else if (c == '>' || c == '<') {
		r->op = c == '>' ? SEL_GT : SEL_LT;
		lx->i++;
	} else {
		size_t at = lx->i;
		char *word = read_ident(lx);
		if (!strcmp(word, "in"))
			r->op = SEL_IN;
		else if (!strcmp(word, "notin"))
			r->op = SEL_NOTIN;
		else {
			free(word);
			return sel_error(err, lx->s, at, "expected =, ==, !=, in, notin, > or <");
		}
		free(word);
		set = 1;
	}
	if (!set) {
		size_t at = lx->i;
		char *v = read_ident(lx);
		if ((r->op == SEL_GT || r->op == SEL_LT)) {
			char *end;
			strtol(v, &end, 10);
			if (!*v || *end) {
				free(v);
				return sel_error(err, lx->s, at, "> and < need an integer");
			}
		} else if (label_value_valid(v, &e) < 0) {
			free(v);
			sel_error(err, lx->s, at, e.msg);
			gerr_clear(&e);
			return -1;
		}
		add_value(r, v);
		return 0;
	}
	skip_ws(lx);
	if (lx->s[lx->i] != '(')
		return sel_error(err, lx->s, lx->i, "expected '(' after in/notin");
	lx->i++;
	for (;;) {
		size_t at = lx->i;
		char *v = read_ident(lx);
		if (label_value_valid(v, &e) < 0) {
			free(v);
			sel_error(err, lx->s, at, e.msg);
			gerr_clear(&e);
			return -1;
		}
		add_value(r, v);
		skip_ws(lx);
		if (lx->s[lx->i] == ',') {
			lx->i++;
			continue;
		}
		if (lx->s[lx->i] == ')') {
			lx->i++;
			return 0;
		}
		return sel_error(err, lx->s, lx->i, "expected ',' or ')' in value list");
	}
}

int selector_parse(const char *s, struct selector *sel, struct gerr *err)
{
	sel->reqs = NULL;
	sel->n = 0;
	struct lexer lx = { s, 0 };
	skip_ws(&lx);
	if (!s[lx.i])
		return 0;
	for (;;) {
		struct sel_req r;
		if (parse_req(&lx, &r, err) < 0) {
			req_release(&r);
			selector_release(sel);
			return -1;
		}
		sel->reqs = xrealloc(sel->reqs, (sel->n + 1) * sizeof(*sel->reqs));
		sel->reqs[sel->n++] = r;
		skip_ws(&lx);
		if (s[lx.i] == '\0')
			return 0;
		if (s[lx.i] != ',') {
			sel_error(err, s, lx.i, "expected ',' between requirements");
			selector_release(sel);
			return -1;
		}
		lx.i++;
	}
}

static int in_values(char *const *vals, const char *v)
{
	for (; vals && *vals; vals++)
		if (!strcmp(*vals, v))
			return 1;
	return 0;
}

int selector_matches(const struct selector *sel, const cJSON *labels)
{
	for (size_t i = 0; i < sel->n; i++) {
		const struct sel_req *r = &sel->reqs[i];
		const cJSON *lv = cJSON_GetObjectItemCaseSensitive(labels, r->key);
		const char *v = cJSON_IsString(lv) ? lv->valuestring : NULL;
		switch (r->op) {
		case SEL_EXISTS: if (!v) return 0; break;
		case SEL_NOT_EXISTS: if (v) return 0; break;
		case SEL_EQ: if (!v || strcmp(v, r->values[0])) return 0; break;
		case SEL_NEQ: if (v && !strcmp(v, r->values[0])) return 0; break;
		case SEL_IN: if (!v || !in_values(r->values, v)) return 0; break;
		case SEL_NOTIN: if (v && in_values(r->values, v)) return 0; break;
		case SEL_GT:
		case SEL_LT: {
			if (!v)
				return 0;
			char *end;
			long a = strtol(v, &end, 10);
			if (*end)
				return 0;
			long b = strtol(r->values[0], NULL, 10);
			if (r->op == SEL_GT ? !(a > b) : !(a < b))
				return 0;
			break;
		}
		}
	}
	return 1;
}
