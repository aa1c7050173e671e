/* check.h -- tiny assertion macros for the C unit tests: on failure they print the
 * file, line, the expression and both values, and exit 1. SKIP() exits 77 (ctest skip). */
#ifndef HEAPSNAP_CHECK_H
#define HEAPSNAP_CHECK_H
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int check_failures __attribute__((unused));

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
	fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld, 0x%llx vs 0x%llx)\n", \
		__FILE__, __LINE__, #a, #b, _a, _b, _a, _b); exit(1); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); if (!_a || !_b || strcmp(_a, _b)) { \
	fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" vs \"%s\")\n", \
		__FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); exit(1); } } while (0)
#define SKIP(why) do { fprintf(stderr, "SKIP: %s\n", why); exit(77); } while (0)

#endif
