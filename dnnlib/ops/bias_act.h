// Interface between the ATen glue (bias_act.cpp) and the CUDA kernel
// (bias_act.cu). Kept free of torch headers so that the kernel file builds
// with nothing but the CUDA toolkit.

#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

// Element type of all tensors in one call (float16 computes in float32).
enum BiasActDtype { kBiasActFloat32 = 0, kBiasActFloat64 = 1, kBiasActFloat16 = 2 };

// What the kernel computes per element i, with xb = xref[i] + b[c(i)]
// (c(i) = the index along the bias dim) and a = y-based or x-based argument:
//   grad 0: out = clamp(gain * f(x[i] + b[c(i)]))
//   grad 1: out = x[i] * gain * f'(.) * mask     (x holds dy)
//   grad 2: out = x[i] * dy[i] * gain * f''(.) * mask   (x holds d(dx))
// f' and f'' are computed from yref / gain for y-based activations and from
// xb for x-based ones; mask is 0 where the forward output was clamped.
struct BiasActParams {
    const void* x;     // Input (grad 0), or the incoming gradient (grad 1, 2).
    const void* b;     // Bias, or nullptr.
    const void* xref;  // Forward input x, or nullptr.
    const void* yref;  // Forward output y, or nullptr.
    const void* dy;    // Gradient of y (grad 2 only), or nullptr.
    void* out;

    int64_t size;       // Number of elements.
    int64_t bias_step;  // Product of the sizes after the bias dim.
    int64_t bias_len;   // Size of the bias dim (0 without bias).
    int grad;           // 0, 1 or 2: see above.
    int act;            // Activation number, as activation_funcs[...].cuda_idx.
    double alpha;
    double gain;
    double clamp;       // Negative: no clamping.
};

// Launches the kernel on `stream`; returns the launch status.
cudaError_t bias_act_launch(const BiasActParams& p, BiasActDtype dtype, cudaStream_t stream);
