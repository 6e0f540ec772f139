/* llmsys/random.h — the counter-based random stream every implementation
 * draws from, so that a CPU and a GPU implementation of dropout produce the
 * same mask and a call can be replayed in backward.
 *
 * A call's random numbers are a pure function of the (rng_seed, rng_offset)
 * pair in its llmsys_call_context_t and an element index i:
 *   counter = rng_offset + i / 4  (64 bits, as words c0 = low, c1 = high,
 *                                  c2 = c3 = 0)
 *   key     = rng_seed            (k0 = low 32 bits, k1 = high)
 *   word    = Philox4x32-10(counter, key)[i % 4]
 *   uniform = (word >> 8) * 2^-24          in [0, 1), exactly representable
 * Philox4x32-10 is Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3" (SC 2011), the generator of cuRAND and PyTorch's CUDA backend. The host
 * gives each call its own offset, 2^32 counters apart, so a call may draw up
 * to 2^34 numbers.
 *
 * Usage:
 *   float u = llmsys_random_uniform(ctx->rng_seed, ctx->rng_offset, i);
 *
 * Thread-safety: pure functions. Usable from CUDA device code. */
#ifndef LLMSYS_RANDOM_H_
#define LLMSYS_RANDOM_H_

#include <stdint.h>

#if defined(__CUDACC__)
#define LLMSYS_RANDOM_FN static inline __host__ __device__
#else
#define LLMSYS_RANDOM_FN static inline
#endif

/* Philox4x32-10 on counter c[4] with key k[2]; the result replaces c. */
LLMSYS_RANDOM_FN void llmsys_philox4x32_10(uint32_t c[4], const uint32_t k[2]) {
  uint32_t k0 = k[0], k1 = k[1];
  int round;
  for (round = 0; round < 10; ++round) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k0;
    uint32_t n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

/* The i-th 32-bit random word of the stream (seed, offset). */
LLMSYS_RANDOM_FN uint32_t llmsys_random_u32(uint64_t seed, uint64_t offset,
                                            uint64_t i) {
  uint64_t counter = offset + i / 4;
  uint32_t c[4], k[2];
  c[0] = (uint32_t)counter;
  c[1] = (uint32_t)(counter >> 32);
  c[2] = 0;
  c[3] = 0;
  k[0] = (uint32_t)seed;
  k[1] = (uint32_t)(seed >> 32);
  llmsys_philox4x32_10(c, k);
  return c[i % 4];
}

/* The i-th uniform number in [0, 1) of the stream (seed, offset). */
LLMSYS_RANDOM_FN float llmsys_random_uniform(uint64_t seed, uint64_t offset,
                                             uint64_t i) {
  return (float)(llmsys_random_u32(seed, offset, i) >> 8) *
         (1.0f / 16777216.0f);
}

#endif /* LLMSYS_RANDOM_H_ */
