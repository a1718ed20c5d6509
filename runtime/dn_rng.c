/* dn_rng.c - shuffling on top of the Philox streams declared in dn_runtime.h. */
#include "dn_runtime.h"

/* Fisher-Yates over 0..n-1, driven by DN_RNG_SHUFFLE words (a = epoch,
 * i = position): for i = n-1 .. 1, j = (rand(i) * (i+1)) >> 32. */
void dn_shuffle(uint32_t *perm, uint32_t n, uint64_t seed, uint32_t epoch) {
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i-- > 1;) {
        uint32_t w = dn_rand_u32(seed, DN_RNG_SHUFFLE, epoch, 0, 0, i);
        uint32_t j = (uint32_t)(((uint64_t)w * ((uint64_t)i + 1)) >> 32);
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}
