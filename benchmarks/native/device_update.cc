// benchmarks/update_floor.py --native: devsim's batch device update as one XLA FFI kernel (a measurement, not
// part of devsim). For the plain SGD proposal, the stochastic rule and an ExpDevice with one curve constant per
// direction, C2C "sqrt" and the reference mapping (w = 2g - 1), per weight:
//
//   dw = (w - lr grad) - w;  r = |dw| / dw_min;  n = sign(dw) min(floor(r) + (u < r - floor(r)), N)
//   h = g (LTP) or 1 - g (LTD);  h' = clip(h + (s - h)(1 - exp(-|n| rate)), 0, 1), 1 within 1e-6 of it
//   g' = clip(h' or 1 - h' + c2c sqrt(|n|) xi, 0, 1);  w' = 2 g' - 1       (n = 0: nothing changes)
//
// with u and xi devsim.noise's draws (draws.h). The pulses of a chunk of weights are computed in one vectorized
// loop; only the weights that get one are then programmed. w and g are updated in place (aliased in- and outputs).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "draws.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

ffi::Error DeviceUpdateImpl(ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> g_in, ffi::Buffer<ffi::F32> grad,
                            ffi::Buffer<ffi::U32> keys, float lr, float dw_min, float max_pulses, float rate,
                            float s, float c2c, ffi::ResultBuffer<ffi::F32> w_out,
                            ffi::ResultBuffer<ffi::F32> g_out) {
  const int64_t size = w_in.element_count();
  float* w = w_out->typed_data();
  float* g = g_out->typed_data();
  if (w != w_in.typed_data()) std::copy(w_in.typed_data(), w_in.typed_data() + size, w);
  if (g != g_in.typed_data()) std::copy(g_in.typed_data(), g_in.typed_data() + size, g);
  const float* gr = grad.typed_data();
  const uint32_t u_key = keys.typed_data()[0], c2c_key = keys.typed_data()[1];
  const float inverse = 1.0f / dw_min;
  constexpr int kChunk = 256;
  float pulses[kChunk];
  for (int64_t base = 0; base < size; base += kChunk) {
    const int m = (int)(size - base < kChunk ? size - base : kChunk);
    unsigned any = 0;
    for (int j = 0; j < m; ++j) {  // vectorized: the pulses of every weight of the chunk
      const float a = w[base + j];
      const float dw = (a - lr * gr[base + j]) - a;
      const float r = __builtin_fabsf(dw) * inverse;
      const float whole = __builtin_floorf(r);
      const float u = devsim_unit(devsim_hash((uint32_t)(base + j), u_key));
      float k = whole + (u < r - whole ? 1.0f : 0.0f);
      k = k < max_pulses ? k : max_pulses;
      pulses[j] = dw > 0 ? k : -k;
      any += pulses[j] != 0.0f ? 1u : 0u;
    }
    if (!any) continue;
    for (int j = 0; j < m; ++j) {  // the few weights that get a pulse
      const float n = pulses[j];
      if (n == 0.0f) continue;
      const int64_t i = base + j;
      const bool up = n > 0;
      const float k = __builtin_fabsf(n);
      const float h = up ? g[i] : 1.0f - g[i];
      float h_new = h + (s - h) * -std::expm1(-k * rate);
      h_new = h_new > 1.0f - 1e-6f ? 1.0f : h_new;
      h_new = h_new < 0.0f ? 0.0f : (h_new > 1.0f ? 1.0f : h_new);
      float g_new = up ? h_new : 1.0f - h_new;
      if (c2c > 0.0f) {
        g_new = g_new + c2c * std::sqrt(k) * devsim_normal(devsim_unit(devsim_hash((uint32_t)i, c2c_key)));
        g_new = g_new < 0.0f ? 0.0f : (g_new > 1.0f ? 1.0f : g_new);
      }
      g[i] = g_new;
      w[i] = 2.0f * g_new - 1.0f;
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DevsimDeviceUpdate, DeviceUpdateImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // w
                                  .Arg<ffi::Buffer<ffi::F32>>()   // g
                                  .Arg<ffi::Buffer<ffi::F32>>()   // grad
                                  .Arg<ffi::Buffer<ffi::U32>>()   // (rounding key, C2C key)
                                  .Attr<float>("lr")
                                  .Attr<float>("dw_min")
                                  .Attr<float>("max_pulses")
                                  .Attr<float>("rate")
                                  .Attr<float>("s")
                                  .Attr<float>("c2c")
                                  .Ret<ffi::Buffer<ffi::F32>>()   // w, in place
                                  .Ret<ffi::Buffer<ffi::F32>>());  // g, in place
