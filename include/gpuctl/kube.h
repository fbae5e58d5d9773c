/* kube.h - the Kubernetes API client: kubeconfig, auth, HTTPS, operations.
 *
 * Ownership: every cJSON tree returned through an out-parameter belongs to
 * the caller (cJSON_Delete).  cJSON arguments are borrowed.  The module never
 * prints; warnings (insecure TLS, server Warning headers) go to the warning
 * callback of kube_opts.
 */
#ifndef GPUCTL_KUBE_H
#define GPUCTL_KUBE_H

#include <stddef.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

/* ---- options (from the command line) ---- */

typedef void (*kube_warn_fn)(void *ud, const char *msg);

struct kube_opts {
	const char *kubeconfig;   /* --kubeconfig: one file; overrides KUBECONFIG */
	const char *context;      /* --context */
	const char *cluster;      /* --cluster */
	const char *user;         /* --user */
	const char *namespace_;   /* --namespace */
	const char *server;       /* --server */
	const char *token;        /* --token */
	int insecure;             /* --insecure-skip-tls-verify */
	long request_timeout_ms;  /* --request-timeout; 0 = no limit */
	long connect_timeout_ms;  /* default 10 s */
	int max_retries;          /* retries after the first attempt; default 5 */
	long backoff_base_ms;     /* first backoff; default 200 ms */
	long backoff_max_ms;      /* cap; default 10 s */
	long chunk_size;          /* --chunk-size: items per list page; 0: 500; -1: the whole list in one response */
	kube_warn_fn warn;
	void *warn_ud;
	kube_warn_fn log;         /* when set: one line per HTTP request (-v) */
};

/* ---- kubeconfig ---- */

struct kube_exec_config {
	char *api_version;
	char *command;
	char **args;           /* NULL-terminated */
	char **env;            /* NULL-terminated NAME=VALUE */
	char *install_hint;
	int provide_cluster_info;
	char *interactive_mode; /* Never, IfAvailable, Always */
	cJSON *cluster_config;  /* extensions[client.authentication.k8s.io/exec] */
};

struct kube_config {
	char *source;        /* the kubeconfig file(s) read, for messages */
	char *context_name;
	char *cluster_name;
	char *user_name;
	char *server;        /* https://host:port[/path] without trailing slash */
	char *namespace_;    /* never NULL ("default") */
	struct buf ca_pem;   /* empty: system trust store */
	char *ca_origin;     /* where the CA came from ("ca file X", "certificate-authority-data of cluster Y") */
	char *tls_server_name;
	char *proxy_url;
	int insecure;
	struct buf cert_pem; /* client certificate (PEM), may be empty */
	struct buf key_pem;  /* client key (PEM), a secret */
	char *token;         /* bearer token, a secret */
	char *token_file;    /* re-read on use */
	char *username;
	char *password;      /* a secret */
	struct kube_exec_config *exec;
	int in_cluster;
};

/* Load the configuration kubectl would use: --kubeconfig, else KUBECONFIG
 * (several files merged by kubectl's rules), else ~/.kube/config, else the
 * in-cluster service account.  Selects the context (--context or
 * current-context) and applies --cluster/--user/--namespace/--server/--token.
 * Errors name the file and the field.  *out is owned by the caller. */
int kube_config_load(const struct kube_opts *o, struct kube_config **out, struct gerr *err);
void kube_config_free(struct kube_config *c);

/* Lower-level: merge the given files (NULL-terminated) and return the merged
 * kubeconfig as cJSON with all relative paths made absolute. */
int kube_config_merge_files(const char *const *files, cJSON **out, struct gerr *err);

/* The folder of the in-cluster service account (tests may point
 * GPUCTL_SERVICEACCOUNT_DIR elsewhere). */
const char *kube_serviceaccount_dir(void);

/* ---- exec credentials ---- */

struct kube_exec_cred {
	char *token;           /* secret */
	struct buf cert_pem;
	struct buf key_pem;    /* secret */
	time_t expires;        /* 0 = never */
};

/* Run the exec plugin of cfg and parse its ExecCredential. */
int kube_exec_run(const struct kube_config *cfg, int stdin_is_tty, struct kube_exec_cred *cred,
		  struct gerr *err);
void kube_exec_cred_release(struct kube_exec_cred *cred);

/* ---- client ---- */

struct kube_client;

struct kube_stats {
	long requests;   /* HTTP requests sent (retries included) */
	long retries;
	long lists;      /* list pages */
	long writes;     /* POST/PUT/PATCH/DELETE sent */
};

int kube_client_new(const struct kube_opts *o, struct kube_client **out, struct gerr *err);
void kube_client_free(struct kube_client *c);
const struct kube_config *kube_client_config(const struct kube_client *c);
const struct kube_stats *kube_client_stats(const struct kube_client *c);

/* One API call.  Fill method/path/body (borrowed); after kube_do*, status,
 * response (owned by the call; free with kube_call_release) and err are set. */
struct kube_call {
	const char *method;       /* GET POST PUT PATCH DELETE */
	const char *path;         /* /api/v1/nodes?labelSelector=... */
	const char *body;         /* NULL for none */
	const char *content_type; /* default application/json */
	const char *accept;       /* the Accept header's value; default application/json (raw: any) */
	int idempotent;           /* -1: from the method; 0/1: override */
	int raw;                  /* response is text, not JSON (pod logs) */
	int no_parse;             /* a JSON response stays in text, unparsed (kube_list_each reads it item by item) */
	const char *what;         /* the object, for messages: "node gpu-1" */
	/* results */
	long status;
	cJSON *response;
	struct buf text;          /* raw body */
	struct gerr err;
	int attempts;
};

/* Run one call (with retries). Returns 0 on a 2xx response. */
int kube_do(struct kube_client *c, struct kube_call *call, struct gerr *err);
/* Run n calls concurrently over one connection pool (HTTP/2 multiplexed
 * where offered), at most max_parallel in flight (0: 64).  Each call gets
 * its own result; returns the number of calls that failed. */
size_t kube_do_many(struct kube_client *c, struct kube_call *calls, size_t n, int max_parallel);
void kube_call_release(struct kube_call *call);

/* ---- operations ---- */

enum kube_patch_type {
	KUBE_PATCH_MERGE,      /* application/merge-patch+json */
	KUBE_PATCH_STRATEGIC,  /* application/strategic-merge-patch+json */
	KUBE_PATCH_JSON,       /* application/json-patch+json */
	KUBE_PATCH_APPLY,      /* application/apply-patch+yaml (server-side apply) */
};
const char *kube_patch_content_type(enum kube_patch_type t);

struct kube_list_opts {
	const char *label_selector;
	const char *field_selector;
	long limit;              /* page size; default the client's chunk_size */
	long max_pages;          /* give up after this many pages; default 20000 */
	int metadata_only;       /* ask for apiVersion, kind and metadata of each item only (a
				  * PartialObjectMetadataList; a server that cannot sends whole objects) */
};

/* Build a path: /api/v1[/namespaces/NS]/RESOURCE[/NAME] or /apis/GROUP/VERSION/...
 * group_version "v1" means the core group.  ns and name may be NULL. */
char *kube_path(const char *group_version, const char *ns, const char *resource, const char *name);

/* Append "?k=v" or "&k=v" (value percent-encoded) to the path in b. */
void kube_query_add(struct buf *b, const char *key, const char *value);

/* GET a single object. */
int kube_get(struct kube_client *c, const char *path, cJSON **out, struct gerr *err);
/* LIST all pages; *items is a new array of objects; *rv the list's resourceVersion (may be NULL). */
int kube_list(struct kube_client *c, const char *path, const struct kube_list_opts *lo, cJSON **items,
	      char **rv, struct gerr *err);
/* One item of a list, handed over (the callee owns it: keep it or
 * cJSON_Delete it).  item NULL: the list starts again from its first page
 * (an expired continue token), so forget what was gathered so far.  Return 0
 * to go on, -1 (err set) to stop the list. */
typedef int (*kube_item_fn)(void *ud, cJSON *item, struct gerr *err);
/* LIST all pages, giving each item to fn as its page arrives; a page is freed
 * before the next is fetched, so memory stays at one page plus what fn keeps.
 * Errors as kube_list's, or fn's. */
int kube_list_each(struct kube_client *c, const char *path, const struct kube_list_opts *lo, kube_item_fn fn,
		   void *ud, char **rv, struct gerr *err);
/* What a list keeps of an item (borrowed): a new, smaller object, or NULL
 * to leave the item out. */
typedef cJSON *(*kube_prune_fn)(const cJSON *item);
/* kube_list, keeping prune(item) of each item as its page arrives (the item
 * itself is freed at once): for lists that grow with the cluster.  *items
 * is a new array, in the list's order; errors as kube_list's. */
int kube_list_pruned(struct kube_client *c, const char *path, const struct kube_list_opts *lo, kube_prune_fn prune,
		     cJSON **items, char **rv, struct gerr *err);
/* A new Pod holding only what gpuctl reads of one: metadata name, namespace
 * and deletionTimestamp; spec.nodeName; the name, ports and resources of
 * each container and init container; status.phase, each condition's type
 * and status, each (init) container status's name and state.  Arrays keep
 * their length and order. */
cJSON *kube_pod_prune(const cJSON *pod);
/* A new object holding apiVersion, kind and metadata's name, namespace and
 * labels of obj: enough to tell gpuctl's own objects and delete them. */
cJSON *kube_meta_prune(const cJSON *obj);
/* POST an object. dry_run: append dryRun=All. */
int kube_create(struct kube_client *c, const char *path, const cJSON *obj, int dry_run, cJSON **out,
		struct gerr *err);
/* PATCH with the given type. field_manager defaults to "gpuctl"; force applies only to apply. */
int kube_patch(struct kube_client *c, const char *path, enum kube_patch_type type, const char *body,
	       int dry_run, int force, cJSON **out, struct gerr *err);
/* Server-side apply of obj (fieldManager=gpuctl). */
int kube_apply(struct kube_client *c, const char *path, const cJSON *obj, int dry_run, int force,
	       cJSON **out, struct gerr *err);
/* DELETE with propagationPolicy (NULL: server default). A 404 is reported as GERR_NOTFOUND. */
int kube_delete(struct kube_client *c, const char *path, const char *propagation, int dry_run,
		struct gerr *err);
/* Pod logs as text. */
int kube_logs(struct kube_client *c, const char *ns, const char *pod, const char *container,
	      long tail_lines, struct buf *out, struct gerr *err);

/* Watch events: type is ADDED, MODIFIED, DELETED or BOOKMARK; obj borrowed.
 * Return 0 to go on, 1 to stop watching, -1 to abort with err set. */
typedef int (*kube_watch_fn)(void *ud, const char *type, const cJSON *obj, struct gerr *err);

struct kube_watch_opts {
	const char *label_selector;
	const char *field_selector;
	const char *resource_version; /* start point; NULL: list first */
	long timeout_ms;              /* overall; 0 = until the callback stops */
	int bookmarks;                /* allowWatchBookmarks */
};

/* List then watch path; on 410 Gone (expired resourceVersion) relist and
 * deliver the current objects as ADDED events again, then watch on.  The
 * watch is resumed from the last seen resourceVersion when a stream ends. */
int kube_watch(struct kube_client *c, const char *path, const struct kube_watch_opts *wo,
	       kube_watch_fn fn, void *ud, struct gerr *err);

/* May the caller do this?  (SelfSubjectAccessReview, as `kubectl auth can-i`.)
 * group "" is the core group; ns NULL for cluster-scoped resources or all
 * namespaces; name NULL for any.  allowed is the server's answer. */
struct kube_access {
	const char *verb, *group, *resource, *ns, *name;
	const char *subresource; /* "log" for pods/log, or NULL */
	int allowed; /* result */
};
int kube_can_i(struct kube_client *c, const char *verb, const char *group, const char *resource, const char *ns,
	       int *allowed, struct gerr *err);
/* Ask for every entry of a at once (concurrently); -1 with err from the first
 * review that failed (the others are still filled). */
int kube_can_i_many(struct kube_client *c, struct kube_access *a, size_t n, struct gerr *err);

/* Version of the server (GET /version), e.g. "v1.36.3". */
int kube_server_version(struct kube_client *c, char **out, struct gerr *err);

/* A URL fit for messages: a userinfo part (https://user:password@host) is
 * replaced by "***@".  The caller frees the result; NULL gives NULL. */
char *kube_url_redact(const char *url);

/* ---- retry policy (exposed for tests) ---- */

/* Whether a finished attempt should be retried: curl_code is the transport
 * result (0 ok), status the HTTP status.  connected: the request reached the
 * server. */
int kube_should_retry(int curl_code, long status, int idempotent, int connected);
/* Backoff before attempt n (1-based retry number), with full jitter in
 * [base*2^(n-1)/2, base*2^(n-1)], capped at max.  retry_after_s >= 0 wins. */
long kube_backoff_ms(int n, long base_ms, long max_ms, long retry_after_s, unsigned *seed);
/* Parse a Retry-After header value (seconds or HTTP-date); -1 if invalid. */
long kube_parse_retry_after(const char *value, time_t now);

#endif
