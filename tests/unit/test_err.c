/* The error type: context chain, hint, codes and the one exit-status rule. */
#include <criterion/criterion.h>
#include <string.h>

#include "gpuctl/err.h"

Test(err, context_chain_keeps_cause_and_hint)
{
	struct gerr e = GERR_INIT;
	gerr_set(&e, GERR_SSH_COMMAND, "restart failed: exit %d", 1);
	gerr_hint(&e, "look at journalctl -u %s", "containerd");
	gerr_prefix(&e, "containerd");
	gerr_prefix(&e, "node %s", "gpu-1");
	cr_assert_str_eq(e.msg, "node gpu-1: containerd: restart failed: exit 1");
	cr_assert_str_eq(gerr_cause(&e), "restart failed: exit 1");
	cr_assert_str_eq(e.hint, "look at journalctl -u containerd");
	cr_assert_null(strchr(e.msg, '\n'), "the hint is never glued into the message");
	struct gerr c = GERR_INIT;
	gerr_copy(&c, &e);
	gerr_clear(&e);
	cr_assert_str_eq(c.hint, "look at journalctl -u containerd");
	cr_assert_eq(c.code, GERR_SSH_COMMAND);
	gerr_clear(&c);
	cr_assert_null(c.msg);
	cr_assert_null(c.hint);
}

Test(err, set_replaces_an_old_hint)
{
	struct gerr e = GERR_INIT;
	gerr_set(&e, GERR_IO, "first");
	gerr_hint(&e, "old advice");
	gerr_set(&e, GERR_PARSE, "second");
	cr_assert_null(e.hint);
	cr_assert_str_eq(e.msg, "second");
	gerr_clear(&e);
}

Test(err, ssh_failures_have_their_own_reasons)
{
	cr_assert_str_eq(gerr_code_name(GERR_HOSTKEY_CHANGED), "hostkey-changed");
	cr_assert_str_eq(gerr_code_name(GERR_HOSTKEY_UNKNOWN), "hostkey-unknown");
	cr_assert_str_eq(gerr_code_name(GERR_SSH_AUTH), "ssh-auth");
	cr_assert_str_eq(gerr_code_name(GERR_SSH_COMMAND), "command-failed");
	cr_assert_str_eq(gerr_code_name(GERR_SSH_CONN), "unreachable");
	cr_assert_str_eq(gerr_code_name(GERR_SSH_TIMEOUT), "timeout");
	for (int c = 0; c < GERR_CODE_COUNT; c++)
		cr_assert_str_neq(gerr_code_name((enum gerr_code)c), "unknown", "code %d has no name", c);
}

Test(err, exit_status_rule)
{
	struct gerr e = GERR_INIT;
	cr_assert_eq(gerr_exit_status(NULL, 0), 0);
	cr_assert_eq(gerr_exit_status(&e, 0), 0);
	cr_assert_eq(gerr_exit_status(&e, 2), 1);
	gerr_set(&e, GERR_USAGE, "bad flag");
	cr_assert_eq(gerr_exit_status(&e, 5), 2);
	gerr_set(&e, GERR_FORBIDDEN, "nodes is forbidden");
	cr_assert_eq(gerr_exit_status(&e, 0), 3);
	/* a node's host key or login is not the cluster refusing us */
	static const enum gerr_code node_codes[] = { GERR_SSH_CONN, GERR_SSH_TIMEOUT, GERR_HOSTKEY_UNKNOWN,
						     GERR_HOSTKEY_CHANGED, GERR_SSH_AUTH, GERR_SSH_COMMAND };
	for (size_t i = 0; i < sizeof(node_codes) / sizeof(node_codes[0]); i++) {
		gerr_set(&e, node_codes[i], "x");
		cr_assert(gerr_is_ssh(&e));
		cr_assert_not(gerr_is_cluster_access(&e));
		cr_assert_eq(gerr_exit_status(&e, 0), 1);
	}
	gerr_set(&e, GERR_INTERRUPTED, "interrupted");
	cr_assert_eq(gerr_exit_status(&e, 0), 1);
	gerr_clear(&e);
}
