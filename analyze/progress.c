/* progress.c -- the stderr progress bar (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define PROG_DELAY_US 300000   /* nothing is drawn for work shorter than this */
#define PROG_PERIOD_US 100000  /* redraw at most every 100 ms */
#define PROG_WIDTH 30

static int64_t prog_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void prog_start(prog *p, const char *label, uint64_t total)
{
	p->label = label;
	p->total = total;
	p->start_us = p->last_us = prog_now_us();
	p->active = isatty(STDERR_FILENO);
	p->drawn = 0;
	p->calls = 0;
}

void prog_step(prog *p, uint64_t done)
{
	if (!p->active || (p->calls++ & 255))
		return;
	int64_t now = prog_now_us();
	if (now - p->start_us < PROG_DELAY_US || now - p->last_us < PROG_PERIOD_US)
		return;
	p->last_us = now;
	p->drawn = 1;
	if (!p->total) {
		fprintf(stderr, "\r%s: %llu", p->label, (unsigned long long)done);
		return;
	}
	if (done > p->total)
		done = p->total;
	int fill = (int)(done * PROG_WIDTH / p->total);
	char bar[PROG_WIDTH + 1];
	for (int i = 0; i < PROG_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[PROG_WIDTH] = 0;
	fprintf(stderr, "\r%s [%s] %3d%%", p->label, bar, (int)(done * 100 / p->total));
}

void prog_done(prog *p)
{
	if (p->active && p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = 0;
}
