/* Option tables over getopt_long, global options, the run context. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/cli.h"
#include "gpuctl/out.h"
#include "gpuctl/render.h"
#include "gpuctl/yaml.h"

void strlist_add(struct strlist *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 2) * sizeof(char *));
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
}

void strlist_release(struct strlist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* v * mult added to *total; -1 when it would not fit in a long. */
static int add_scaled(long *total, long v, long mult)
{
	if (v < 0 || v > (LONG_MAX - *total) / mult)
		return -1;
	*total += v * mult;
	return 0;
}

int parse_duration_ms(const char *s, long *out)
{
	/* kubectl's --request-timeout: "0", "30", "30s", "2m", "1h", "500ms", "1m30s" */
	if (!*s)
		return -1;
	char *end;
	long total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -1;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (errno == ERANGE)
			return -1; /* 99999999999999999999s: not a wrapped-around number */
		long mult;
		if (!*end && p == s) {
			mult = 1000; /* bare seconds */
		} else if (!strncmp(end, "ms", 2)) {
			mult = 1;
			end += 2;
		} else if (*end == 's') {
			mult = 1000;
			end++;
		} else if (*end == 'm') {
			mult = 60000;
			end++;
		} else if (*end == 'h') {
			mult = 3600000;
			end++;
		} else {
			return -1;
		}
		if (add_scaled(&total, v, mult) < 0)
			return -1;
		p = end;
	}
	*out = total;
	return 0;
}

#define NGLOBAL 16

void gctx_global_opts(struct gctx *g, struct opt *o)
{
	struct opt t[] = {
		{ "kubeconfig", 0, OPT_STRING, &g->kopts.kubeconfig, "FILE", "kubeconfig file to use (default: $KUBECONFIG, ~/.kube/config)", NULL },
		{ "context", 0, OPT_STRING, &g->kopts.context, "NAME", "kubeconfig context to use", NULL },
		{ "cluster", 0, OPT_STRING, &g->kopts.cluster, "NAME", "kubeconfig cluster to use", NULL },
		{ "user", 0, OPT_STRING, &g->kopts.user, "NAME", "kubeconfig user to use", NULL },
		{ "namespace", 'n', OPT_STRING, &g->kopts.namespace_, "NS", "namespace for namespaced objects", NULL },
		{ "server", 's', OPT_STRING, &g->kopts.server, "URL", "API server address (overrides the kubeconfig)", NULL },
		{ "token", 0, OPT_STRING, &g->kopts.token, "TOKEN", "bearer token (overrides the kubeconfig)", NULL },
		{ "insecure-skip-tls-verify", 0, OPT_BOOL, &g->kopts.insecure, NULL, "do not verify the server's certificate (dangerous)", NULL },
		{ "request-timeout", 0, OPT_STRING, &g->request_timeout, "DURATION", "timeout of one API request, e.g. 30s, 2m (0: none; default 60s)", NULL },
		{ "chunk-size", 0, OPT_STRING, &g->chunk_size, "N", "list nodes and other objects N at a time (0: all in one response; default 500)", NULL },
		{ "output", 'o', OPT_STRING, &g->output, "FORMAT", "output format: json or yaml, and junit for validate (default: a table, one line per object)", NULL },
		{ "config", 0, OPT_STRING, &g->config_path, "FILE", "gpuctl config file (default: $GPUCTL_CONFIG, ~/.config/gpuctl/config.yaml)", NULL },
		{ "templates", 0, OPT_STRING, &g->templates_dir, "DIR", "templates here replace the built-in ones of the same name", NULL },
		{ "verbose", 'v', OPT_COUNT, &g->verbose, NULL, "log each API request to stderr", NULL },
		OPT_END,
	};
	_Static_assert(sizeof(t) / sizeof(t[0]) <= NGLOBAL, "NGLOBAL too small");
	memcpy(o, t, sizeof(t));
}

int gctx_global_takes_value(const char *arg)
{
	struct gctx g = { 0 };
	struct opt o[NGLOBAL];
	gctx_global_opts(&g, o);
	for (size_t i = 0; o[i].long_name; i++) {
		if (o[i].type == OPT_BOOL || o[i].type == OPT_COUNT || o[i].type == OPT_OPTARG)
			continue;
		if ((arg[0] == '-' && arg[1] == '-' && !strcmp(arg + 2, o[i].long_name)) ||
		    (o[i].short_name && arg[0] == '-' && arg[1] == o[i].short_name && !arg[2]))
			return 1;
	}
	return 0;
}

static size_t count_opts(const struct opt *o)
{
	size_t n = 0;
	while (o && o[n].long_name)
		n++;
	return n;
}

void opt_usage(FILE *f, const char *usage, const char *summary, const struct opt *opts)
{
	fprintf(f, "usage: %s\n", usage);
	if (summary)
		fprintf(f, "\n%s\n", summary);
	struct gctx dummy = { 0 };
	struct opt glob[NGLOBAL];
	gctx_global_opts(&dummy, glob);
	for (int pass = 0; pass < 2; pass++) {
		const struct opt *o = pass == 0 ? opts : glob;
		if (!count_opts(o))
			continue;
		fprintf(f, "\n%s:\n", pass == 0 ? "Options" : "Global options");
		for (; o->long_name; o++) {
			struct buf b = BUF_INIT;
			if (o->short_name)
				buf_addf(&b, "-%c, ", o->short_name);
			else
				buf_adds(&b, "    ");
			buf_addf(&b, "--%s", o->long_name);
			if (o->type == OPT_OPTARG)
				buf_addf(&b, "[=%s]", o->argname ? o->argname : "VALUE");
			else if (o->type != OPT_BOOL && o->type != OPT_COUNT)
				buf_addf(&b, " %s", o->argname ? o->argname : "VALUE");
			fprintf(f, "  %-34s %s\n", b.s, o->help ? o->help : "");
			buf_release(&b);
		}
	}
}

static int apply_opt(const struct opt *o, const char *arg, struct gerr *err)
{
	switch (o->type) {
	case OPT_BOOL:
		*(int *)o->dest = 1;
		return 0;
	case OPT_COUNT:
		(*(int *)o->dest)++;
		return 0;
	case OPT_STRING:
		*(const char **)o->dest = arg;
		return 0;
	case OPT_OPTARG:
		*(const char **)o->dest = arg ? arg : o->def;
		return 0;
	case OPT_LIST:
		strlist_add((struct strlist *)o->dest, arg);
		return 0;
	case OPT_INT: {
		char *end;
		long v = strtol(arg, &end, 10);
		if (!*arg || *end || v < 0 || v > 1000000)
			return gerr_set(err, GERR_USAGE, "--%s: \"%s\" is not a valid number", o->long_name, arg);
		*(int *)o->dest = (int)v;
		return 0;
	}
	case OPT_DURATION: {
		long ms;
		if (parse_duration_ms(arg, &ms) < 0)
			return gerr_set(err, GERR_USAGE, "--%s: \"%s\" is not a duration (e.g. 30s, 2m, 1h)",
					o->long_name, arg);
		*(long *)o->dest = ms;
		return 0;
	}
	}
	return 0;
}

int opt_parse(struct gctx *g, int argc, char **argv, const struct opt *opts, const char *usage,
	      const char *summary, char ***rest, int *nrest, int *help, struct gerr *err)
{
	struct opt glob[NGLOBAL];
	gctx_global_opts(g, glob);
	size_t nl = count_opts(opts), ng = count_opts(glob);
	const struct opt **all = xcalloc(nl + ng + 1, sizeof(*all));
	struct option *lo = xcalloc(nl + ng + 2, sizeof(*lo));
	struct buf shorts = BUF_INIT;
	buf_adds(&shorts, ":"); /* report a missing argument as ':' */
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++) {
		const struct opt *src = pass == 0 ? opts : glob;
		for (size_t i = 0; src && src[i].long_name; i++) {
			all[k] = &src[i];
			lo[k].name = src[i].long_name;
			lo[k].has_arg = src[i].type == OPT_BOOL || src[i].type == OPT_COUNT ? no_argument
					: src[i].type == OPT_OPTARG ? optional_argument
					: required_argument;
			lo[k].flag = NULL;
			lo[k].val = 1000 + (int)k;
			if (src[i].short_name) {
				buf_addc(&shorts, (char)src[i].short_name);
				if (lo[k].has_arg == required_argument)
					buf_addc(&shorts, ':');
			}
			k++;
		}
	}
	lo[k].name = "help";
	lo[k].val = 'h';
	buf_addc(&shorts, 'h');
	*help = 0;
	int rc = 0;
	optind = 0; /* full reinitialisation of getopt (GNU) */
	opterr = 0;
	for (;;) {
		int li = -1;
		int c = getopt_long(argc, argv, shorts.s, lo, &li);
		if (c == -1)
			break;
		if (c == 'h') {
			*help = 1;
			opt_usage(stdout, usage, summary, opts);
			break;
		}
		if (c == '?') {
			if (optopt)
				rc = gerr_set(err, GERR_USAGE, "unknown option -%c", optopt);
			else
				rc = gerr_set(err, GERR_USAGE, "unknown option %s", argv[optind - 1]);
			break;
		}
		if (c == ':') {
			rc = gerr_set(err, GERR_USAGE, "option %s needs a value", argv[optind - 1]);
			break;
		}
		const struct opt *o = NULL;
		if (c >= 1000)
			o = all[c - 1000];
		else
			for (size_t i = 0; i < k; i++)
				if (all[i]->short_name == c)
					o = all[i];
		if (!o) {
			rc = gerr_set(err, GERR_USAGE, "unknown option");
			break;
		}
		if (apply_opt(o, optarg, err) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc == 0 && g->request_timeout) {
		long ms;
		if (parse_duration_ms(g->request_timeout, &ms) < 0)
			rc = gerr_set(err, GERR_USAGE, "--request-timeout: \"%s\" is not a duration (e.g. 30s, 2m)",
				      g->request_timeout);
		else
			g->kopts.request_timeout_ms = ms;
	}
	if (rc == 0 && g->chunk_size) {
		/* kubectl's --chunk-size: 0 turns paging off */
		char *end;
		errno = 0;
		long n = strtol(g->chunk_size, &end, 10);
		if (errno || end == g->chunk_size || *end || n < 0 || n > 1000000)
			rc = gerr_set(err, GERR_USAGE, "--chunk-size: \"%s\" is not a number from 0 to 1000000",
				      g->chunk_size);
		else
			g->kopts.chunk_size = n ? n : -1;
	}
	if (rc == 0 && g->templates_dir)
		rc = render_check_dir(g->templates_dir, err);
	*rest = argv + optind;
	*nrest = argc - optind;
	free(all);
	free(lo);
	buf_release(&shorts);
	return rc;
}

int gctx_check_output(struct gctx *g, const char *const *allowed, struct gerr *err)
{
	if (!g->output)
		return 0;
	struct buf names = BUF_INIT;
	for (const char *const *a = allowed; *a; a++) {
		if (!strcmp(*a, g->output)) {
			buf_release(&names);
			return 0;
		}
		buf_addf(&names, "%s%s", names.len ? ", " : "", *a);
	}
	gerr_set(err, GERR_USAGE, "unsupported output format \"%s\" (allowed: %s)", g->output, names.s);
	buf_release(&names);
	return -1;
}

void gctx_warn(void *ud, const char *msg)
{
	(void)ud;
	int color = out_want_color(stderr);
	out_colored(stderr, color, OUT_YELLOW, "warning:");
	/* server Warning headers: text from the network */
	struct buf b = BUF_INIT;
	out_add_printable(&b, msg, 1);
	fprintf(stderr, " %s\n", b.s);
	buf_release(&b);
}

static void log_request(void *ud, const char *msg)
{
	(void)ud;
	char *s = out_sanitize(msg);
	fprintf(stderr, "I %s\n", s);
	free(s);
}

int gctx_kube(struct gctx *g, struct kube_client **out, struct gerr *err)
{
	if (!g->kube) {
		if (g->verbose)
			g->kopts.log = log_request;
		g->kopts.warn = gctx_warn;
		g->kopts.warn_ud = g;
		if (kube_client_new(&g->kopts, &g->kube, err) < 0)
			return -1;
	}
	*out = g->kube;
	return 0;
}

int gctx_load_config(struct gctx *g, struct gerr *err)
{
	if (g->config)
		return 0;
	const char *path = g->config_path;
	int explicit_ = path != NULL;
	char *def = NULL;
	if (!path) {
		const char *env = getenv("GPUCTL_CONFIG");
		if (env && *env) {
			path = env;
			explicit_ = 1;
		}
	}
	if (!path) {
		const char *xdg = getenv("XDG_CONFIG_HOME");
		const char *home = getenv("HOME");
		if (xdg && *xdg)
			def = xasprintf("%s/gpuctl/config.yaml", xdg);
		else if (home)
			def = xasprintf("%s/.config/gpuctl/config.yaml", home);
		struct stat st;
		if (!def || stat(def, &st) < 0) {
			free(def);
			return 0;
		}
		path = def;
	}
	(void)explicit_;
	struct buf text = BUF_INIT;
	int rc = buf_read_file(&text, path, 4u << 20, err);
	cJSON *cfg = NULL;
	if (rc == 0)
		rc = yaml_parse(text.s, text.len, path, &cfg, err);
	buf_release(&text);
	if (rc == 0 && !cJSON_IsObject(cfg) && !cJSON_IsNull(cfg)) {
		rc = gerr_set(err, GERR_CONFIG, "%s: the gpuctl config must be a mapping", path);
	}
	if (rc == 0 && cJSON_IsObject(cfg)) {
		const cJSON *kind = cJSON_GetObjectItemCaseSensitive(cfg, "kind");
		const cJSON *av = cJSON_GetObjectItemCaseSensitive(cfg, "apiVersion");
		if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "Config") || !cJSON_IsString(av) ||
		    strcmp(av->valuestring, "gpuctl.io/v1alpha1"))
			rc = gerr_set(err, GERR_CONFIG,
				      "%s: expected apiVersion: gpuctl.io/v1alpha1 and kind: Config", path);
	}
	if (rc < 0) {
		cJSON_Delete(cfg);
		free(def);
		return -1;
	}
	if (cJSON_IsNull(cfg)) {
		cJSON_Delete(cfg);
		cfg = cJSON_CreateObject();
	}
	cJSON_AddStringToObject(cfg, "__path", path);
	g->config = cfg;
	free(def);
	return 0;
}

void gctx_release(struct gctx *g)
{
	kube_client_free(g->kube);
	g->kube = NULL;
	cJSON_Delete(g->config);
	g->config = NULL;
}

void gctx_print_error(const struct gctx *g, const struct gerr *err)
{
	int color = out_want_color(stderr);
	fprintf(stderr, "%s: ", g && g->prog ? g->prog : "gpuctl");
	out_colored(stderr, color, OUT_RED, "error:");
	/* messages carry node names, server Status messages and file contents:
	 * nothing in them may drive the terminal */
	struct buf b = BUF_INIT;
	out_add_printable(&b, err->msg ? err->msg : "unknown error", 1);
	fprintf(stderr, " %s\n", b.s);
	if (err->hint) {
		buf_reset(&b);
		out_add_printable(&b, err->hint, 1);
		fprintf(stderr, "hint: %s\n", b.s);
	}
	buf_release(&b);
}

int gctx_usage_error(const struct gctx *g, const struct gerr *err, const char *usage, const char *name)
{
	gctx_print_error(g, err);
	fprintf(stderr, "usage: %s\nRun 'gpuctl help %s' for details.\n", usage, name);
	return 2;
}

int gctx_setup_error(const struct gctx *g, const struct gerr *err, const char *usage, const char *name)
{
	if (err->code == GERR_USAGE)
		return gctx_usage_error(g, err, usage, name);
	gctx_print_error(g, err);
	return 2;
}

static int strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

int only_skip_check(const struct strlist *only, const struct strlist *skip, const char *const *names, const char *what,
		    struct gerr *err)
{
	for (size_t i = 0; i < only->n + skip->n; i++) {
		const char *p = i < only->n ? only->v[i] : skip->v[i - only->n];
		int ok = 0;
		for (int k = 0; names[k]; k++)
			ok |= !strcmp(p, names[k]);
		if (!ok) {
			struct buf all = BUF_INIT;
			for (int k = 0; names[k]; k++)
				buf_addf(&all, "%s%s", k ? ", " : "", names[k]);
			gerr_set(err, GERR_USAGE, "unknown %s \"%s\" (%ss: %s)", what, p, what, all.s);
			buf_release(&all);
			return -1;
		}
	}
	return 0;
}

int only_skip_selected(const char *name, const struct strlist *only, const struct strlist *skip)
{
	return (only->n == 0 || strlist_has(only, name)) && !strlist_has(skip, name);
}
