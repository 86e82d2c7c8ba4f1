// Generic CUDA kernel for upfirdn2d: one thread per output element, looping
// over the filter taps that land on input pixels. Correctness over speed.

#include "upfirdn2d.h"
#include "storage_types.cuh"

namespace {

// Division rounding towards minus infinity (C++ rounds towards zero), for
// window bounds that start left of the image.
__device__ int floor_div(int a, int b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }

// Input pixels i (0 <= i < in) whose zero-inserted, padded position
// i * up + pad0 falls inside the filter window [start, start + taps).
__device__ void window(int start, int taps, int up, int pad0, int in, int* first, int* last)
{
    int lo = -floor_div(-(start - pad0), up);  // ceil((start - pad0) / up)
    int hi = floor_div(start + taps - 1 - pad0, up);
    *first = lo > 0 ? lo : 0;
    *last = hi < in - 1 ? hi : in - 1;
}

// T: the tensors' element type; sums run in ComputeType<T> (float32 for float16).
template <typename T>
__global__ void upfirdn2d_kernel(Upfirdn2dParams p)
{
    using C = typename ComputeType<T>::type;
    const T* x = static_cast<const T*>(p.x);
    const T* f = static_cast<const T*>(p.f);
    T* out = static_cast<T*>(p.out);
    const int64_t total = p.planes * p.out_h * p.out_w;

    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        const int ox = (int)(idx % p.out_w);
        const int oy = (int)((idx / p.out_w) % p.out_h);
        const int64_t plane = idx / ((int64_t)p.out_w * p.out_h);
        const T* xp = x + plane * p.in_h * p.in_w;

        // The output pixel's window starts here in zero-inserted, padded coordinates.
        const int sy = oy * p.downy;
        const int sx = ox * p.downx;
        int iy0, iy1, ix0, ix1;
        window(sy, p.fh, p.upy, p.pady0, p.in_h, &iy0, &iy1);
        window(sx, p.fw, p.upx, p.padx0, p.in_w, &ix0, &ix1);

        C acc = C(0);
        for (int iy = iy0; iy <= iy1; iy++) {
            const int ty = iy * p.upy + p.pady0 - sy;  // Offset of the pixel in the window.
            // A true convolution pairs window offset t with tap (taps - 1 - t).
            const int ky = p.flip_filter ? ty : p.fh - 1 - ty;
            for (int ix = ix0; ix <= ix1; ix++) {
                const int tx = ix * p.upx + p.padx0 - sx;
                const int kx = p.flip_filter ? tx : p.fw - 1 - tx;
                acc += widen(xp[(int64_t)iy * p.in_w + ix]) * widen(f[ky * p.fw + kx]);
            }
        }
        store(&out[idx], acc);
    }
}

} // namespace

cudaError_t upfirdn2d_launch(const Upfirdn2dParams& p, Upfirdn2dDtype dtype, cudaStream_t stream)
{
    const int64_t total = p.planes * p.out_h * p.out_w;
    if (total == 0)
        return cudaSuccess;
    const int threads = 256;
    // The grid-stride loop covers any size; cap the grid to a sane launch.
    const int64_t wanted = (total + threads - 1) / threads;
    const int blocks = (int)(wanted < 65536 ? wanted : 65536);
    if (dtype == kUpfirdn2dFloat64)
        upfirdn2d_kernel<double><<<blocks, threads, 0, stream>>>(p);
    else if (dtype == kUpfirdn2dFloat16)
        upfirdn2d_kernel<__half><<<blocks, threads, 0, stream>>>(p);
    else
        upfirdn2d_kernel<float><<<blocks, threads, 0, stream>>>(p);
    return cudaGetLastError();
}
