#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gpuctl/spawn.h"
#include "gpuctl/util.h"

extern char **environ;

static int env_removed(const char *var, const char *const *remove)
{
	const char *eq = strchr(var, '=');
	size_t nl = eq ? (size_t)(eq - var) : strlen(var);
	char name[256];
	if (!remove || nl >= sizeof(name))
		return 0;
	memcpy(name, var, nl);
	name[nl] = '\0';
	for (size_t i = 0; remove[i]; i++)
		if (!fnmatch(remove[i], name, 0))
			return 1;
	return 0;
}

/* Build environ (less the removed names) + extras, extras overriding
 * variables of the same name. */
static char **build_env(const char *const *extra, const char *const *remove)
{
	size_t n = 0, m = 0;
	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	char **env = xcalloc(n + m + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		int overridden = 0;
		for (size_t j = 0; j < m; j++)
			if (!strncmp(extra[j], environ[i], nl) && extra[j][nl] == '=')
				overridden = 1;
		if (!overridden && !env_removed(environ[i], remove))
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

int spawn_run(const struct spawn_opts *o, struct buf *out, struct buf *err_out, int *status,
	      struct gerr *err)
{
	const char *prog = o->argv[0];
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	if (pipe2(outp, O_CLOEXEC) < 0)
		return gerr_set(err, GERR_IO, "pipe: %s", strerror(errno));
	if (!o->stderr_inherit && pipe2(errp, O_CLOEXEC) < 0) {
		close(outp[0]);
		close(outp[1]);
		return gerr_set(err, GERR_IO, "pipe: %s", strerror(errno));
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (!o->stdin_inherit)
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	if (!o->stderr_inherit)
		posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	char **env = build_env(o->env_extra, o->env_remove);
	pid_t pid;
	/* gpuctl ignores SIGPIPE and catches SIGINT/SIGTERM/SIGHUP: a plugin gets the defaults */
	posix_spawnattr_t sa;
	posix_spawnattr_init(&sa);
	sigset_t def;
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigdefault(&sa, &def);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF);
	int rc = posix_spawnp(&pid, prog, &fa, &sa, (char *const *)o->argv, env);
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(outp[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	if (rc != 0) {
		close(outp[0]);
		if (errp[0] >= 0)
			close(errp[0]);
		return gerr_set(err, rc == ENOENT ? GERR_NOTFOUND : GERR_IO, "cannot run %s: %s", prog,
				strerror(rc));
	}
	long deadline = o->timeout_ms > 0 ? mono_ms() + o->timeout_ms : 0;
	size_t max = o->max_output ? o->max_output : (1u << 20);
	struct pollfd pfd[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
	int nfd = errp[0] >= 0 ? 2 : 1;
	int open_fds = nfd, timed_out = 0, too_big = 0;
	while (open_fds > 0) {
		int wait = -1;
		if (deadline) {
			long left = deadline - mono_ms();
			if (left <= 0) {
				timed_out = 1;
				break;
			}
			wait = (int)left;
		}
		int pr = poll(pfd, (nfds_t)nfd, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			break;
		for (int i = 0; i < nfd; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char tmp[4096];
			ssize_t r = read(pfd[i].fd, tmp, sizeof(tmp));
			if (r <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			struct buf *dst = i == 0 ? out : err_out;
			if (dst && dst->len + (size_t)r <= max)
				buf_add(dst, tmp, (size_t)r);
			else if (i == 0)
				too_big = 1;
		}
	}
	for (int i = 0; i < nfd; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	int ws = 0;
	if (!timed_out && (deadline || o->exit_grace_ms > 0)) {
		/* Output closed: the child should exit now.  One that closed
		 * its output but keeps running must not hang us: wait at most
		 * exit_grace_ms (and never past the deadline). */
		long until = o->exit_grace_ms > 0 ? mono_ms() + o->exit_grace_ms : deadline;
		if (deadline && deadline < until)
			until = deadline;
		int grace_ended = until != deadline;
		for (;;) {
			pid_t w = waitpid(pid, &ws, WNOHANG);
			if (w == pid || (w < 0 && errno != EINTR))
				break;
			long left = until - mono_ms();
			if (left <= 0) {
				timed_out = grace_ended ? 2 : 1;
				break;
			}
			struct timespec pause = { 0, (left < 10 ? left : 10) * 1000000L };
			nanosleep(&pause, NULL);
		}
		if (!timed_out)
			goto reaped;
	}
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (timed_out == 2)
		return gerr_set(err, GERR_TIMEOUT, "%s closed its output but did not exit within %ld ms", prog,
				o->exit_grace_ms);
	if (timed_out)
		return gerr_set(err, GERR_TIMEOUT, "%s did not finish within %ld ms", prog, o->timeout_ms);
reaped:
	if (too_big)
		return gerr_set(err, GERR_IO, "%s printed more than %zu bytes", prog, max);
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	return 0;
}
