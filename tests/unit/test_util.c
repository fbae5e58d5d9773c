/* The small helpers that exist once: base64, the clock, string vectors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/util.h"

Test(util, base64_round_trip_and_rfc4648_vectors)
{
	static const struct { const char *raw, *pad, *nopad; } v[] = {
		{ "", "", "" }, { "f", "Zg==", "Zg" }, { "fo", "Zm8=", "Zm8" }, { "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" }, { "fooba", "Zm9vYmE=", "Zm9vYmE" }, { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct buf e = BUF_INIT, d = BUF_INIT;
		base64_encode(v[i].raw, strlen(v[i].raw), 1, &e);
		cr_assert_str_eq(e.s, v[i].pad);
		buf_reset(&e);
		base64_encode(v[i].raw, strlen(v[i].raw), 0, &e);
		cr_assert_str_eq(e.s, v[i].nopad);
		cr_assert_eq(base64_decode(v[i].pad, &d), 0);
		cr_assert_eq(d.len, strlen(v[i].raw));
		cr_assert(!memcmp(d.s, v[i].raw, d.len));
		buf_reset(&d);
		cr_assert_eq(base64_decode(v[i].nopad, &d), 0, "padding is optional");
		cr_assert_eq(d.len, strlen(v[i].raw));
		buf_release(&e);
		buf_release(&d);
	}
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	struct buf e = BUF_INIT, d = BUF_INIT;
	base64_encode(all, sizeof(all), 1, &e);
	cr_assert_eq(base64_decode(e.s, &d), 0);
	cr_assert_eq(d.len, sizeof(all));
	cr_assert(!memcmp(d.s, all, sizeof(all)));
	buf_release(&e);
	buf_release(&d);
}

Test(util, base64_rejects_what_is_not_base64)
{
	static const char *const bad[] = { "Zm9v!", "Zg==Zg", "Z", "Zm9vY", "====", "Zg===" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf d = BUF_INIT;
		cr_assert_eq(base64_decode(bad[i], &d), -1, "\"%s\" accepted", bad[i]);
		buf_release(&d);
	}
	struct buf d = BUF_INIT;
	cr_assert_eq(base64_decode("Zm9v\n YmFy\r\n", &d), 0, "whitespace (PEM line breaks) is ignored");
	cr_assert_str_eq(d.s, "foobar");
	buf_reset(&d);
	cr_assert_eq(base64_decode("-_-_", &d), 0, "the URL alphabet is accepted");
	buf_release(&d);
}

Test(util, clock_and_strv)
{
	long a = mono_ms();
	double s = mono_s();
	cr_assert_geq(mono_ms(), a);
	cr_assert_geq(mono_s(), s);
	char **v = NULL;
	cr_assert_eq(strv_len(v), 0);
	v = strv_add(v, "a");
	v = strv_add(v, "b");
	cr_assert_eq(strv_len(v), 2);
	cr_assert(strv_has(v, "b"));
	cr_assert_not(strv_has(v, "c"));
	cr_assert_null(v[2]);
	strv_free(v);
	strv_free(NULL);
}

/* ---- the string pool ---- */

#include "gpuctl/strpool.h"

Test(strpool, equal_strings_share_one_copy_that_stays_put)
{
	struct strpool *p = strpool_new();
	char name[32];
	const char *first[3000];
	/* enough strings for the index to grow several times and the blocks to fill */
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "gpu-node-%05d", i);
		first[i] = strpool_intern(p, name);
		cr_assert_str_eq(first[i], name);
		cr_assert_neq(first[i], name);
	}
	cr_assert_eq(strpool_count(p), 3000);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "gpu-node-%05d", i);
		cr_assert_eq(strpool_intern(p, name), first[i], "%s moved or was copied twice", name);
	}
	cr_assert_eq(strpool_count(p), 3000);
	/* a prefix, the empty string, n bytes of a longer text, NULL */
	const char *pre = strpool_intern(p, "gpu-node-0000");
	cr_assert_neq(pre, first[0]);
	cr_assert_str_eq(pre, "gpu-node-0000");
	cr_assert_eq(strpool_intern_n(p, "gpu-node-00001 and more", 14), first[1]);
	cr_assert_str_eq(strpool_intern(p, ""), "");
	cr_assert_null(strpool_intern(p, NULL));
	/* a string larger than a block */
	struct buf big = BUF_INIT;
	for (int i = 0; i < 20000; i++)
		buf_addc(&big, (char)('a' + i % 26));
	const char *b1 = strpool_intern(p, big.s);
	cr_assert_str_eq(b1, big.s);
	cr_assert_eq(strpool_intern(p, big.s), b1);
	/* the small ones still go where they went */
	cr_assert_eq(strpool_intern(p, "gpu-node-02999"), first[2999]);
	cr_assert_str_eq(strpool_intern(p, "after the big one"), "after the big one");
	/* what it takes: the bytes of the distinct strings, not an allocation each */
	cr_assert_lt(strpool_bytes(p), 3000 * 16 + 20000 + 64 * 1024 + 8192 * sizeof(char *) + 4096);
	buf_release(&big);
	strpool_free(p);
	strpool_free(NULL);
}

#include <stdlib.h>
#include "gpuctl/json.h"

/* doc after the patch, compact, or "(failed)" */
static char *apply(const char *doc, const char *patch)
{
	cJSON *d = cJSON_Parse(doc), *p = cJSON_Parse(patch);
	cr_assert(d && p, "bad test JSON");
	char *out = json_patch_apply(d, p) == 0 ? cJSON_PrintUnformatted(d) : strdup("(failed)");
	cJSON_Delete(d);
	cJSON_Delete(p);
	return out;
}

static void expect_apply(const char *doc, const char *patch, const char *want)
{
	char *got = apply(doc, patch);
	cr_expect_str_eq(got, want, "%s on %s", patch, doc);
	free(got);
}

Test(json, patch_apply_as_rfc6902_on_object_members)
{
	/* add a new member, replace one by add, pointer escapes ~1 and ~0 */
	expect_apply("{\"m\":{\"a\":\"1\"}}",
		     "[{\"op\":\"add\",\"path\":\"/m/b~1c\",\"value\":\"2\"},{\"op\":\"add\",\"path\":\"/m/a\",\"value\":\"x\"},"
		     "{\"op\":\"add\",\"path\":\"/m/t~0k\",\"value\":{}}]",
		     "{\"m\":{\"a\":\"x\",\"b/c\":\"2\",\"t~k\":{}}}");
	/* a test that holds, then replace and remove; the operations apply in order */
	expect_apply("{\"s\":{\"t\":[1,2]},\"x\":1}",
		     "[{\"op\":\"test\",\"path\":\"/s/t\",\"value\":[1,2]},{\"op\":\"replace\",\"path\":\"/s/t\",\"value\":[3]},"
		     "{\"op\":\"remove\",\"path\":\"/x\"},{\"op\":\"add\",\"path\":\"/n\",\"value\":{}},"
		     "{\"op\":\"add\",\"path\":\"/n/k\",\"value\":\"v\"}]",
		     "{\"s\":{\"t\":[3]},\"n\":{\"k\":\"v\"}}");
	/* what the server refuses is refused: a failed test, remove or replace
	 * of what is not there, a member under a missing object, an unknown op */
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":\"2\"}]", "(failed)");
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"test\",\"path\":\"/b\",\"value\":\"1\"}]", "(failed)");
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"remove\",\"path\":\"/b\"}]", "(failed)");
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":1}]", "(failed)");
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"add\",\"path\":\"/m/k\",\"value\":1}]", "(failed)");
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]", "(failed)");
	expect_apply("{\"a\":\"1\"}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", "(failed)");
}
