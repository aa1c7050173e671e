/* test_preload_util.h -- helpers for the tracking-library tests (test_preload_*.c): find
 * the build's libheapsnap_preload.so and fixtures, run a fixture under it with a time
 * limit, parse its dump (format in capture/preload/hp_dump.c) and name the frames with
 * libdw, by function and by file:line, as the capture will. */
#ifndef TEST_PRELOAD_UTIL_H
#define TEST_PRELOAD_UTIL_H
#define _GNU_SOURCE
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char g_build[4096], g_lib[4200], g_fx[4200], g_tmp[256];

struct tp_mod {
	char *path;
	Dwfl *dwfl;
	Dwfl_Module *m;
	GElf_Addr base;
};
static struct tp_mod g_mods[64];
static int g_nmods;

/* everything the helpers allocate is released by tp_cleanup() (LeakSanitizer runs) */
static void **g_keep;
static size_t g_nkeep, g_capkeep;
static void *tp_keep(void *p)
{
	if (g_nkeep == g_capkeep) {
		g_capkeep = g_capkeep ? 2 * g_capkeep : 256;
		g_keep = realloc(g_keep, g_capkeep * sizeof *g_keep);
		CHECK(g_keep != NULL);
	}
	g_keep[g_nkeep++] = p;
	return p;
}
static char *tp_strdup(const char *s)
{
	return tp_keep(strdup(s));
}

/* build dir = three levels above this test binary (<build>/tests/unit/test_x) */
static __attribute__((unused)) void tp_setup(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(n > 0);
	exe[n] = 0;
	snprintf(g_build, sizeof g_build, "%s", dirname(dirname(dirname(exe))));
	const char *env = getenv("HEAPSNAP_PRELOAD");
	snprintf(g_lib, sizeof g_lib, "%s", env ? env : "");
	if (!env)
		snprintf(g_lib, sizeof g_lib, "%s/libheapsnap_preload.so", g_build);
	snprintf(g_fx, sizeof g_fx, "%s/tests/fixtures", g_build);
	if (access(g_lib, R_OK) != 0)
		SKIP("libheapsnap_preload.so not built");
	snprintf(g_tmp, sizeof g_tmp, "/tmp/hp_test.XXXXXX");
	CHECK(mkdtemp(g_tmp) != NULL);
}

static __attribute__((unused)) void tp_cleanup(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", g_tmp);
	for (int i = 0; i < g_nmods; i++)
		if (g_mods[i].dwfl)
			dwfl_end(g_mods[i].dwfl);
	g_nmods = 0;
	for (size_t i = 0; i < g_nkeep; i++)
		free(g_keep[i]);
	free(g_keep);
	g_keep = NULL;
	g_nkeep = g_capkeep = 0;
}

/* Run fixture NAME with args (NULL-terminated) and extra "K=V" environment (NULL-
 * terminated; "LD_PRELOAD" alone means the library). stdout/stderr go to the files
 * given (or /dev/null). Returns the exit status (128+sig for a signal, -1 on timeout). */
static __attribute__((unused)) int tp_run(const char *name, const char *const *args, const char *const *env,
		  const char *out, const char *err, int timeout_s)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", g_fx, name);
	if (access(path, X_OK) != 0) {
		fprintf(stderr, "fixture %s not built\n", path);
		exit(1);
	}
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		for (int i = 0; env && env[i]; i++) {
			if (!strcmp(env[i], "LD_PRELOAD")) {
				setenv("LD_PRELOAD", g_lib, 1);
			} else {
				char kv[4096];
				snprintf(kv, sizeof kv, "%s", env[i]);
				char *eq = strchr(kv, '=');
				if (eq) {
					*eq = 0;
					setenv(kv, eq + 1, 1);
				}
			}
		}
		int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fo, 1);
		dup2(fe, 2);
		char *argv[32];
		int k = 0;
		argv[k++] = path;
		for (int i = 0; args && args[i] && k < 31; i++)
			argv[k++] = (char *)args[i];
		argv[k] = NULL;
		execv(path, argv);
		_exit(127);
	}
	setpgid(pid, pid);
	int status;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > timeout_s) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "fixture %s timed out\n", name);
			return -1;
		}
		usleep(2000);
	}
	kill(-pid, SIGKILL);                 /* any child it left behind */
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- dumps ---- */
#define TP_MAXF 64
struct tp_line {
	long count, bytes;
	unsigned id;
	int n;
	char *mod[TP_MAXF];
	uint64_t off[TP_MAXF];
	char *key;           /* function chain of the fixture's own frames, innermost first */
	char *site;          /* file:line of the innermost fixture frame */
};
struct tp_dump {
	char header[1024];
	struct tp_line *l;
	int n;
};

static __attribute__((unused)) long tp_header(const struct tp_dump *d, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, " %s=", key);
	const char *p = strstr(d->header, pat);
	CHECK(p != NULL);
	return atol(p + strlen(pat));
}

/* ---- symbols ---- */
static __attribute__((unused)) struct tp_mod *tp_mod(const char *path)
{
	for (int i = 0; i < g_nmods; i++)
		if (!strcmp(g_mods[i].path, path))
			return &g_mods[i];
	static char *debuginfo_path;
	static const Dwfl_Callbacks cb = {
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &debuginfo_path,
	};
	CHECK(g_nmods < 64);
	struct tp_mod *m = &g_mods[g_nmods++];
	m->path = tp_strdup(path);
	m->dwfl = dwfl_begin(&cb);
	m->m = m->dwfl ? dwfl_report_offline(m->dwfl, path, path, -1) : NULL;
	dwfl_report_end(m->dwfl, NULL, NULL);
	m->base = 0;
	if (m->m) {
		/* offline modules are placed at some address: map ELF vaddrs through the bias */
		GElf_Addr bias;
		if (dwfl_module_getelf(m->m, &bias))
			m->base = bias;
	}
	return m;
}

/* function name and file:line of the call before return address `off` (ELF vaddr) */
static __attribute__((unused)) const char *tp_sym(const char *path, uint64_t off, char *fileline, size_t fl_len)
{
	struct tp_mod *m = tp_mod(path);
	if (fileline)
		fileline[0] = 0;
	if (!m->m)
		return NULL;
	GElf_Addr a = m->base + off - 1;
	const char *name = dwfl_module_addrname(m->m, a);
	Dwfl_Line *ln = dwfl_module_getsrc(m->m, a);
	if (ln && fileline) {
		int line = 0;
		const char *file = dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL);
		if (file)
			snprintf(fileline, fl_len, "%s:%d", file, line);
	}
	return name;
}

/* Parse a dump; `own` lists the module path substrings whose frames make the key. */
static __attribute__((unused)) struct tp_dump tp_load(const char *file, const char *const *own)
{
	struct tp_dump d = { .n = 0 };
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "no dump %s\n", file);
		exit(1);
	}
	char *line = NULL;
	size_t cap = 0;
	CHECK(getline(&line, &cap, f) > 0);
	snprintf(d.header, sizeof d.header, "%s", line);
	CHECK(!strncmp(d.header, "# heapsnap-preload-dump 1", 25));
	int capl = 0;
	d.l = NULL;
	while (getline(&line, &cap, f) > 0) {
		if (d.n == capl) {
			capl = capl ? 2 * capl : 64;
			d.l = realloc(d.l, (size_t)capl * sizeof *d.l);
			CHECK(d.l != NULL);
		}
		struct tp_line *l = &d.l[d.n++];
		memset(l, 0, sizeof *l);
		char *save, *tok = strtok_r(line, " \n", &save);
		l->count = atol(tok);
		l->bytes = atol(strtok_r(NULL, " \n", &save));
		l->id = (unsigned)atol(strtok_r(NULL, " \n", &save));
		char key[4096] = "";
		while ((tok = strtok_r(NULL, " \n", &save)) && l->n < TP_MAXF) {
			char *colon = strrchr(tok, ':');
			CHECK(colon != NULL);
			*colon = 0;
			l->mod[l->n] = tp_strdup(tok);
			l->off[l->n] = strtoull(colon + 1, NULL, 16);
			int mine = 0;
			for (int i = 0; own && own[i]; i++)
				mine |= strstr(tok, own[i]) != NULL;
			if (mine) {
				char fl[1024];
				const char *fn = tp_sym(tok, l->off[l->n], fl, sizeof fl);
				if (fn && !strcmp(fn, "_start")) {    /* the C runtime, not the fixture */
					l->n++;
					continue;
				}
				if (!l->site && fl[0])
					l->site = tp_strdup(fl);
				if (key[0])
					strncat(key, "<", sizeof key - strlen(key) - 1);
				strncat(key, fn ? fn : "?", sizeof key - strlen(key) - 1);
			}
			l->n++;
		}
		l->key = tp_strdup(key);
	}
	free(line);
	fclose(f);
	tp_keep(d.l);
	return d;
}

/* totals over the lines with this key */
static __attribute__((unused)) void tp_sum(const struct tp_dump *d, const char *key, long *count, long *bytes)
{
	*count = *bytes = 0;
	for (int i = 0; i < d->n; i++)
		if (!strcmp(d->l[i].key, key)) {
			*count += d->l[i].count;
			*bytes += d->l[i].bytes;
		}
}

#define EXPECT_SITE(d, key, c, b) do { long c_, b_; tp_sum(d, key, &c_, &b_); \
	if (c_ != (c) || b_ != (b)) { fprintf(stderr, "%s:%d: site %s: %ld blocks %ld bytes, " \
		"expected %ld %ld\n", __FILE__, __LINE__, key, c_, b_, (long)(c), (long)(b)); \
		tp_print(d); exit(1); } } while (0)

static __attribute__((unused)) void tp_print(const struct tp_dump *d)
{
	fprintf(stderr, "%s", d->header);
	for (int i = 0; i < d->n; i++)
		fprintf(stderr, "  %ld %ld %s (%s)\n", d->l[i].count, d->l[i].bytes, d->l[i].key,
			d->l[i].site ? d->l[i].site : "");
}

static __attribute__((unused)) char *tp_path(const char *name)
{
	static char buf[8][4400];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 4400, "%s/%s", g_tmp, name);
	return p;
}

static __attribute__((unused)) char *tp_slurp(const char *file)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return tp_strdup("");
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return tp_strdup(buf);
}
#endif
