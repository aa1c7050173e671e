/* cmd_report.c -- `heapsnap report FILE [--diff BASE] [-o report.html]`: one self-contained
 * HTML page (web-report/report.html, compiled in) with the snapshot's figures in one JSON
 * blob. The blob is assembled from the --json output of the other commands (summary,
 * libs, threads, top, diff), run as child processes of this same executable, so the
 * page shows exactly what the commands print; their JSON already escapes < > & as \uXXXX,
 * so it is safe inside <script type="application/json">. Rows are capped (top 200 sites,
 * 40 frames per thread, 200 diff rows), so the page stays small for any heap.
 * The file is written 0600 to a temporary name and renamed into place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdline.h"
#include "commands.h"
#include "output.h"
#include "progress.h"
#include "snapshot.h"

extern const char hs_report_html[];
extern char **environ;

static const char report_usage[] =
	"usage: heapsnap report FILE [--diff BASE] [-o report.html]\n";

static const char report_help[] =
	"\n"
	"Write one self-contained HTML page about a snapshot: no network, no external script\n"
	"or font; it opens from disk in any modern browser and can be sent to a colleague.\n"
	"Views: overview (process, VIRT/RES/SHR, heap in use/free/fragmentation, consistency\n"
	"warnings), regions by kind, the library table, the allocation flame graph (icicle,\n"
	"click to zoom, search) and site table when the target was tracked, thread stacks,\n"
	"and with --diff the diff views (by site, born chunks, by module, by mapping kind).\n"
	"Rows are capped so the page stays small. Everything the target controls is escaped.\n"
	"\n"
	"  --diff BASE  also show what changed from snapshot BASE to FILE\n"
	"  -o PATH      output file (default: FILE with .html instead of .hsnap); written 0600\n"
	"  -h, --help   this help\n"
	"\n"
	"examples:\n"
	"  heapsnap report s.hsnap -o s.html && xdg-open s.html\n"
	"  heapsnap report evening.hsnap --diff morning.hsnap -o growth.html\n";

typedef struct {
	char *buf;
	size_t len, cap;
} rep_buf;

static int rep_put(rep_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(b->buf, cap);
		if (!p)
			return -1;
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = 0;
	return 0;
}

static int rep_puts(rep_buf *b, const char *s)
{
	return rep_put(b, s, strlen(s));
}

/* Run this executable with args; its stdout appended to out. Returns the exit status
 * (0 ok), or -1 if it could not run. stderr is discarded. */
static int rep_child(const char *self, char *const args[], rep_buf *out)
{
	int fd[2];
	if (pipe2(fd, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int r = posix_spawn(&pid, self, &fa, NULL, args, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fd[1]);
	if (r) {
		close(fd[0]);
		return -1;
	}
	char buf[65536];
	ssize_t n;
	int oom = 0;
	while ((n = read(fd[0], buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!oom && rep_put(out, buf, (size_t)n))
			oom = 1;
	}
	close(fd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (oom)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "key": <the command's JSON, or null> */
static int rep_member(rep_buf *b, const char *self, const char *key, char *const args[], int *first,
		      rep_buf *errors)
{
	rep_buf out = { 0 };
	int st = rep_child(self, args, &out);
	int r = 0;
	r |= rep_puts(b, *first ? "\n\"" : ",\n\"");
	*first = 0;
	r |= rep_puts(b, key);
	r |= rep_puts(b, "\": ");
	if (st == 0 && out.len)
		r |= rep_put(b, out.buf, out.len);
	else {
		r |= rep_puts(b, "null");
		/* expected to be missing: no tracking, no pointer graph */
		static const char *const optional[] = { "top", "diff_site", "leaks", "dominators", "histogram" };
		int opt = 0;
		for (size_t i = 0; i < sizeof optional / sizeof *optional; i++)
			opt |= !strcmp(key, optional[i]);
		if (!opt) {
			char msg[160];
			snprintf(msg, sizeof msg, "%s\"%s: not available (heapsnap %s exited %d)\"",
				 errors->len ? ", " : "", key, args[1], st);
			r |= rep_puts(errors, msg);
		}
	}
	free(out.buf);
	return r;
}

static int rep_write(const char *path, const char *html, size_t n)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = mkstemp(tmp);     /* mode 0600 */
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, html + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			errno = e;
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) || close(fd) || rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

int cmd_report(int argc, char **argv)
{
	/* -o is the one short option with a value: turn it into --output */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-o"))
			argv[i] = (char *)"--output";
	cl_opts o = {
		.cmd = "report", .usage = report_usage, .help = report_help,
		.pos_min = 1, .pos_max = 1, .value_names = { "diff", "output", NULL },
	};
	int rc = cl_parse(&o, argc, argv);
	if (rc >= 0)
		return rc;
	const char *file = o.pos[0], *base = cl_value(&o, "diff"), *outp = cl_value(&o, "output");
	/* validate the inputs here, so bad input gives its one-line message and exit 2 */
	snap *s = cl_open("report", file, &rc);
	if (!s)
		return rc;
	snap_close(s);
	if (base) {
		if (!(s = cl_open("report", base, &rc)))
			return rc;
		snap_close(s);
	}
	char defout[PATH_MAX];
	if (!outp) {
		size_t n = strlen(file);
		const char *ext = n > 6 && !strcmp(file + n - 6, ".hsnap") ? file + n - 6 : file + n;
		if (snprintf(defout, sizeof defout, "%.*s.html", (int)(ext - file), file) >= (int)sizeof defout) {
			out_err("report", "output path too long");
			return HS_EXIT_USAGE;
		}
		outp = defout;
	}
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0) {
		out_err("report", "cannot find the heapsnap executable: %s", strerror(errno));
		return HS_EXIT_FAIL;
	}
	self[sl] = 0;

	rep_buf data = { 0 }, errors = { 0 };
	int first = 1, r = 0;
	char *f = (char *)file, *b = (char *)base;
	struct { const char *key; char *args[10]; int need_base; } parts[] = {
		{ "summary", { self, "summary", f, "--json", NULL }, 0 },
		{ "libs", { self, "libs", f, "--json", NULL }, 0 },
		{ "threads", { self, "threads", f, "--json", "--limit", "40", NULL }, 0 },
		{ "top", { self, "top", f, "--json", "--limit", "200", NULL }, 0 },
		/* retention (issue #4): null until those commands exist and the snapshot has a graph */
		{ "leaks", { self, "leaks", f, "--json", "--limit", "100", NULL }, 0 },
		{ "dominators", { self, "dominators", f, "--json", "--limit", "20", "--depth", "6", NULL }, 0 },
		{ "histogram", { self, "histogram", f, "--by", "type", "--json", NULL }, 0 },
		{ "diff_site", { self, "diff", b, f, "--by", "site", "--json", "--limit", "200", NULL }, 1 },
		{ "diff_module", { self, "diff", b, f, "--by", "module", "--json", "--limit", "200", NULL }, 1 },
		{ "diff_region", { self, "diff", b, f, "--json", NULL }, 1 },
	};
	size_t nparts = sizeof parts / sizeof *parts;
	prog p;
	prog_start(&p, "report", nparts);
	r |= rep_puts(&data, "{\"file\": ");
	first = 0;
	{
		/* the file name as a JSON string, HTML-safe */
		char *mem = NULL;
		size_t ml = 0;
		FILE *m = open_memstream(&mem, &ml);
		if (!m)
			r = -1;
		else {
			out_json_string(m, file, strlen(file));
			fclose(m);
			r |= rep_put(&data, mem, ml);
			free(mem);
		}
		if (base && (m = open_memstream(&mem, &ml))) {
			fputs(", \"base\": ", m);
			out_json_string(m, base, strlen(base));
			fclose(m);
			r |= rep_put(&data, mem, ml);
			free(mem);
		}
	}
	for (size_t i = 0; i < nparts && !r; i++) {
		prog_step(&p, i);
		if (parts[i].need_base && !base)
			continue;
		r |= rep_member(&data, self, parts[i].key, parts[i].args, &first, &errors);
	}
	prog_done(&p);
	r |= rep_puts(&data, ",\n\"errors\": [");
	if (errors.len)
		r |= rep_put(&data, errors.buf, errors.len);
	r |= rep_puts(&data, "]}\n");

	/* the page with the marker replaced */
	const char *marker = "@HEAPSNAP_DATA@";
	const char *at = strstr(hs_report_html, marker);
	rep_buf page = { 0 };
	if (!r && at) {
		r |= rep_put(&page, hs_report_html, (size_t)(at - hs_report_html));
		r |= rep_put(&page, data.buf, data.len);
		r |= rep_puts(&page, at + strlen(marker));
	}
	/* belt and braces: the data must not be able to close its <script> */
	if (!r && (memchr(data.buf, '<', data.len) || !at)) {
		out_err("report", "internal error: unescaped '<' in the report data");
		rc = HS_EXIT_FAIL;
	} else if (r) {
		out_err("report", "out of memory");
		rc = HS_EXIT_FAIL;
	} else if (rep_write(outp, page.buf, page.len)) {
		out_err("report", "cannot write '%s': %s", outp, strerror(errno));
		rc = HS_EXIT_FAIL;
	} else {
		char sz[OUT_SIZE_LEN];
		printf("wrote %s (%s)\n", outp, out_size(sz, page.len));
		rc = HS_EXIT_OK;
	}
	free(data.buf);
	free(errors.buf);
	free(page.buf);
	return rc;
}
