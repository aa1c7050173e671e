/* test_preload_format.c -- the block header format of the tracking library
 * (capture/preload/hp_format.h) decoded from synthetic bytes, as the capture will:
 * valid headers of each kind, rejection of glibc chunk words and of random data, and
 * the reconstruction of full sequence numbers. No library needed. */
#include "../../capture/preload/hp_format.h"
#include "check.h"

static void put_hdr(uint64_t *w, uint64_t u, unsigned ulog, uint64_t size, uint32_t id,
		    uint64_t seq, uint64_t flags)
{
	uint64_t a = (seq & HP_SEQ_MASK) | (uint64_t)id << HP_STACK_SHIFT;
	w[0] = a;
	w[1] = HP_B_MARK | flags | (uint64_t)ulog << HP_B_ULOG_SHIFT |
	       hp_check(u, a, size) << HP_B_CHECK_SHIFT | size;
}

int main(void)
{
	(void)check_failures;
	uint64_t w[2];
	struct hp_block b;
	/* an ordinary block: user pointer = u + 16 */
	put_hdr(w, 0x5555000010, 4, 100, 42, 123456, 0);
	CHECK(hp_decode(0x5555000010, w, 16, 120, &b));
	CHECK_EQ(b.user, 0x5555000020);
	CHECK_EQ(b.usable, 104);
	CHECK_EQ(b.size, 100);
	CHECK_EQ(b.stack, 42);
	CHECK_EQ(b.seq_low, 123456);
	CHECK_EQ(b.unsampled, 0);
	/* the same bytes at another address, or with one field changed: rejected */
	CHECK(!hp_decode(0x5555000030, w, 16, 120, &b));
	w[0] ^= 1;
	CHECK(!hp_decode(0x5555000010, w, 16, 120, &b));
	/* size larger than the usable space: rejected */
	put_hdr(w, 0x1000, 4, 200, 1, 1, 0);
	CHECK(!hp_decode(0x1000, w, 16, 120, &b));
	/* an aligned block (alignment 64): user pointer = u + 64 */
	put_hdr(w, 0x7000, 6, 100, 7, 9, 0);
	CHECK(hp_decode(0x7000, w, 16, 200, &b));
	CHECK_EQ(b.user, 0x7040);
	CHECK_EQ(b.usable, 136);
	/* unsampled */
	put_hdr(w, 0x9000, 4, 10, HP_STACK_UNSAMPLED, 5, HP_B_UNSAMPLED);
	CHECK(hp_decode(0x9000, w, 16, 40, &b));
	CHECK_EQ(b.unsampled, 1);
	CHECK_EQ(b.stack, HP_STACK_UNSAMPLED);
	/* a back word is never a header; a glibc size field never has the mark */
	w[1] |= HP_B_BACK;
	CHECK(!hp_decode(0x9000, w, 16, 40, &b));
	w[0] = 0;
	w[1] = 0x31;
	CHECK(!hp_decode(0x9000, w, 16, 40, &b));
	/* random data with the mark bit set: false positives stay rare (< 1e-4) */
	uint64_t x = 0x9e3779b97f4a7c15ull, hits = 0, n = 2000000;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[0] = x;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[1] = x | HP_B_MARK;
		hits += hp_decode(0x10000 + 16 * (i & 0xffff), w, 16, 4096, &b);
	}
	fprintf(stderr, "random headers accepted: %llu of %llu\n", (unsigned long long)hits,
		(unsigned long long)n);
	CHECK(hits * 10000 < n);
	/* sequence numbers: low 40 bits + the counter */
	CHECK_EQ(hp_seq_full(5, 100), 5);
	CHECK_EQ(hp_seq_full(HP_SEQ_MASK, (1ull << 40) + 10), HP_SEQ_MASK);
	CHECK_EQ(hp_seq_full(3, (3ull << 40) + 10), (3ull << 40) + 3);
	CHECK_EQ(hp_seq_full(20, (3ull << 40) + 10), (2ull << 40) + 20);
	return 0;
}
