/* hp_sample.c -- Poisson sampling by bytes (HEAPSNAP_SAMPLE=R), as tcmalloc, jemalloc
 * and heapprofd do: sample points fall on the byte stream with mean spacing R, and an
 * allocation is recorded when it contains one. The distance to the next point is
 * exponential, so an allocation of s < R bytes is recorded with probability
 * 1 - exp(-s/R) whatever came before; allocations of R bytes or more are always
 * recorded (the hooks do not consult the sampler for them). Unbiased estimates for a
 * recorded block of s < R bytes: 1/(1 - exp(-s/R)) blocks, s/(1 - exp(-s/R)) bytes.
 *
 * The hot path (in the hooks) is one subtraction per allocation; this file draws the
 * next distance when a sample is taken.
 */
#include "hp_internal.h"

/* natural logarithm of x in (0, 1], to about 1e-12: x = m * 2^e with m in [1/sqrt2, sqrt2),
 * ln m = 2 atanh((m-1)/(m+1)) by its series. (Keeps libm, 300 kB of RSS, out.) */
static double ln01(double x)
{
	union { double d; uint64_t u; } v = { x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & ~(0x7ffull << 52)) | (1023ull << 52);      /* m in [1, 2) */
	double m = v.d;
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double t = (m - 1) / (m + 1), t2 = t * t, sum = 0, pw = t;
	for (int k = 1; k < 30; k += 2) {
		sum += pw / k;
		pw *= t2;
	}
	return 2 * sum + e * 0.6931471805599453;
}

static uint64_t next_rand(struct hp_tstate *t)
{
	/* xorshift64* */
	uint64_t x = t->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

int64_t hp_sample_next(struct hp_tstate *t)
{
	/* uniform in (0, 1], 53 bits */
	double u = (double)((next_rand(t) >> 11) + 1) * (1.0 / 9007199254740992.0);
	double d = -ln01(u) * (double)hp_cfg.sample;
	if (d < 1)
		d = 1;
	if (d > 4e18)
		d = 4e18;
	return (int64_t)d;
}
