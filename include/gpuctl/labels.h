/* labels.h - label, taint and label-selector syntax, as kubectl reads it.
 *
 * Parsers validate against Kubernetes' rules (qualified names, label
 * values, taint effects) and return errors naming the offending argument.
 */
#ifndef GPUCTL_LABELS_H
#define GPUCTL_LABELS_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"

/* Validation: 0 when valid, else -1 with an explanation in err. */
int label_key_valid(const char *key, struct gerr *err);
int label_value_valid(const char *value, struct gerr *err);
int taint_effect_valid(const char *effect, struct gerr *err);

/* A label change: KEY=VALUE sets, KEY- removes. */
struct label_op {
	char *key;
	char *value;  /* NULL for removal */
};

/* Is arg a label operation (contains '=' or ends in '-')? */
int label_arg_is_op(const char *arg);
/* Parse one KEY=VALUE or KEY- argument. */
int label_op_parse(const char *arg, struct label_op *op, struct gerr *err);
/* Check a set of ops: no key both set and removed, no key set twice to different values. */
int label_ops_check(const struct label_op *ops, size_t n, struct gerr *err);
void label_op_release(struct label_op *op);

/* A taint change: KEY[=VALUE]:EFFECT adds, KEY[:EFFECT]- removes. */
struct taint_op {
	char *key;
	char *value;   /* "" when none */
	char *effect;  /* "" on removal means every effect */
	int remove;
};

int taint_arg_is_op(const char *arg);
int taint_op_parse(const char *arg, struct taint_op *op, struct gerr *err);
/* No duplicate key+effect among additions; no taint both added and removed. */
int taint_ops_check(const struct taint_op *ops, size_t n, struct gerr *err);
void taint_op_release(struct taint_op *op);

/* A parsed label selector (equality and set-based, as kubectl -l). */
enum sel_op { SEL_EXISTS, SEL_NOT_EXISTS, SEL_EQ, SEL_NEQ, SEL_IN, SEL_NOTIN, SEL_GT, SEL_LT };

struct sel_req {
	char *key;
	enum sel_op op;
	char **values;  /* NULL-terminated */
};

struct selector {
	struct sel_req *reqs;
	size_t n;
};

/* Parse s; an empty selector matches everything. */
int selector_parse(const char *s, struct selector *sel, struct gerr *err);
/* Does the labels object (metadata.labels, may be NULL) match? */
int selector_matches(const struct selector *sel, const cJSON *labels);
void selector_release(struct selector *sel);

#endif
