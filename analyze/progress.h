/* progress.h -- a progress bar on stderr for long work (loading a big snapshot, walking
 * a big graph), drawn only when stderr is a terminal and the work lasts; silent
 * otherwise, so scripts and logs never see it. Redraws at most ten times a second.
 *
 *   prog p;
 *   prog_start(&p, "loading chunks", n);
 *   for (...) prog_step(&p, i);
 *   prog_done(&p);
 */
#ifndef HEAPSNAP_PROGRESS_H
#define HEAPSNAP_PROGRESS_H

#include <stdint.h>

typedef struct {
	const char *label;
	uint64_t total;       /* 0: unknown (a counter is shown instead of a bar) */
	int64_t start_us;     /* when prog_start ran */
	int64_t last_us;      /* last redraw */
	int active;           /* 1 if stderr is a terminal */
	int drawn;            /* 1 once something is on the line */
	uint32_t calls;       /* prog_step calls; the clock is read every 256th */
} prog;

void prog_start(prog *p, const char *label, uint64_t total);
/* done units of total; cheap enough to call per item */
void prog_step(prog *p, uint64_t done);
/* erase the bar (if one was drawn) */
void prog_done(prog *p);

#endif
