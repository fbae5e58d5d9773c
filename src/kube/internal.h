/* Private to src/kube: the client struct and the streaming call. */
#ifndef GPUCTL_KUBE_INTERNAL_H
#define GPUCTL_KUBE_INTERNAL_H

#include <curl/curl.h>

#include "gpuctl/kube.h"

struct kube_client {
	struct kube_opts opts;
	struct kube_config *cfg;
	CURLM *multi;
	struct kube_exec_cred cred;
	int have_cred;
	struct kube_stats stats;
	unsigned seed;
	char *base_url;                /* server URL, host swapped for tls-server-name */
	char *server_shown;            /* server URL for messages: any user:password@ redacted */
	struct curl_slist *connect_to; /* maps tls-server-name to the real host */
	char **warnings_seen;
	size_t nwarnings;
};

/* Set the TLS options of one transfer: verification against the
 * kubeconfig's CA only (or none with insecure-skip-tls-verify), the client
 * certificate (libcurl keeps its own copies of every blob). */
void kube_tls_setopts(struct kube_client *c, CURL *e);

/* The message of an error response: the Status' message, else a short
 * printable excerpt of the body (a new string); *reason the status' phrase
 * or NULL. */
char *kube_status_message(const char *body, size_t len, long status, const char **reason);

/* Decode one line of a watch stream (one JSON event) and deliver it to fn as
 * kube_watch does; returns what fn returned, 1 for a 410 ERROR event, -1 with
 * err set for a malformed event or another ERROR event. */
int kube_watch_decode(const char *line, size_t len, kube_watch_fn fn, void *ud, struct gerr *err);

/* A line-by-line streaming GET (watch): fn gets each complete line; it
 * returns 0 to go on, 1 to stop (the call then succeeds), -1 to fail with
 * its own error in *err. */
typedef int (*kube_line_fn)(void *ud, const char *line, size_t len, struct gerr *err);
int kube_stream(struct kube_client *c, struct kube_call *call, kube_line_fn fn, void *ud, long timeout_ms,
		struct gerr *err);

/* The pruning helpers (prune.c) that cut a listed item down to what gpuctl
 * reads: kube_pod_prune, kube_meta_prune and node_prune_parts.  Every key
 * given is a string that lives as long as the program (a literal or a
 * static table's): cJSON keeps no copy of it (cJSON_AddItemToObjectCS), a
 * saving of one allocation per field on every item kept.  Values are deep
 * copies; from is borrowed. */
/* Add item under key; returns item. */
cJSON *prune_add(cJSON *to, const char *key, cJSON *item);
/* from[key] copied into to when present. */
void prune_keep_one(cJSON *to, const cJSON *from, const char *key);
/* The members of from named in keys (NULL-terminated) copied into to. */
void prune_keep(cJSON *to, const cJSON *from, const char *const *keys);
/* The members of the object from[key] whose names start with prefix; an
 * object stays an object (maybe empty: "has annotations" is read too), any
 * other value is copied whole. */
void prune_keep_prefixed(cJSON *to, const cJSON *from, const char *key, const char *prefix);
/* from[key], an array of objects, as an array holding of each element only
 * the members named in fields; with match_key, only the elements whose
 * match_key member is the string match_value (a node's Ready condition,
 * its InternalIP address).  Elements that are not objects, and a from[key]
 * that is not an array, are copied whole. */
void prune_keep_each(cJSON *to, const cJSON *from, const char *key, const char *match_key, const char *match_value,
		     const char *const *fields);
/* obj[key] when it is an object: a new empty object added to to under key,
 * for the caller to keep members of *from in; NULL when absent (nothing
 * added) or not an object (copied whole). */
cJSON *prune_sub(cJSON *to, const cJSON *obj, const char *key, const cJSON **from);

#endif
