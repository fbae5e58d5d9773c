/* Interrupt handling: the handler only records the signal (and, from the
 * second one on, says with write(2) that gpuctl is finishing safely). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "gpuctl/sig.h"

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t count;

static void on_signal(int signo)
{
	int saved = errno;
	if (!got_signal)
		got_signal = signo;
	if (count < 1000)
		count++;
	if (count >= 2) {
		static const char msg[] =
			"\ngpuctl: interrupted again: finishing the node changes in flight safely (verified or restored), then stopping\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
	}
	errno = saved;
}

void sig_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART; /* blocking reads and writes go on; the flag is checked between steps */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	struct sigaction ign;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
}

int sig_interrupted(void)
{
	return got_signal;
}

int sig_count(void)
{
	return count;
}

const char *sig_name(int signo)
{
	switch (signo) {
	case SIGINT: return "SIGINT";
	case SIGTERM: return "SIGTERM";
	case SIGHUP: return "SIGHUP";
	case 0: return "";
	default: return "a signal";
	}
}

void sig_raise_for_test(int signo)
{
	got_signal = signo;
	count = signo ? 1 : 0;
}
