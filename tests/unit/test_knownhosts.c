/* known_hosts: which entries name a host, when its key matches, changed or
 * is unknown, and the hashed lines --ssh-accept-new writes (checked against
 * OpenSSL's HMAC and OpenSSH's own ssh-keygen). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuctl/spawn.h"
#include "gpuctl/ssh.h"

/* made with ssh-keygen -t ...; only the public halves */
#define ED_A "AAAAC3NzaC1lZDI1NTE5AAAAIARMtFXrnS6/9nv53TJy9IV7gCTyLHlrg7m+Ma2vqNMG"
#define ED_B "AAAAC3NzaC1lZDI1NTE5AAAAIEgGy/FkVVB9sE+xgMfHaME9/IS9henOQDmeZRRZ9hQU"
#define ECDSA                                                                                                          \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOgJHQ9Wz02UV8Dr4YAo2NfFsqgnXb1QmtrtP866MdICBt9WMkI2scve1" \
	"9rK2SPxgpCJ01lAyBc1VgP6l7GpWSE="
#define RSA                                                                                                            \
	"AAAAB3NzaC1yc2EAAAADAQABAAAAgQCxyhhVM6lRxF4ykhDS7XNFFbMqfVT2+Jq58pXqtRAsRQH01p2CDocoH1BnNvn6zzdzmf1t+roOqzYFajJ" \
	"FKaoG+uY5SYL1CHBXJjCFc1086zE7FbZ+ZbrJZ2r+Bbzn3DOD9ACcoVkYzmzp2xfe/sY24LC6/WkekuWUP+7UtDgI8w=="

struct blob {
	unsigned char b[1024];
	size_t n;
};

static struct blob key(const char *b64)
{
	struct blob k;
	size_t l = strlen(b64);
	int r = EVP_DecodeBlock(k.b, (const unsigned char *)b64, (int)l);
	cr_assert(r > 0);
	k.n = (size_t)r - (b64[l - 1] == '=') - (b64[l - 2] == '=');
	return k;
}

static enum knownhosts_match check(const char *text, const char *host, int port, const char *b64, int *line,
				   char **recorded)
{
	struct blob k = key(b64);
	struct knownhosts_result r;
	knownhosts_check(text, host, port, k.b, k.n, &r);
	if (line)
		*line = r.line;
	if (recorded)
		*recorded = r.recorded ? strdup(r.recorded) : NULL;
	knownhosts_result_release(&r);
	return r.match;
}

Test(knownhosts, plain_entry_matches_its_key_only)
{
	const char *kh = "# comment\n\nother ssh-ed25519 " ED_B "\nnode1,10.0.0.1 ssh-ed25519 " ED_A " root@node1\n";
	int line = 0;
	cr_assert_eq(check(kh, "node1", 22, ED_A, &line, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(line, 4);
	cr_assert_eq(check(kh, "10.0.0.1", 22, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "node1", 22, ED_B, &line, NULL), KNOWNHOSTS_CHANGED);
	cr_assert_eq(line, 4);
	cr_assert_eq(check(kh, "node2", 22, ED_A, &line, NULL), KNOWNHOSTS_UNKNOWN);
	cr_assert_eq(line, 0);
	cr_assert_eq(check("", "node1", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
}

/* the hole this closes: a host known by its ecdsa key, offered an ed25519
 * key, read as unknown and --ssh-accept-new took the new key */
Test(knownhosts, a_host_known_by_another_key_type_is_changed_not_unknown)
{
	const char *kh = "node1 ecdsa-sha2-nistp256 " ECDSA "\n";
	char *rec = NULL;
	cr_assert_eq(check(kh, "node1", 22, ED_A, NULL, &rec), KNOWNHOSTS_CHANGED);
	cr_assert_str_eq(rec, "ecdsa-sha2-nistp256");
	free(rec);
	const char *kh2 = "node1 ssh-rsa " RSA "\nnode1 ecdsa-sha2-nistp256 " ECDSA "\nnode1 ssh-rsa " RSA "\n";
	cr_assert_eq(check(kh2, "node1", 22, ED_A, NULL, &rec), KNOWNHOSTS_CHANGED);
	cr_assert_str_eq(rec, "ssh-rsa,ecdsa-sha2-nistp256", "types in file order without repeats");
	free(rec);
	cr_assert_eq(check(kh2, "node1", 22, ECDSA, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh2, "node1", 22, RSA, NULL, NULL), KNOWNHOSTS_MATCH);
}

Test(knownhosts, ports_use_the_bracket_form)
{
	const char *kh = "[node1]:2222 ssh-ed25519 " ED_A "\n[fe80::1]:2222 ssh-ed25519 " ED_A "\nfe80::2 ssh-ed25519 " ED_A "\n";
	cr_assert_eq(check(kh, "node1", 2222, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "node1", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	cr_assert_eq(check(kh, "node1", 2223, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	cr_assert_eq(check(kh, "fe80::1", 2222, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "fe80::2", 22, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check("node1 ssh-ed25519 " ED_A "\n", "node1", 2222, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
}

Test(knownhosts, patterns_negation_and_case)
{
	const char *kh = "*.gpu.example,!bad.gpu.example ssh-ed25519 " ED_A "\nNODE?.lab ssh-ed25519 " ED_A "\n";
	cr_assert_eq(check(kh, "n1.gpu.example", 22, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "bad.gpu.example", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	cr_assert_eq(check(kh, "node7.LAB", 22, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "node17.lab", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	cr_assert_eq(check(kh, "n1.gpu.example", 22, ED_B, NULL, NULL), KNOWNHOSTS_CHANGED);
}

Test(knownhosts, markers_and_malformed_lines)
{
	/* a CA key makes no host known for plain keys; broken lines are skipped */
	const char *kh = "@cert-authority * ssh-ed25519 " ED_B "\n"
			 "node1\n"
			 "node1 ssh-ed25519\n"
			 "node1 ssh-ed25519 !!notbase64!!\n"
			 "node1 1024 35 12345\n"
			 "@unknown-marker node1 ssh-ed25519 " ED_B "\n";
	cr_assert_eq(check(kh, "node1", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	const char *rev = "node1 ssh-ed25519 " ED_A "\n@revoked * ssh-ed25519 " ED_A "\n";
	int line = 0;
	cr_assert_eq(check(rev, "node1", 22, ED_A, &line, NULL), KNOWNHOSTS_REVOKED);
	cr_assert_eq(line, 2);
	cr_assert_eq(check("node1 ssh-ed25519 " ED_A "\r\n", "node1", 22, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
}

static int run(const char *const *argv, struct buf *out)
{
	struct spawn_opts o = { .argv = argv, .timeout_ms = 20000 };
	struct buf errb = BUF_INIT;
	int status = -1;
	struct gerr err = GERR_INIT;
	cr_assert_eq(spawn_run(&o, out, &errb, &status, &err), 0, "%s", err.msg);
	buf_release(&errb);
	return status;
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/gpuctl-kh-XXXXXX");
	cr_assert(mkdtemp(d));
	return d;
}

static void rmtree(const char *d)
{
	const char *argv[] = { "rm", "-rf", d, NULL };
	struct buf out = BUF_INIT;
	run(argv, &out);
	buf_release(&out);
}

static char *slurp(const char *path)
{
	struct buf b = BUF_INIT;
	struct gerr err = GERR_INIT;
	cr_assert_eq(buf_read_file(&b, path, 1 << 20, &err), 0, "%s", err.msg);
	return buf_detach(&b);
}

Test(knownhosts, entries_hashed_by_ssh_keygen_are_found)
{
	char *d = tmpdir();
	char *f = NULL;
	f = xasprintf("%s/known_hosts", d);
	FILE *fp = fopen(f, "w");
	fprintf(fp, "node1 ecdsa-sha2-nistp256 %s\n[node1]:2222 ssh-ed25519 %s\n", ECDSA, ED_A);
	fclose(fp);
	const char *argv[] = { "ssh-keygen", "-q", "-H", "-f", f, NULL };
	struct buf out = BUF_INIT;
	cr_assert_eq(run(argv, &out), 0, "ssh-keygen -H: %s", out.s);
	char *kh = slurp(f);
	cr_assert(!strstr(kh, "node1"), "not hashed: %s", kh);
	cr_assert_eq(check(kh, "node1", 22, ECDSA, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "NODE1", 22, ECDSA, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(kh, "node1", 2222, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	char *rec = NULL;
	cr_assert_eq(check(kh, "node1", 22, ED_A, NULL, &rec), KNOWNHOSTS_CHANGED);
	cr_assert_str_eq(rec, "ecdsa-sha2-nistp256");
	cr_assert_eq(check(kh, "node2", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	free(rec);
	free(kh);
	buf_release(&out);
	rmtree(d);
	free(f);
	free(d);
}

static void b64(const char *s, size_t n, unsigned char *out, size_t *outn)
{
	int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	cr_assert(r > 0);
	*outn = (size_t)r - (s[n - 1] == '=') - (s[n - 2] == '=');
}

/* "|1|salt|hmac TYPE KEY\n": HMAC-SHA1 keyed by the salt over the name */
static void assert_hashed(const char *line, const char *name, const char *type_key)
{
	cr_assert(!strncmp(line, "|1|", 3), "%s", line);
	const char *salt = line + 3, *bar = strchr(salt, '|'), *sp = strchr(salt, ' ');
	cr_assert(bar && sp && bar < sp, "%s", line);
	unsigned char s[64], h[64], mac[EVP_MAX_MD_SIZE];
	size_t sn = 0, hn = 0;
	unsigned mn = 0;
	b64(salt, (size_t)(bar - salt), s, &sn);
	b64(bar + 1, (size_t)(sp - bar - 1), h, &hn);
	cr_assert_eq(sn, 20);
	cr_assert_eq(hn, 20);
	HMAC(EVP_sha1(), s, (int)sn, (const unsigned char *)name, strlen(name), mac, &mn);
	cr_assert(mn == 20 && !memcmp(mac, h, 20), "HMAC-SHA1 of %s differs: %s", name, line);
	cr_assert(!strncmp(sp + 1, type_key, strlen(type_key)) && !strcmp(sp + 1 + strlen(type_key), "\n"), "%s", line);
}

Test(knownhosts, hashed_lines_as_openssh_writes_them)
{
	struct blob k = key(ED_A);
	unsigned char salt[20];
	memset(salt, 7, sizeof(salt));
	char *l22 = knownhosts_hashed_line("Node1", 22, k.b, k.n, salt);
	assert_hashed(l22, "node1", "ssh-ed25519 " ED_A);
	char *l2222 = knownhosts_hashed_line("node1", 2222, k.b, k.n, NULL);
	assert_hashed(l2222, "[node1]:2222", "ssh-ed25519 " ED_A);
	char *again = knownhosts_hashed_line("node1", 2222, k.b, k.n, NULL);
	cr_assert_str_neq(l2222, again, "the salt is random");
	cr_assert_eq(check(l22, "node1", 22, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(l2222, "node1", 2222, ED_A, NULL, NULL), KNOWNHOSTS_MATCH);
	cr_assert_eq(check(l2222, "node1", 22, ED_A, NULL, NULL), KNOWNHOSTS_UNKNOWN);
	cr_assert_null(knownhosts_hashed_line("node1", 22, (const unsigned char *)"junk", 4, NULL));
	free(l22);
	free(l2222);
	free(again);
}

Test(knownhosts, appended_entries_are_0600_one_line_and_found_by_ssh_keygen)
{
	char *d = tmpdir();
	char *f = NULL;
	f = xasprintf("%s/known_hosts", d);
	struct blob a = key(ED_A), e = key(ECDSA);
	char *l1 = knownhosts_hashed_line("node1", 22, a.b, a.n, NULL);
	char *l2 = knownhosts_hashed_line("10.0.0.2", 2222, e.b, e.n, NULL);
	struct gerr err = GERR_INIT;
	mode_t old = umask(022);
	cr_assert_eq(knownhosts_append(f, l1, &err), 0, "%s", err.msg);
	umask(old);
	struct stat st;
	cr_assert_eq(stat(f, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	/* a hand-edited last line without its newline */
	int fd = open(f, O_WRONLY | O_APPEND);
	cr_assert(write(fd, "# no newline", 12) == 12);
	close(fd);
	cr_assert_eq(knownhosts_append(f, l2, &err), 0, "%s", err.msg);
	char *text = slurp(f);
	struct buf want = BUF_INIT;
	buf_addf(&want, "%s# no newline\n%s", l1, l2);
	cr_assert_str_eq(text, want.s);
	const char *f1[] = { "ssh-keygen", "-F", "node1", "-f", f, NULL };
	const char *f2[] = { "ssh-keygen", "-F", "[10.0.0.2]:2222", "-f", f, NULL };
	const char *f3[] = { "ssh-keygen", "-F", "node2", "-f", f, NULL };
	struct buf out = BUF_INIT;
	cr_assert_eq(run(f1, &out), 0, "ssh-keygen -F node1: %s", out.s);
	cr_assert(strstr(out.s, "found: line 1"), "%s", out.s);
	buf_reset(&out);
	cr_assert_eq(run(f2, &out), 0, "ssh-keygen -F [10.0.0.2]:2222: %s", out.s);
	cr_assert(strstr(out.s, "found: line 3"), "%s", out.s);
	buf_reset(&out);
	cr_assert_neq(run(f3, &out), 0);
	char *missing = NULL;
	missing = xasprintf("%s/no/such/dir/known_hosts", d);
	cr_assert_eq(knownhosts_append(missing, l1, &err), -1);
	cr_assert_eq(err.code, GERR_IO);
	cr_assert(strstr(err.msg, missing), "%s", err.msg);
	gerr_clear(&err);
	free(missing);
	buf_release(&out);
	buf_release(&want);
	free(text);
	free(l1);
	free(l2);
	rmtree(d);
	free(f);
	free(d);
}

Test(knownhosts, host_key_algorithms_put_recorded_types_first)
{
	const char *all[] = { "ssh-dss", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512", "ecdsa-sha2-nistp256",
			      "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-ed25519" };
	size_t n = sizeof(all) / sizeof(all[0]);
	static const struct {
		const char *recorded, *want;
	} cases[] = {
		{ NULL, "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
		{ "ecdsa-sha2-nistp256",
		  "ecdsa-sha2-nistp256,ssh-ed25519,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
		{ "ssh-rsa",
		  "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521" },
		{ "ssh-rsa,ssh-ed25519",
		  "ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521" },
		{ "ssh-dss", "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = ssh_hostkey_order(all, n, cases[i].recorded);
		cr_expect_str_eq(got, cases[i].want, "recorded %s", cases[i].recorded ? cases[i].recorded : "(none)");
		free(got);
	}
	const char *some[] = { "ssh-ed25519", "ecdsa-sha2-nistp256" };
	char *got = ssh_hostkey_order(some, 2, "ecdsa-sha2-nistp256");
	cr_assert_str_eq(got, "ecdsa-sha2-nistp256,ssh-ed25519", "only what this libssh2 supports");
	free(got);
}
