/* benchmarks/update_floor.py: devsim.noise.uniform's rounding draws, vectorized by the C compiler. */
#include "draws.h"

void uniforms(float* __restrict out, int64_t n, uint32_t key) {
  for (int64_t i = 0; i < n; ++i) out[i] = devsim_unit(devsim_hash((uint32_t)i, key));
}
