// Element types of the kernels' tensors and the type their arithmetic runs in:
// float16 tensors are read into float32, computed on, and rounded once when
// stored, as StyleGAN2-ADA's kernels do. Written with the explicit conversion
// intrinsics, since torch builds extensions with the implicit ones disabled.

#pragma once

#include <cuda_fp16.h>

template <typename T> struct ComputeType { using type = T; };
template <> struct ComputeType<__half> { using type = float; };

__device__ inline float widen(__half v) { return __half2float(v); }
__device__ inline float widen(float v) { return v; }
__device__ inline double widen(double v) { return v; }

__device__ inline void store(__half* out, float v) { *out = __float2half_rn(v); }
__device__ inline void store(float* out, float v) { *out = v; }
__device__ inline void store(double* out, double v) { *out = v; }
