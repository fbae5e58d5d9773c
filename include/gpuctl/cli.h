/* cli.h - option tables, global options and the per-run context.
 *
 * Options are declared in tables; getopt_long does the parsing; usage text
 * is generated from the tables.  Global flags (kubectl's --kubeconfig,
 * --context, -n, -o, ...) are accepted before or after the subcommand.
 */
#ifndef GPUCTL_CLI_H
#define GPUCTL_CLI_H

#include <stdio.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"
#include "gpuctl/kube.h"

enum opt_type {
	OPT_BOOL,     /* int *: set to 1 */
	OPT_STRING,   /* const char **: last one wins */
	OPT_LIST,     /* struct strlist *: repeatable */
	OPT_INT,      /* int * */
	OPT_DURATION, /* long * milliseconds: 30s, 2m, 1h, 500ms, bare seconds */
	OPT_OPTARG,   /* const char **: optional argument (--dry-run[=client]); bare gives def */
	OPT_COUNT,    /* int *: incremented (-v -v) */
};

struct strlist {
	const char **v;
	size_t n;
};
void strlist_add(struct strlist *l, const char *s);
void strlist_release(struct strlist *l);

/* --only/--skip NAME (repeatable): every name must be one of names (a
 * NULL-terminated list; what names them in the message, e.g. "phase"). */
int only_skip_check(const struct strlist *only, const struct strlist *skip, const char *const *names, const char *what,
		    struct gerr *err);
/* Whether name is selected: in --only (or no --only given) and not in --skip. */
int only_skip_selected(const char *name, const struct strlist *only, const struct strlist *skip);

struct opt {
	const char *long_name;
	int short_name;       /* 0 for none */
	enum opt_type type;
	void *dest;
	const char *argname;  /* shown in usage */
	const char *help;
	const char *def;      /* OPT_OPTARG: value when given bare */
};
#define OPT_END { NULL, 0, OPT_BOOL, NULL, NULL, NULL, NULL }

/* The per-run context passed down to every command. */
struct gctx {
	struct kube_opts kopts;
	const char *output;       /* NULL (table), "json", "yaml", "name" */
	const char *config_path;  /* --config */
	const char *request_timeout; /* --request-timeout as given */
	const char *chunk_size;   /* --chunk-size as given */
	const char *templates_dir; /* --templates: files here replace the embedded templates (render.h) */
	cJSON *config;            /* the parsed gpuctl config file (or NULL) */
	int verbose;
	int color;                /* colour on stdout */
	struct kube_client *kube; /* created by gctx_kube() */
	const char *prog;         /* "gpuctl label" for messages */
};

/* Fill o (room for 16) with the global options table, bound to g. */
void gctx_global_opts(struct gctx *g, struct opt *o);

/* Whether arg is a global flag that takes the next argument as its value
 * ("--context", "-n"; not "--context=x"): to find the command in
 * `gpuctl --context x label ...`.  From the table above, never a copy. */
int gctx_global_takes_value(const char *arg);

/* Parse argv against the subcommand's table plus the global one.  Leaves
 * the positional arguments in *rest (pointers into argv).  --help prints
 * usage and sets *help. */
int opt_parse(struct gctx *g, int argc, char **argv, const struct opt *opts, const char *usage,
	      const char *summary, char ***rest, int *nrest, int *help, struct gerr *err);
void opt_usage(FILE *f, const char *usage, const char *summary, const struct opt *opts);
int parse_duration_ms(const char *s, long *out);

/* Validate -o: allowed is a NULL-terminated list such as {"json","yaml",NULL}. */
int gctx_check_output(struct gctx *g, const char *const *allowed, struct gerr *err);
/* Connect (lazily) to the cluster. */
int gctx_kube(struct gctx *g, struct kube_client **out, struct gerr *err);
/* Load the gpuctl config file (--config, GPUCTL_CONFIG, ~/.config/gpuctl/config.yaml). */
int gctx_load_config(struct gctx *g, struct gerr *err);
void gctx_release(struct gctx *g);

/* A command's usage error: the error, its usage line and where to read
 * more ("Run 'gpuctl help NAME'"); returns 2, the exit status. */
int gctx_usage_error(const struct gctx *g, const struct gerr *err, const char *usage, const char *name);
/* A command that could not start: a usage error as above, any other error
 * (an inventory or config file) printed alone; returns 2. */
int gctx_setup_error(const struct gctx *g, const struct gerr *err, const char *usage, const char *name);
/* Print an error the way every command does: "gpuctl: error: ..." */
void gctx_print_error(const struct gctx *g, const struct gerr *err);
void gctx_warn(void *ud, const char *msg);

#endif
