/* report.h - the one result model every command prints through.
 *
 * A report is what one run of a command found or did: rows, one per target
 * (a node, or "cluster") and kind (a check id such as "node.driver", or what
 * was changed: "containerd", "runtimeclass", "label"), each with a status, a
 * one-line message, a hint, command-specific details and the seconds it took.
 * The terminal table (or lines), -o json|yaml and JUnit XML are views of the
 * same rows, so they cannot disagree.
 *
 * The report's kind ("ValidationResult", "DeployResult", "NodeLabelResult",
 * "NodeTaintResult") picks the document shape documented in that command's
 * man page (the items array and its keys, the summary) and the terminal
 * layout; an unknown kind gets a generic shape (items "results").
 *
 * Ownership: the report owns its rows and everything in them; report_set
 * and the details of a row take ownership of the cJSON given.  A row's
 * texts (target, kind, message, hint) are interned in the report's string
 * pool (strpool.h): on a large cluster thousands of rows share the node's
 * name, the check's id, the hint and often the message, and each distinct
 * text is stored once.  A row built apart (report_row_set) owns its texts
 * until report_add_row interns them.
 */
#ifndef GPUCTL_REPORT_H
#define GPUCTL_REPORT_H

#include <stddef.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"

#define REPORT_API_VERSION "gpuctl.io/v1alpha1"

enum report_status {
	/* results of checks (validate) */
	REPORT_PASS,
	REPORT_WARN,
	REPORT_FAIL,
	REPORT_SKIP,
	/* results of changes (deploy, label, taint) */
	REPORT_CHANGED,
	REPORT_UNCHANGED,
	REPORT_FAILED,
	REPORT_SKIPPED,
	REPORT_ROLLED_BACK,
	REPORT_ROLLBACK_FAILED,
	REPORT_CREATED,
	REPORT_STATUS_COUNT
};

/* What a status means whatever its word: counted as passed, a warning, a
 * failure (exit status 1, a JUnit failure) or skipped. */
enum report_class { REPORT_CLASS_OK, REPORT_CLASS_WARN, REPORT_CLASS_FAIL, REPORT_CLASS_SKIP };

/* The word of a status as the documents write it: "pass", "rolled-back"... */
const char *report_status_name(enum report_status st);
enum report_class report_status_class(enum report_status st);

/* 64 bytes: on 20,000 nodes validate holds about 150,000 of them. */
struct report_row {
	const char *target;  /* "cluster" or the node's name */
	const char *kind;    /* the check id, or what was changed: "containerd", "runtimeclass", "label" */
	const char *message; /* one line: what was found or done; never NULL */
	const char *hint;    /* what to do, or NULL */
	char *object;        /* owned: how the terminal names it when not node/<target> ("runtimeclass/nvidia"), or NULL */
	cJSON *details;      /* owned object of the command's own fields (probe, changes, error...), or NULL */
	double seconds;      /* time it took (0: not measured) */
	enum report_status status;
	enum gerr_code code; /* a failed row's error code (GERR_OK otherwise): decides the exit status */
};

struct strpool;

struct report {
	const char *kind;     /* document kind (static string): "ValidationResult" */
	const char *command;  /* the command (static string): "validate"; names the JUnit suites */
	cJSON *extra;         /* owned: document fields placed after kind, in order (dryRun...) */
	struct report_row *v;
	size_t n, cap;
	int no_items;         /* leave the items array out (the phase that makes those rows did not run) */
	const char *changed_word; /* the terminal's word for changed ("labeled"); NULL: "changed" */
	struct strpool *pool; /* the rows' texts (made when the first row is added) */
};

/* An empty report of this kind for this command (both static strings). */
void report_init(struct report *r, const char *kind, const char *command);
void report_release(struct report *r);

/* Append a row: target and kind copied, hint copied when not NULL, message
 * printf-style; in all four, bytes that are not UTF-8 become U+FFFD (the
 * copies are interned in the report's pool).  Returns the row, valid until
 * the next append, for its details, seconds and object. */
struct report_row *report_add(struct report *r, const char *target, const char *kind, enum report_status st,
			      const char *hint, const char *fmt, ...) GPUCTL_PRINTF(6, 7);
/* Fill a row that is not in a report yet (a command printing rows as they
 * finish builds them apart); it releases what the row held first. */
void report_row_set(struct report_row *row, const char *target, const char *kind, enum report_status st,
		    const char *hint, const char *fmt, ...) GPUCTL_PRINTF(6, 7);
/* Give the row its details object (owned; replaces earlier details). */
void report_row_details(struct report_row *row, cJSON *details);
/* Append a row built with report_row_set, taking all it owns (row is zeroed). */
void report_add_row(struct report *r, struct report_row *row);
/* Release a row built with report_row_set (not one in a report: those are
 * released with the report). */
void report_row_release(struct report_row *row);
/* The report's string pool, made when first needed. */
struct strpool *report_pool(struct report *r);
/* Give the report pool p (taken) when it has no texts yet, so that texts
 * already interned in p serve its rows without a copy; returns 1 when p
 * was taken, 0 when the report keeps its own (p left to the caller). */
int report_adopt_pool(struct report *r, struct strpool *p);
/* Room for n more rows, so that appending them moves nothing. */
void report_reserve(struct report *r, size_t n);
/* Append a row of texts that live as long as the report (interned in its
 * pool, or static): no copy is made unless one is not UTF-8 (then its
 * U+FFFD copy is interned).  message NULL is "".  Returns the row as
 * report_add does. */
struct report_row *report_add_texts(struct report *r, const char *target, const char *kind, enum report_status st,
				    const char *hint, const char *message);
/* Set a document-level field (after apiVersion and kind), taking value. */
void report_set(struct report *r, const char *key, cJSON *value);

/* Counts of the rows that are the document's items (every row, but for
 * DeployResult only the nodes): by status, and by class. */
void report_count(const struct report *r, size_t by_status[REPORT_STATUS_COUNT]);
void report_count_classes(const struct report *r, size_t by_class[4]);
/* The number of items that failed (class REPORT_CLASS_FAIL). */
size_t report_failed(const struct report *r);
/* The exit status of a command from its report and the error that stopped
 * it, if any (gpuctl(1), EXIT STATUS): that error decides (2 usage, 3 the
 * cluster unreachable or refusing us, 1 otherwise); else 3 when a failed
 * row was refused by the cluster (401/403), 1 when any row failed or the
 * run was interrupted, 0 when all is done.  The one place that decides. */
int report_exit_status(const struct report *r, const struct gerr *err);

/* An error as the documents carry it: {reason, httpStatus (when from the
 * API), message, hint (when there is one)}.  New object. */
cJSON *report_error_json(const struct gerr *e);

/* ---- views ---- */

/* The document (-o json|yaml) of the report's kind; new tree. */
cJSON *report_json(const struct report *r);
/* Print the document as JSON or YAML (format "json" or "yaml"): the same
 * bytes as out_doc of report_json, written item by item, so that the
 * whole document never exists at once (on 20,000 nodes it would be more
 * than the rows themselves). */
void report_print_doc(FILE *f, const struct report *r, const char *format);

/* For a person.  ValidationResult: a table (header CHECK TARGET RESULT
 * MESSAGE, one line per row, a hint line under failures and warnings);
 * the others: one line per row ("node/gpu-1  changed  ...").  The status is
 * coloured when color is set; control characters in the text are shown as
 * '?' (tab and newline as a space), so a row stays one line. */
void report_print_table(FILE *f, const struct report *r, int color);
/* One row as report_print_table prints it (lines layouts), for commands
 * that print each row as it finishes.  The row need not be in r. */
void report_print_row(FILE *f, const struct report *r, const struct report_row *row, int color);
/* The summary line: "93 checks: 66 passed, 0 warnings, 13 failed, 14 skipped",
 * "4 node(s): 1 changed, 1 unchanged, 2 failed". */
void report_print_summary(FILE *f, const struct report *r);

/* JUnit XML: testsuites named "gpuctl <command>", one testsuite per target
 * ("cluster" or "node/<name>", in the order targets first appear), one
 * testcase per row (name: the row's kind; classname "gpuctl.<command>.cluster"
 * or "gpuctl.<command>.node.<name>"); failures get a failure element with the
 * message and hint, skipped rows a skipped element, others system-out.  Text
 * is escaped, characters XML 1.0 forbids are dropped and invalid UTF-8 is
 * replaced.  New string. */
char *report_junit(const struct report *r);
/* The same XML written to f in pieces (the whole document never exists at once). */
void report_print_junit(FILE *f, const struct report *r);
/* Write the JUnit XML to path atomically (report_write_file_fill), in
 * pieces as report_print_junit; "-" is stdout. */
int report_write_junit(const char *path, const struct report *r, struct gerr *err);

/* Write data to path so that no reader ever sees half of it: a new file
 * (mode 0644 less the umask) beside path, created exclusively and never
 * through a symlink, written, fsync'ed and renamed over path.  "-" writes to
 * stdout.  On failure nothing is left behind; GERR_IO naming path. */
int report_write_file(const char *path, const char *data, size_t len, struct gerr *err);
/* The same with the temporary file's name given (tests; report_write_file
 * picks an unpredictable one and tries again when it exists). */
int report_write_file_via(const char *path, const char *tmp, const char *data, size_t len, struct gerr *err);
/* report_write_file with the data written by fill (to the temporary file,
 * or stdout for "-") instead of given whole; a write error on f fails it. */
typedef void (*report_fill_fn)(FILE *f, const void *ud);
int report_write_file_fill(const char *path, report_fill_fn fill, const void *ud, struct gerr *err);

/* ---- progress on a terminal ---- */

struct report_progress {
	FILE *f;
	int on;               /* f is a terminal and the caller wants it */
	const char *command;  /* "validate" */
	const char *what;     /* "nodes checked" */
	size_t done, total;
};

/* Start a progress line on f: it shows only when want is set and f is a
 * terminal; otherwise every call prints nothing. */
void report_progress_init(struct report_progress *p, FILE *f, int want, const char *command, const char *what,
			  size_t total);
/* One more done: "\r\033[Kvalidate: 3/10 nodes checked (node/gpu-1: 1 failed)";
 * the line is cleared after the last one. */
void report_progress_step(struct report_progress *p, const char *target, size_t failed);

#endif
