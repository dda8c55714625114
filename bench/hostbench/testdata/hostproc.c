/*
 * hostproc: the processes of the host benchmarks, run as a test user.
 *
 *   hostproc chains N setsid|- W   N processes: this one, and W chains
 *                               under it, in each of which every process
 *                               forks the next (with setsid, after calling
 *                               setsid()); the last ones wait.
 *   hostproc flood N BYTES      re-executes itself with an argv of BYTES
 *                               bytes, then forks N-1 children sharing it:
 *                               N processes named after the executable.
 *   hostproc measure CMD [ARG…] runs CMD (output to /dev/null) and prints
 *                               "WALL_NS MAXRSS_KB" of it. A child forked
 *                               from a small process: Go's os/exec execs
 *                               from the parent's address space (vfork), so
 *                               the child's ru_maxrss would start at the
 *                               benchmark's own.
 *
 * SIGTERM or SIGHUP ends them from the inside out: every process passes the
 * signal to its children and reaps them before it exits, so nothing is left
 * to a PID 1 that does not reap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static pid_t *kids;
static int nkids;

static void on_signal(int sig) {
	(void)sig;
	stop = 1;
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGTERM);
}

static void handle(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: waits return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void reap_all(void) {
	for (;;) {
		pid_t p = wait(NULL);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			return;
	}
}

/* A chain of n processes, this one first. */
static int chain(int n, int do_setsid) {
	static pid_t child;
	kids = &child;
	nkids = 0;
	handle();
	for (int i = 1; i < n; i++) {
		sigset_t all, old;
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, &old);
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			sigprocmask(SIG_SETMASK, &old, NULL);
			break;
		}
		if (p == 0) {
			nkids = 0;
			sigprocmask(SIG_SETMASK, &old, NULL);
			if (stop)
				_exit(0);
			if (do_setsid)
				setsid();
			continue;
		}
		child = p;
		nkids = 1;
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (stop)
			kill(p, SIGTERM);
		reap_all();
		_exit(0);
	}
	while (!stop)
		pause();
	reap_all();
	return 0;
}

/*
 * n processes: this one, and width chains under it, which grow side by
 * side (one chain of 10,000 grows a fork at a time, each waiting for the
 * scheduler: minutes on a loaded host).
 */
static int chains(int n, int do_setsid, int width) {
	kids = calloc(width, sizeof *kids);
	handle();
	int rem = n - 1;
	sigset_t all, old;
	sigfillset(&all);
	for (int b = 0; b < width && rem > 0 && !stop; b++) {
		int len = (rem + (width - b) - 1) / (width - b);
		sigprocmask(SIG_BLOCK, &all, &old);
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			sigprocmask(SIG_SETMASK, &old, NULL);
			break;
		}
		if (p == 0) {
			sigprocmask(SIG_SETMASK, &old, NULL);
			if (stop)
				_exit(0);
			if (do_setsid)
				setsid();
			_exit(chain(len, do_setsid));
		}
		kids[nkids++] = p;
		sigprocmask(SIG_SETMASK, &old, NULL);
		rem -= len;
	}
	if (stop)
		on_signal(SIGTERM);
	while (!stop)
		pause();
	reap_all();
	return 0;
}

static int flood(int n, long bytes, char *self) {
	(void)self;
	int chunk = 100000, args = (int)(bytes / chunk) + 1;
	char **av = calloc(args + 4, sizeof *av);
	char num[32];
	snprintf(num, sizeof num, "%d", n);
	av[0] = self;
	av[1] = "flooded";
	av[2] = num;
	for (int i = 0; i < args; i++) {
		int len = i == args - 1 ? (int)(bytes % chunk) : chunk;
		av[3 + i] = malloc(len + 1);
		memset(av[3 + i], 'A', len);
		av[3 + i][len] = 0;
	}
	/* the executable's own path, not /proc/self/exe: the kernel names
	 * the process (comm) after the file executed */
	static char path[4096];
	ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
	if (k <= 0) {
		perror("readlink");
		return 1;
	}
	path[k] = 0;
	execv(path, av);
	perror("execv");
	return 1;
}

static int flooded(int n) {
	kids = calloc(n, sizeof *kids);
	handle();
	sigset_t all, old;
	sigfillset(&all);
	for (int i = 1; i < n && !stop; i++) {
		/* blocked until the child is recorded, so a signal reaches it */
		sigprocmask(SIG_BLOCK, &all, &old);
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			sigprocmask(SIG_SETMASK, &old, NULL);
			break;
		}
		if (p == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			sigprocmask(SIG_SETMASK, &old, NULL);
			for (;;)
				pause();
		}
		kids[nkids++] = p;
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (stop)
		on_signal(SIGTERM);
	while (!stop)
		pause();
	reap_all();
	return 0;
}

static int measure(char **argv) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t p = fork();
	if (p < 0) {
		perror("fork");
		return 1;
	}
	if (p == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execvp(argv[0], argv);
		perror("execvp");
		_exit(127);
	}
	int status;
	struct rusage ru;
	while (wait4(p, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			perror("wait4");
			return 1;
		}
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: status %d\n", argv[0], status);
		return 1;
	}
	printf("%lld %ld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), ru.ru_maxrss);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 3 && strcmp(argv[1], "measure") == 0)
		return measure(argv + 2);
	if (argc >= 5 && strcmp(argv[1], "chains") == 0)
		return chains(atoi(argv[2]), strcmp(argv[3], "setsid") == 0, atoi(argv[4]));
	if (argc >= 4 && strcmp(argv[1], "flood") == 0)
		return flood(atoi(argv[2]), atol(argv[3]), argv[0]);
	if (argc >= 3 && strcmp(argv[1], "flooded") == 0)
		return flooded(atoi(argv[2]));
	fprintf(stderr, "usage: hostproc chains N setsid|- W | flood N BYTES | measure CMD...\n");
	return 2;
}
