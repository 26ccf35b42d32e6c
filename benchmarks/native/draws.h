/* devsim.noise's draws in C, for benchmarks/update_floor.py: the same bits as the XLA programs.
 * Two rounds of Wellons' lowbias32 of (index * golden + key) ^ key; uniforms keep the top 23 bits,
 * (b + 0.5) / 2**23; normals are sqrt(2) erfinv(2u - 1) by Giles' single-precision polynomial. */
#ifndef DEVSIM_BENCHMARKS_DRAWS_H_
#define DEVSIM_BENCHMARKS_DRAWS_H_

#include <math.h>
#include <stdint.h>

static inline uint32_t devsim_mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  return x ^ (x >> 16);
}

static inline uint32_t devsim_hash(uint32_t index, uint32_t key) {
  return devsim_mix(devsim_mix(index * 0x9E3779B9u + key) ^ key);
}

static inline float devsim_unit(uint32_t bits) { return ((float)(int32_t)(bits >> 9) + 0.5f) * (1.0f / 8388608.0f); }

static const float devsim_central[9] = {2.81022636e-08f, 3.43273939e-07f, -3.5233877e-06f, -4.39150654e-06f,
                                        0.00021858087f, -0.00125372503f, -0.00417768164f, 0.246640727f, 1.50140941f};
static const float devsim_tail[9] = {-0.000200214257f, 0.000100950558f, 0.00134934322f, -0.00367342844f,
                                     0.00573950773f, -0.0076224613f, 0.00943887047f, 1.00167406f, 2.83297682f};

static inline float devsim_normal(float u) {
  const float x = 2.0f * u - 1.0f;
  const float w = -logf((1.0f - x) * (1.0f + x));
  const int central = w < 5.0f;
  const float* c = central ? devsim_central : devsim_tail;
  const float t = central ? w - 2.5f : sqrtf(w) - 3.0f;
  float p = c[0];
  for (int k = 1; k < 9; ++k) p = c[k] + p * t;
  return 1.41421356f * p * x;
}

#endif  /* DEVSIM_BENCHMARKS_DRAWS_H_ */
