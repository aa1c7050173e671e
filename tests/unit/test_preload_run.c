/* test_preload_run.c -- `heapsnap run` (analyze/cmd_run.c): the program runs with the
 * tracking library preloaded and its options, with its exit status and signal death
 * passed through; usage errors give 2. cmd_run execs, so it is called in a child. */
#include "test_preload_util.h"

int cmd_run(int argc, char **argv);

/* run cmd_run(args) in a child with extra environment; returns the raw wait status */
static int run_child(char **args, const char *out, const char *const *env)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setenv("HEAPSNAP_PRELOAD", g_lib, 1);
		for (int i = 0; env && env[i]; i += 2)
			setenv(env[i], env[i + 1], 1);
		int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		if (!out)
			dup2(fd, 2);
		int argc = 0;
		while (args[argc])
			argc++;
		_exit(cmd_run(argc, args));
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

int main(void)
{
	(void)check_failures;
	tp_setup();
	char fx[4400];
	snprintf(fx, sizeof fx, "%s/fx_track_calls", g_fx);
	const char *dump = tp_path("run.dump");
	/* a fixture under the library: its own dump shows the tracked sites */
	char *a1[] = { "run", "--depth", "32", "--", fx, (char *)dump, NULL };
	int st = run_child(a1, NULL, NULL);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	const char *own[] = { "fx_track_calls", NULL };
	struct tp_dump d = tp_load(dump, own);
	CHECK_EQ(tp_header(&d, "depth"), 32);
	EXPECT_SITE(&d, "c_alloc<b_two<a_path<main", 20, 4000);
	/* --sample reaches the library */
	char *a2[] = { "run", "--sample", "4096", fx, (char *)dump, NULL };
	st = run_child(a2, NULL, NULL);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	d = tp_load(dump, own);
	CHECK_EQ(tp_header(&d, "sample"), 4096);
	/* LD_PRELOAD: ours first, an existing one kept */
	const char *out = tp_path("run.out");
	char *a3[] = { "run", "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD\"", NULL };
	const char *env3[] = { "LD_PRELOAD", "libc.so.6", NULL };
	st = run_child(a3, out, env3);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char want[8400];
	snprintf(want, sizeof want, "%s:libc.so.6\n", g_lib);
	CHECK_STR(tp_slurp(out), want);
	/* exit status and signal death pass through */
	char *a4[] = { "run", "--", "/bin/sh", "-c", "exit 7", NULL };
	st = run_child(a4, NULL, NULL);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
	char *a5[] = { "run", "--", "/bin/sh", "-c", "kill -TERM $$", NULL };
	st = run_child(a5, NULL, NULL);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	/* errors */
	char *a6[] = { "run", "--", "/nonexistent/prog", NULL };
	st = run_child(a6, NULL, NULL);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 127);
	char *a7[] = { "run", "--bogus", "--", "/bin/true", NULL };
	CHECK_EQ(cmd_run(4, a7), 2);
	char *a8[] = { "run", "--depth", "0", "--", "/bin/true", NULL };
	CHECK_EQ(cmd_run(5, a8), 2);
	char *a9[] = { "run", NULL };
	CHECK_EQ(cmd_run(1, a9), 2);
	tp_cleanup();
	return 0;
}
