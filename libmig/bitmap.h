/*
 * bitmap.h - page-state bitmaps of a migration window.
 *
 * Page states (COPIED, DIRTY, ZAP, FILLED, ...) live in bitmaps indexed by
 * page number inside the window, never in pointer bits. Engine workers set
 * bits concurrently with the fault thread, so the setters and testers are
 * atomic; the relaxed forms are for single-threaded phases.
 */
#ifndef MIG_BITMAP_H
#define MIG_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MIG__BITMAP_WORDS(n) (((n) + 63) / 64)

static inline void mig__bit_set(uint64_t *b, size_t i)
{
	__atomic_fetch_or(&b[i / 64], UINT64_C(1) << (i % 64), __ATOMIC_RELAXED);
}

static inline void mig__bit_clear(uint64_t *b, size_t i)
{
	__atomic_fetch_and(&b[i / 64], ~(UINT64_C(1) << (i % 64)), __ATOMIC_RELAXED);
}

static inline bool mig__bit_test(const uint64_t *b, size_t i)
{
	return (__atomic_load_n(&b[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1;
}

static inline void mig__bitmap_zero(uint64_t *b, size_t n)
{
	memset(b, 0, MIG__BITMAP_WORDS(n) * sizeof(uint64_t));
}

static inline size_t mig__bitmap_count(const uint64_t *b, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += mig__bit_test(b, i);
	return c;
}

#endif /* MIG_BITMAP_H */
