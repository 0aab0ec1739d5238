/* SPDX-License-Identifier: MIT */
/*
 * Runs an application against ufo-servers on loopback, as a user would:
 * starts NSERVERS servers sharing one secret (tests/cluster/t_cluster.h),
 * exports UFO_SERVERS ("127.0.0.1:P1,...") and UFO_SECRET_FILE, runs the
 * command and passes when it exits 0.  The application checks its own
 * results (ufo-kmeans --check, test_numpy_sum.py); this program owns the
 * servers, the time limit and the skips.
 *
 *   t_apps_run NSERVERS [--probe SHELL-COMMAND] -- COMMAND [ARGS...]
 *
 * Exit 77 (skipped) without $UFO_SERVER or userfaultfd (t_cluster.h), when
 * the probe fails (its output says why: "mpirun cannot start processes
 * here"), or when the command itself exits 77.  The command runs in its own
 * process group, killed as a whole at the time limit, so that an mpirun
 * and its ranks never outlive the test.
 */
#include <sys/wait.h>

#include "../cluster/t_cluster.h"

#define T_APPS_LIMIT_S 240 /* below meson's timeout for the suite */

static unsigned nservers;
static const char *probe;
static char **command;
static pid_t command_pgid;

static void time_limit(int sig)
{
	static const char msg[] = "t_apps_run: time limit; killing the "
				  "command's process group\n";

	(void)sig;
	if (command_pgid > 0)
		kill(-command_pgid, SIGKILL);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* UFO_SERVERS: t_cluster_url's list without its scheme and name. */
static void export_servers(void)
{
	char list[T_URL_MAX * 2];
	const char *url = t_cluster_url(nservers, NULL);

	snprintf(list, sizeof(list), "%s", strstr(url, "://") + 3);
	list[strlen(list) - 1] = '\0';
	assert_int_equal(setenv("UFO_SERVERS", list, 1), 0);
	assert_int_equal(setenv("UFO_SECRET_FILE", t_srvs[0].secret, 1), 0);
	fprintf(stderr, "t_apps_run: UFO_SERVERS=%s\n", list);
}

static void skip_unless_probe_passes(void)
{
	int status;

	if (!probe)
		return;
	status = system(probe);
	if (status == 0)
		return;
	fprintf(stderr, "skip: the probe '%s' failed (status %#x): this "
		"machine cannot run the command\n", probe, status);
	exit(T_EXIT_SKIP);
}

/* Runs the command in a new process group; its wait status. */
static int run_command(void)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		execvp(command[0], command);
		fprintf(stderr, "t_apps_run: exec %s: %s\n", command[0],
			strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	command_pgid = pid;
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	command_pgid = 0;
	return status;
}

static void test_app(void **state)
{
	int status;

	(void)state;
	t_cluster_setup(nservers);
	signal(SIGALRM, time_limit);
	alarm(T_APPS_LIMIT_S);
	export_servers();
	skip_unless_probe_passes();
	status = run_command();
	if (WIFEXITED(status) && WEXITSTATUS(status) == T_EXIT_SKIP)
		exit(T_EXIT_SKIP);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "t_apps_run: %s %s %d\n", command[0],
			WIFEXITED(status) ? "exited with" : "killed by signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_app) };
	int i = 2;

	if (argc < 4 || !(nservers = (unsigned)atoi(argv[1])) ||
	    nservers > T_NSRV_MAX)
		goto usage;
	if (!strcmp(argv[i], "--probe") && i + 1 < argc) {
		probe = argv[i + 1];
		i += 2;
	}
	if (i >= argc - 1 || strcmp(argv[i], "--"))
		goto usage;
	command = argv + i + 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
usage:
	fprintf(stderr, "usage: t_apps_run NSERVERS [--probe CMD] -- COMMAND "
		"[ARGS...]\n");
	return 2;
}
