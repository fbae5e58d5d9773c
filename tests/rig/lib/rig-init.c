/*
 * rig-init: pid 1 of a simulated node's PID namespace (gpuctl tests/rig).
 *
 * Daemons on a node (sshd, containerd started by the systemctl stand-in, the
 * shims) detach from whoever started them; their orphans are reparented to
 * this process, which reaps them so that no zombie is left behind. It exits
 * on SIGTERM, SIGINT or SIGHUP; the kernel then kills every process of the
 * node's PID namespace. Built by tests/rig/up into the rig's cache.
 */
#include <signal.h>
#include <sys/wait.h>

int main(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, 0);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGCHLD) {
			while (waitpid(-1, 0, WNOHANG) > 0)
				;
		} else {
			return 0;
		}
	}
}
