/*
 * fuzz.h - the libFuzzer entry point each tests/fuzz/fuzz_*.c defines. The
 * same files build two ways: with clang's libFuzzer for `make fuzz`, and
 * with the normal compiler plus replay.c for `make check-unit`, which runs
 * every seed and every regression input through the same code.
 */
#ifndef MIG_FUZZ_H
#define MIG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* MIG_FUZZ_H */
