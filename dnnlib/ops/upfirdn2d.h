// Interface between the ATen glue (upfirdn2d.cpp) and the CUDA kernel
// (upfirdn2d.cu). Kept free of torch headers so that the kernel file builds
// with nothing but the CUDA toolkit.

#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

// Element type of x, f and out in one call (float16 accumulates in float32).
enum Upfirdn2dDtype { kUpfirdn2dFloat32 = 0, kUpfirdn2dFloat64 = 1, kUpfirdn2dFloat16 = 2 };

// For each of the `planes` (= N * C) contiguous images: insert up - 1 zeros
// after each pixel, pad by pad0 before (the far-side pad only sets out_h and
// out_w), convolve with f (correlate if flip_filter) and keep every down-th
// pixel. All tensors are contiguous.
struct Upfirdn2dParams {
    const void* x;  // [planes, in_h, in_w]
    const void* f;  // [fh, fw], already scaled by the gain.
    void* out;      // [planes, out_h, out_w]

    int64_t planes;
    int in_h, in_w, out_h, out_w, fh, fw;
    int upx, upy, downx, downy, padx0, pady0;
    bool flip_filter;
};

// Launches the kernel on `stream`; returns the launch status.
cudaError_t upfirdn2d_launch(const Upfirdn2dParams& p, Upfirdn2dDtype dtype, cudaStream_t stream);
