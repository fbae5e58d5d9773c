/* Changing files on a node: back up, write, verify, restore.
 *
 * The lock.  ssh_exec runs one command at a time and returns when it ends,
 * so no remote process can keep a flock for the whole change (a background
 * holder would outlive a dead connection or need one).  What excludes a
 * second gpuctl is a lease: LOCKDIR/.gpuctl.lease holds "TOKEN EXPIRY".
 * Every script of a change set first takes `flock` on LOCKDIR/.gpuctl.lock
 * (held only for the instant it reads and renews the lease, so the check
 * and the renewal are one atomic step), checks that the lease is its own
 * (begin: that it is free, expired or its own), renews it, drops the flock
 * and only then does its work.  A second run finds a lease that is not its
 * own and not expired and is refused; a run that died leaves a lease that
 * expires lease_s after its last command; a rollback on a fresh connection
 * carries the same token and keeps the lease.
 *
 * Every script ends by printing a marker ("@@written", "@@restored SHA"...):
 * a command cut short (sshd dying, the connection dropping, a missing exit
 * status) lacks it and is a failure whatever its exit status read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gpuctl/util.h"
#include "gpuctl/remote.h"

#define LOCK_NAME ".gpuctl.lock"
#define LEASE_NAME ".gpuctl.lease"

/* ---- pure helpers ---- */

void remote_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

char *remote_random_hex(size_t nbytes)
{
	unsigned char *r = xcalloc(nbytes ? nbytes : 1, 1);
	if (RAND_bytes(r, (int)nbytes) != 1) {
		/* no entropy source: time and address still differ between runs */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long x = (unsigned long)ts.tv_nsec ^ (unsigned long)(size_t)r ^ (unsigned long)ts.tv_sec;
		for (size_t i = 0; i < nbytes; i++, x = x * 6364136223846793005UL + 1442695040888963407UL)
			r[i] = (unsigned char)(x >> 33);
	}
	char *s = xcalloc(2 * nbytes + 1, 1);
	for (size_t i = 0; i < nbytes; i++)
		snprintf(s + 2 * i, 3, "%02x", r[i]);
	free(r);
	return s;
}

char *remote_backup_name(const char *path, long when, const char *rand)
{
	time_t t = (time_t)when;
	struct tm tm;
	char stamp[32];
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	return xasprintf("%s.gpuctl-backup-%s-%s", path, stamp, rand && *rand ? rand : "0");
}

/* "VAR='quoted'\n" */
static void set_var(struct buf *b, const char *name, const char *value)
{
	buf_addf(b, "%s=", name);
	sh_quote(b, value);
	buf_addc(b, '\n');
}

/* fsync a file or folder: coreutils' sync takes paths (8.24+); else sync all */
static void sync_path(struct buf *b, const char *var)
{
	buf_addf(b, "sync -- \"$%s\" 2>/dev/null || sync\n", var);
}

void remote_script_lease(struct buf *b, const char *lockdir, const char *token, long lease_s, int begin)
{
	char *lock = xasprintf("%s/%s", lockdir, LOCK_NAME), *lease = xasprintf("%s/%s", lockdir, LEASE_NAME);
	set_var(b, "GPUCTL_LD", lockdir);
	set_var(b, "GPUCTL_L", lock);
	set_var(b, "GPUCTL_O", lease);
	set_var(b, "GPUCTL_T", token);
	buf_adds(b, "{ mkdir -p -- \"$GPUCTL_LD\" && exec 9>>\"$GPUCTL_L\"; } || { echo '@@lock-error cannot create the lock file'; exit 1; }\n"
		    "command -v flock >/dev/null 2>&1 || { echo '@@lock-error flock is not installed (util-linux)'; exit 1; }\n"
		    "flock -w 10 9 || { echo '@@locked busy'; exit 75; }\n"
		    "gpuctl_now=$(date +%s); gpuctl_tok=; gpuctl_exp=0\n"
		    "[ -s \"$GPUCTL_O\" ] && read -r gpuctl_tok gpuctl_exp < \"$GPUCTL_O\"\n"
		    "case $gpuctl_exp in ''|*[!0-9]*) gpuctl_exp=0;; esac\n");
	if (begin)
		buf_adds(b, "if [ -n \"$gpuctl_tok\" ] && [ \"$gpuctl_tok\" != \"$GPUCTL_T\" ] && [ \"$gpuctl_exp\" -gt \"$gpuctl_now\" ]; "
			    "then echo \"@@locked $gpuctl_exp\"; exit 75; fi\n");
	else
		buf_adds(b, "[ \"$gpuctl_tok\" = \"$GPUCTL_T\" ] || { echo \"@@lease-lost $gpuctl_exp\"; exit 75; }\n");
	buf_addf(b, "printf '%%s %%s\\n' \"$GPUCTL_T\" $((gpuctl_now + %ld)) > \"$GPUCTL_O.$$\" && mv -f -- \"$GPUCTL_O.$$\" \"$GPUCTL_O\" "
		    "|| { echo '@@lock-error cannot write the lease'; exit 1; }\n"
		    "exec 9>&-\n"
		    "echo '@@lease-ok'\n",
		 lease_s);
	free(lock);
	free(lease);
}

void remote_script_release(struct buf *b, const char *lockdir, const char *token)
{
	char *lock = xasprintf("%s/%s", lockdir, LOCK_NAME), *lease = xasprintf("%s/%s", lockdir, LEASE_NAME);
	set_var(b, "GPUCTL_L", lock);
	set_var(b, "GPUCTL_O", lease);
	set_var(b, "GPUCTL_T", token);
	buf_adds(b, "exec 9>>\"$GPUCTL_L\" && flock -w 10 9 || exit 1\n"
		    "gpuctl_tok=; [ -s \"$GPUCTL_O\" ] && read -r gpuctl_tok gpuctl_exp < \"$GPUCTL_O\"\n"
		    "if [ \"$gpuctl_tok\" = \"$GPUCTL_T\" ]; then rm -f -- \"$GPUCTL_O\" || exit 1; fi\n"
		    "echo '@@released'\n");
	free(lock);
	free(lease);
}

void remote_script_read(struct buf *b, const char *path)
{
	set_var(b, "P", path);
	buf_adds(b, "if [ -e \"$P\" ]; then\n"
		    "  s=$(stat -L -c '%a %u %g %s' -- \"$P\") || exit 1\n"
		    "  printf '@@stat %s\\n' \"$s\"; cat -- \"$P\" || exit 1; printf '@@eof\\n'\n"
		    "else printf '@@absent\\n'; fi\n");
}

void remote_script_backup(struct buf *b, const char *path, const char *backup)
{
	set_var(b, "P", path);
	set_var(b, "B", backup);
	buf_adds(b, "if [ -e \"$P\" ]; then\n"
		    "  if [ -e \"$B\" ]; then echo '@@backup-exists'; exit 1; fi\n"
		    "  cp -p -- \"$P\" \"$B\" || exit 1\n  ");
	sync_path(b, "B");
	buf_adds(b, "  set -- $(wc -c < \"$B\") $(sha256sum < \"$B\")\n"
		    "  printf '@@backup present %s %s\\n' \"$1\" \"$2\"\n"
		    "else printf '@@backup absent\\n'; fi\n");
}

void remote_script_write(struct buf *b, const char *path, const char *tmp, size_t size, const char *sha,
			 struct remote_mode mode)
{
	unsigned cap = mode.cap ? mode.cap & 07777 : 07777;
	unsigned nm = (mode.new_mode ? mode.new_mode : 0644) & cap;
	char *dir = path_dir(path);
	set_var(b, "P", path);
	set_var(b, "T", tmp);
	set_var(b, "D", dir);
	free(dir);
	/* the content is never readable by others while it is written (umask 077) */
	buf_adds(b, "(umask 022 && mkdir -p -- \"$D\") || exit 1\n"
		    "umask 077\n"
		    "trap 'rm -f -- \"$T\"; exit 1' HUP INT TERM PIPE\n"
		    "cat > \"$T\" || { rm -f -- \"$T\"; echo '@@write-error'; exit 1; }\n"
		    "set -- $(wc -c < \"$T\") $(sha256sum < \"$T\")\n");
	buf_addf(b, "if [ \"$1\" != %zu ] || [ \"$2\" != %s ]; then rm -f -- \"$T\"; printf '@@mismatch %%s %%s\\n' \"$1\" \"$2\"; exit 3; fi\n",
		 size, sha);
	buf_addf(b, "if [ -e \"$P\" ]; then\n"
		    "  set -- $(stat -L -c '%%a %%u %%g' -- \"$P\") || { rm -f -- \"$T\"; exit 1; }\n"
		    "  chmod \"$(printf %%o $((0$1 & 0%o)))\" -- \"$T\" && chown \"$2:$3\" -- \"$T\" || { rm -f -- \"$T\"; exit 1; }\n"
		    "else chmod %o -- \"$T\" || { rm -f -- \"$T\"; exit 1; }; fi\n",
		 cap, nm);
	sync_path(b, "T");
	buf_adds(b, "mv -f -- \"$T\" \"$P\" || { rm -f -- \"$T\"; exit 1; }\n");
	sync_path(b, "D");
	buf_adds(b, "printf '@@written\\n'\n");
}

void remote_script_restore(struct buf *b, const char *path, const char *backup, int existed)
{
	char *dir = path_dir(path);
	set_var(b, "P", path);
	set_var(b, "D", dir);
	free(dir);
	if (existed) {
		set_var(b, "B", backup);
		buf_adds(b, "T=\"$P.gpuctl-restore-$$\"\n");
		buf_adds(b, "cp -p -- \"$B\" \"$T\" || exit 1\n");
		sync_path(b, "T");
		buf_adds(b, "mv -f -- \"$T\" \"$P\" || { rm -f -- \"$T\"; exit 1; }\n");
		sync_path(b, "D");
		buf_adds(b, "set -- $(sha256sum < \"$P\") && printf '@@restored %s\\n' \"$1\"\n");
	} else {
		buf_adds(b, "rm -f -- \"$P\" || exit 1\n");
		sync_path(b, "D");
		buf_adds(b, "if [ -e \"$P\" ]; then echo '@@still-present'; exit 1; fi\nprintf '@@removed\\n'\n");
	}
}

char *remote_manual_restore(const char *path, const char *backup, int existed)
{
	struct buf b = BUF_INIT;
	if (existed) {
		buf_adds(&b, "cp -p -- ");
		sh_quote(&b, backup);
		buf_addc(&b, ' ');
		sh_quote(&b, path);
	} else {
		buf_adds(&b, "rm -f -- ");
		sh_quote(&b, path);
	}
	return buf_detach(&b);
}

/* The line of out that starts with marker (a pointer into out, after the
 * marker), or NULL. */
static const char *marker(const char *out, const char *m)
{
	size_t ml = strlen(m);
	for (const char *p = out; p && *p;) {
		if (!strncmp(p, m, ml))
			return p + ml;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static int first_line_len(const char *s)
{
	return (int)strcspn(s, "\n");
}

/* out starts with m: the lock's answer comes before anything a command prints
 * (a file or a dump with such a line is never mistaken for it) */
static const char *prefix(const char *out, const char *m)
{
	return strncmp(out, m, strlen(m)) ? NULL : out + strlen(m);
}

int remote_reply_lease(const char *out, const char *node, const char *lockdir, struct gerr *err)
{
	const char *m;
	if ((m = prefix(out, "@@locked ")) || (m = prefix(out, "@@lease-lost "))) {
		int lost = prefix(out, "@@lease-lost ") != NULL;
		long exp = strtol(m, NULL, 10);
		gerr_set(err, GERR_CONFLICT, lost ? "%sthe lock %s/%s was taken over by another gpuctl (this run's lease expired)"
						   : "%sanother gpuctl is changing this node (lock %s/%s held)",
			 node, lockdir, LOCK_NAME);
		if (exp > 0) {
			time_t t = (time_t)exp;
			struct tm tm;
			char when[32];
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
			gerr_hint(err, "wait for the other run to finish and run again; a lock left by a run that died expires at %s "
				       "(or remove %s/%s on the node when no gpuctl runs)",
				  when, lockdir, LEASE_NAME);
		} else {
			gerr_hint(err, "wait for the other run to finish and run again");
		}
		return -1;
	}
	if ((m = prefix(out, "@@lock-error ")))
		return gerr_set(err, GERR_SSH_COMMAND, "%scannot take the lock in %s: %.*s", node, lockdir,
				first_line_len(m), m);
	return 0;
}

int remote_reply_read(const char *out, size_t len, struct buf *text, struct remote_stat *st, const char *node,
		      const char *path, struct gerr *err)
{
	memset(st, 0, sizeof(*st));
	if (!strncmp(out, "@@absent\n", 9))
		return 0;
	unsigned mode;
	long uid, gid;
	unsigned long size;
	int used = 0;
	if (strncmp(out, "@@stat ", 7) || sscanf(out + 7, "%o %ld %ld %lu%n", &mode, &uid, &gid, &size, &used) != 4 ||
	    out[7 + used] != '\n')
		return gerr_set(err, GERR_SSH_COMMAND, "%sreading %s failed: %.*s", node, path,
				first_line_len(out), *out ? out : "no output");
	const char *body = out + 7 + used + 1;
	size_t blen = len - (size_t)(body - out);
	static const char eof[] = "@@eof\n";
	if (blen < sizeof(eof) - 1 || memcmp(body + blen - (sizeof(eof) - 1), eof, sizeof(eof) - 1) ||
	    blen - (sizeof(eof) - 1) != size)
		return gerr_set(err, GERR_SSH_COMMAND, "%sreading %s was cut short (%zu of %lu bytes)", node, path,
				blen >= sizeof(eof) - 1 ? blen - (sizeof(eof) - 1) : blen, size);
	st->exists = 1;
	st->mode = mode & 07777;
	st->uid = uid;
	st->gid = gid;
	if (text)
		buf_add(text, body, size);
	return 0;
}

static int is_sha(const char *s)
{
	return strspn(s, "0123456789abcdef") == 64 && (s[64] == '\0' || s[64] == '\n' || s[64] == ' ');
}

int remote_reply_backup(const char *out, int *existed, char sha[65], const char *node, const char *path,
			struct gerr *err)
{
	const char *m;
	*existed = 0;
	sha[0] = '\0';
	if (marker(out, "@@backup absent"))
		return 0;
	unsigned long size;
	int used = 0;
	if ((m = marker(out, "@@backup present ")) && sscanf(m, "%lu %n", &size, &used) == 1 && is_sha(m + used)) {
		*existed = 1;
		memcpy(sha, m + used, 64);
		sha[64] = '\0';
		return 0;
	}
	if (marker(out, "@@backup-exists"))
		return gerr_set(err, GERR_CONFLICT, "%sthe backup name for %s is taken; nothing was changed", node, path);
	return gerr_set(err, GERR_SSH_COMMAND, "%scannot back up %s; nothing was changed%s%.*s", node, path,
			*out ? ": " : "", first_line_len(out), out);
}

int remote_reply_write(const char *out, const char *node, const char *path, struct gerr *err)
{
	const char *m;
	if (marker(out, "@@written"))
		return 0;
	if ((m = marker(out, "@@mismatch ")))
		return gerr_set(err, GERR_SSH_COMMAND,
				"%swriting %s: what arrived differs from what was sent (size and SHA-256 %.*s); the file was not replaced",
				node, path, first_line_len(m), m);
	return gerr_set(err, GERR_SSH_COMMAND, "%swriting %s failed%s%.*s", node, path, *out ? ": " : "",
			first_line_len(out), out);
}

int remote_reply_restore(const char *out, int existed, const char *want_sha, const char *node, const char *path,
			 struct gerr *err)
{
	const char *m;
	if (existed) {
		if ((m = marker(out, "@@restored ")) && is_sha(m) && !strncmp(m, want_sha, 64))
			return 0;
		if (m)
			return gerr_set(err, GERR_SSH_COMMAND, "%s%s differs from its backup after the restore (SHA-256 %.*s, backup %s)",
					node, path, first_line_len(m), m, want_sha);
		return gerr_set(err, GERR_SSH_COMMAND, "%srestoring %s could not be proven", node, path);
	}
	if (marker(out, "@@removed"))
		return 0;
	return gerr_set(err, GERR_SSH_COMMAND, "%s%s could not be removed (it did not exist before)", node, path);
}

void remote_manual_hint(struct gerr *err, const cJSON *steps)
{
	struct buf h = BUF_INIT;
	buf_adds(&h, "finish the rollback by hand on the node:");
	const cJSON *s;
	cJSON_ArrayForEach(s, steps)
		if (cJSON_IsString(s))
			buf_addf(&h, "\n  %s", s->valuestring);
	gerr_hint(err, "%s", h.s);
	buf_release(&h);
}

/* ---- the change set ---- */

struct touched {
	char *path;
	char *backup;   /* NULL when the file did not exist */
	char sha[65];   /* the backup's SHA-256 */
	int written;
};

struct remote_change {
	struct ssh_conn *conn;       /* borrowed, or own_conn */
	struct ssh_conn *own_conn;   /* from reconnect; closed at free */
	struct remote_opts o;
	char *node, *lockdir, *token, *rand;
	long lease_s;
	int locked;
	int reconnected;
	int rolling_back;
	struct touched *t;
	size_t n;
	unsigned seq;
};

static int do_exec(struct remote_change *chg, const char *cmd, const char *in, size_t in_len, struct buf *out,
		   struct buf *errb, int *status, struct gerr *err)
{
	remote_exec_fn fn = chg->o.exec ? chg->o.exec : ssh_exec;
	*status = -1;
	return fn(chg->conn, cmd, in, in_len, out, errb, status, err);
}

static int is_transport(const struct gerr *e)
{
	return e->code == GERR_SSH_CONN || e->code == GERR_SSH_TIMEOUT || e->code == GERR_SSH_COMMAND;
}

/* One more try on a fresh connection (once per change set). */
static int reconnect(struct remote_change *chg, struct gerr *err)
{
	if (!chg->o.reconnect || chg->reconnected)
		return -1;
	chg->reconnected = 1;
	struct ssh_conn *c = NULL;
	struct gerr e = GERR_INIT;
	if (chg->o.reconnect(chg->o.reconnect_ud, &c, &e) < 0) {
		gerr_prefix(&e, "reconnecting for the rollback");
		if (err && err->code == GERR_OK)
			gerr_move(err, &e);
		gerr_clear(&e);
		return -1;
	}
	if (chg->own_conn)
		chg->o.close ? chg->o.close(chg->own_conn) : ssh_close(chg->own_conn);
	chg->own_conn = c;
	chg->conn = c;
	return 0;
}

/* Check the lease's answer at the start of out and drop its "@@lease-ok"
 * line, so that out is exactly what the rest of the script printed. */
static int take_lease_reply(struct remote_change *chg, struct buf *out, struct gerr *err)
{
	static const char ok[] = "@@lease-ok\n";
	if (chg->o.read_only || !chg->locked)
		return 0;
	if (!strncmp(out->s, ok, sizeof(ok) - 1)) {
		memmove(out->s, out->s + sizeof(ok) - 1, out->len - (sizeof(ok) - 1) + 1);
		out->len -= sizeof(ok) - 1;
		return 0;
	}
	if (remote_reply_lease(out->s, chg->node, chg->lockdir, err) < 0)
		return -1;
	return gerr_set(err, GERR_SSH_COMMAND, "%sthe command did not run to its end (no answer from the lock)%s%.*s",
			chg->node, out->len ? ": " : "", first_line_len(out->s), out->s);
}

/* Run script (already with its lease prologue) and require its marker-carrying output. */
static int run_script(struct remote_change *chg, const char *script, const char *in, size_t in_len, struct buf *out,
		      struct gerr *err)
{
	int status = -1;
	struct buf errb = BUF_INIT;
	int rc = do_exec(chg, script, in, in_len, out, &errb, &status, err);
	if (rc == 0 && take_lease_reply(chg, out, err) < 0)
		rc = -1;
	else if (rc == 0 && status != 0 && !out->len)
		rc = gerr_set(err, GERR_SSH_COMMAND, "%scommand failed (exit %d)%s%.*s", chg->node, status,
			      errb.len ? ": " : "", first_line_len(errb.s), errb.s);
	buf_release(&errb);
	return rc;
}

static void prologue(struct remote_change *chg, struct buf *b, int begin)
{
	if (chg->o.read_only)
		return;
	if (chg->locked || begin)
		remote_script_lease(b, chg->lockdir, chg->token, chg->lease_s, begin);
}

int remote_change_begin(struct ssh_conn *conn, const struct remote_opts *o, struct remote_change **out,
			struct gerr *err)
{
	struct remote_change *chg = xcalloc(1, sizeof(*chg));
	chg->conn = conn;
	chg->o = *o;
	chg->node = o->node ? xasprintf("node %s: ", o->node) : xstrdup("");
	chg->lockdir = xstrdup(o->lockdir ? o->lockdir : "/run");
	chg->lease_s = o->lease_s > 0 ? o->lease_s : 600;
	chg->rand = remote_random_hex(4);
	char *r = remote_random_hex(8);
	chg->token = xasprintf("gpuctl-%ld-%s", (long)time(NULL), r);
	free(r);
	if (o->read_only) {
		*out = chg;
		return 0;
	}
	struct buf b = BUF_INIT, outb = BUF_INIT;
	prologue(chg, &b, 1);
	buf_adds(&b, "echo '@@locked-ok'\n");
	chg->locked = 1; /* the answer is read as a locked script's */
	int rc = run_script(chg, b.s, NULL, 0, &outb, err);
	if (rc == 0 && strcmp(outb.s, "@@locked-ok\n"))
		rc = gerr_set(err, GERR_SSH_COMMAND, "%staking the lock in %s failed%s%.*s", chg->node, chg->lockdir,
			      outb.len ? ": " : "", first_line_len(outb.s), outb.s);
	buf_release(&b);
	buf_release(&outb);
	if (rc < 0) {
		chg->locked = 0; /* nothing to release: the lease is another run's, or none */
		remote_change_free(chg);
		*out = NULL;
		return -1;
	}
	*out = chg;
	return 0;
}

int remote_change_read(struct remote_change *chg, const char *path, struct buf *text, struct remote_stat *st,
		       struct gerr *err)
{
	struct buf b = BUF_INIT, outb = BUF_INIT;
	prologue(chg, &b, 0);
	remote_script_read(&b, path);
	int rc = run_script(chg, b.s, NULL, 0, &outb, err);
	if (rc == 0)
		rc = remote_reply_read(outb.s, outb.len, text, st, chg->node, path, err);
	buf_release(&b);
	buf_release(&outb);
	return rc;
}

static struct touched *find(struct remote_change *chg, const char *path)
{
	for (size_t i = 0; i < chg->n; i++)
		if (!strcmp(chg->t[i].path, path))
			return &chg->t[i];
	return NULL;
}

int remote_change_backup(struct remote_change *chg, const char *path, const char **backup, struct gerr *err)
{
	struct touched *t = find(chg, path);
	if (t) {
		*backup = t->backup;
		return 0;
	}
	if (chg->o.read_only)
		return gerr_set(err, GERR_INTERNAL, "%s: a read-only change set changes nothing", path);
	/* unique per run and per file: time, this run's random part and a counter */
	char *rnd = xasprintf("%s%u", chg->rand, chg->seq++);
	char *name = remote_backup_name(path, (long)time(NULL), rnd);
	free(rnd);
	struct buf b = BUF_INIT, outb = BUF_INIT;
	prologue(chg, &b, 0);
	remote_script_backup(&b, path, name);
	int existed = 0;
	char sha[65];
	int rc = run_script(chg, b.s, NULL, 0, &outb, err);
	if (rc == 0)
		rc = remote_reply_backup(outb.s, &existed, sha, chg->node, path, err);
	buf_release(&b);
	buf_release(&outb);
	if (rc < 0) {
		free(name);
		return -1;
	}
	chg->t = xrealloc(chg->t, (chg->n + 1) * sizeof(*chg->t));
	t = &chg->t[chg->n++];
	memset(t, 0, sizeof(*t));
	t->path = xstrdup(path);
	t->backup = existed ? name : NULL;
	if (!existed)
		free(name);
	memcpy(t->sha, sha, sizeof(t->sha));
	*backup = t->backup;
	return 0;
}

char *remote_change_scratch(struct remote_change *chg, const char *path)
{
	char *dir = path_dir(path);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char *s = xasprintf("%s/.%s.gpuctl-tmp-%s%u", dir, base, chg->rand, chg->seq++);
	free(dir);
	return s;
}

int remote_change_write(struct remote_change *chg, const char *path, const char *content, size_t len,
			struct remote_mode mode, struct gerr *err)
{
	const char *bak;
	if (remote_change_backup(chg, path, &bak, err) < 0)
		return -1;
	struct touched *t = find(chg, path);
	char sha[65];
	remote_sha256_hex(content, len, sha);
	char *tmp = remote_change_scratch(chg, path);
	struct buf b = BUF_INIT, outb = BUF_INIT;
	prologue(chg, &b, 0);
	remote_script_write(&b, path, tmp, len, sha, mode);
	/* from here the file may have changed: a rollback must restore it */
	t->written = 1;
	int rc = run_script(chg, b.s, content, len, &outb, err);
	if (rc == 0)
		rc = remote_reply_write(outb.s, chg->node, path, err);
	buf_release(&b);
	buf_release(&outb);
	free(tmp);
	return rc;
}

int remote_change_remove(struct remote_change *chg, const char *path, struct gerr *err)
{
	const char *bak;
	if (remote_change_backup(chg, path, &bak, err) < 0)
		return -1;
	struct touched *t = find(chg, path);
	struct buf b = BUF_INIT, outb = BUF_INIT;
	prologue(chg, &b, 0);
	remote_script_restore(&b, path, NULL, 0); /* its "absent" branch: remove and prove it */
	/* from here the file may be gone: a rollback must restore it */
	t->written = 1;
	int rc = run_script(chg, b.s, NULL, 0, &outb, err);
	if (rc == 0 && !marker(outb.s, "@@removed"))
		rc = gerr_set(err, GERR_SSH_COMMAND, "%s%s could not be removed", chg->node, path);
	buf_release(&b);
	buf_release(&outb);
	return rc;
}

int remote_change_exec(struct remote_change *chg, const char *cmdline, const char *in, struct buf *out,
		       struct buf *errout, int *status, struct gerr *err)
{
	struct buf b = BUF_INIT, o = BUF_INIT;
	prologue(chg, &b, 0);
	/* in a subshell, so that its `exit` still reaches the marker */
	buf_adds(&b, "(\n");
	buf_adds(&b, cmdline);
	buf_adds(&b, "\n)\ngpuctl_rc=$?; printf '\\n@@rc %s\\n' \"$gpuctl_rc\"; exit $gpuctl_rc\n");
	int rc = do_exec(chg, b.s, in, in ? strlen(in) : 0, &o, errout, status, err);
	if (rc < 0 && chg->rolling_back && is_transport(err) && reconnect(chg, err) == 0) {
		gerr_clear(err);
		buf_reset(&o);
		rc = do_exec(chg, b.s, in, in ? strlen(in) : 0, &o, errout, status, err);
	}
	if (rc == 0 && take_lease_reply(chg, &o, err) < 0)
		rc = -1;
	if (rc == 0) {
		/* the marker is the last line; without it the command did not run to its end */
		const char *m = NULL;
		for (const char *p = o.s; (p = strstr(p, "\n@@rc ")); p++)
			m = p;
		if (!m) {
			*status = -1;
			rc = gerr_set(err, GERR_SSH_COMMAND, "%s`%.*s` did not run to its end (no exit status)", chg->node,
				      first_line_len(cmdline), cmdline);
		} else {
			*status = (int)strtol(m + 6, NULL, 10);
			if (out)
				buf_add(out, o.s, (size_t)(m - o.s));
		}
	}
	buf_release(&b);
	buf_release(&o);
	return rc;
}

size_t remote_change_written(const struct remote_change *chg)
{
	size_t n = 0;
	for (size_t i = 0; chg && i < chg->n; i++)
		n += chg->t[i].written;
	return n;
}

static int release(struct remote_change *chg, struct gerr *err)
{
	if (!chg->locked)
		return 0;
	struct buf b = BUF_INIT, outb = BUF_INIT;
	remote_script_release(&b, chg->lockdir, chg->token);
	int status = -1;
	int rc = do_exec(chg, b.s, NULL, 0, &outb, NULL, &status, err);
	if (rc == 0 && !marker(outb.s, "@@released"))
		rc = gerr_set(err, GERR_SSH_COMMAND, "%sreleasing the lock in %s failed", chg->node, chg->lockdir);
	if (rc == 0)
		chg->locked = 0;
	buf_release(&b);
	buf_release(&outb);
	return rc;
}

int remote_change_commit(struct remote_change *chg, struct gerr *err)
{
	return release(chg, err);
}

static int restore_one(struct remote_change *chg, const struct touched *t, struct gerr *err)
{
	struct buf b = BUF_INIT, outb = BUF_INIT;
	prologue(chg, &b, 0);
	remote_script_restore(&b, t->path, t->backup, t->backup != NULL);
	int rc = run_script(chg, b.s, NULL, 0, &outb, err);
	if (rc == 0)
		rc = remote_reply_restore(outb.s, t->backup != NULL, t->sha, chg->node, t->path, err);
	buf_release(&b);
	buf_release(&outb);
	return rc;
}

int remote_change_rollback(struct remote_change *chg, cJSON **manual, struct gerr *err)
{
	*manual = NULL;
	chg->rolling_back = 1;
	struct buf failed = BUF_INIT;
	cJSON *steps = cJSON_CreateArray();
	struct gerr first = GERR_INIT;
	size_t nfailed = 0;
	for (size_t i = 0; i < chg->n; i++) {
		struct touched *t = &chg->t[i];
		if (!t->written)
			continue;
		struct gerr e = GERR_INIT;
		int rc = restore_one(chg, t, &e);
		if (rc < 0 && is_transport(&e) && reconnect(chg, &e) == 0) {
			gerr_clear(&e);
			rc = restore_one(chg, t, &e);
		}
		if (rc < 0) {
			nfailed++;
			buf_addf(&failed, "%s%s", failed.len ? ", " : "", t->path);
			char *m = remote_manual_restore(t->path, t->backup, t->backup != NULL);
			cJSON_AddItemToArray(steps, cJSON_CreateString(m));
			free(m);
			if (first.code == GERR_OK)
				gerr_move(&first, &e);
		}
		gerr_clear(&e);
	}
	int rc = 0;
	if (nfailed) {
		gerr_set(err, GERR_SSH_COMMAND, "%srollback failed: %s not proven restored (%s)", chg->node, failed.s,
			 first.cause ? first.cause : first.msg ? first.msg : "unknown");
		remote_manual_hint(err, steps);
		*manual = steps;
		steps = NULL;
		rc = -1;
	}
	cJSON_Delete(steps);
	gerr_clear(&first);
	buf_release(&failed);
	return rc;
}

void remote_change_free(struct remote_change *chg)
{
	if (!chg)
		return;
	if (chg->locked) {
		struct gerr e = GERR_INIT;
		release(chg, &e);
		gerr_clear(&e);
	}
	for (size_t i = 0; i < chg->n; i++) {
		free(chg->t[i].path);
		free(chg->t[i].backup);
	}
	free(chg->t);
	if (chg->own_conn)
		chg->o.close ? chg->o.close(chg->own_conn) : ssh_close(chg->own_conn);
	free(chg->node);
	free(chg->lockdir);
	free(chg->token);
	free(chg->rand);
	free(chg);
}
