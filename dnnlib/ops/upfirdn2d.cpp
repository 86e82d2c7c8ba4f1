// ATen / Python glue for the upfirdn2d CUDA kernel: checks arguments, makes
// tensors contiguous and launches on the current stream.

#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "upfirdn2d.h"

namespace {

torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                        int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip_filter)
{
    TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64 ||
                x.scalar_type() == torch::kHalf, "x must be float32, float64 or float16");
    TORCH_CHECK(f.device() == x.device() && f.scalar_type() == x.scalar_type(), "f must match x in device and dtype");
    TORCH_CHECK(x.dim() == 4, "x must be NCHW");
    TORCH_CHECK(f.dim() == 2 && f.size(0) >= 1 && f.size(1) >= 1, "f must be a non-empty 2-D filter");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "up and down must be >= 1");
    // Per-image coordinates are ints in the kernel; the image offset is 64-bit.
    TORCH_CHECK(x.size(2) * upy + std::abs(pady0) + std::abs(pady1) < INT32_MAX / 2 &&
                x.size(3) * upx + std::abs(padx0) + std::abs(padx1) < INT32_MAX / 2,
                "image too large for this kernel's int coordinates");

    const int64_t out_h = (x.size(2) * upy + pady0 + pady1 - f.size(0)) / downy + 1;
    const int64_t out_w = (x.size(3) * upx + padx0 + padx1 - f.size(1)) / downx + 1;
    TORCH_CHECK(x.size(2) * upy + pady0 + pady1 >= f.size(0) && x.size(3) * upx + padx0 + padx1 >= f.size(1),
                "padded input is smaller than the filter");

    const c10::cuda::OptionalCUDAGuard device_guard(x.device());
    x = x.contiguous();
    f = f.contiguous();
    torch::Tensor out = torch::empty({x.size(0), x.size(1), out_h, out_w}, x.options());

    Upfirdn2dParams p;
    p.x = x.data_ptr();
    p.f = f.data_ptr();
    p.out = out.data_ptr();
    p.planes = x.size(0) * x.size(1);
    p.in_h = (int)x.size(2);
    p.in_w = (int)x.size(3);
    p.out_h = (int)out_h;
    p.out_w = (int)out_w;
    p.fh = (int)f.size(0);
    p.fw = (int)f.size(1);
    p.upx = (int)upx;
    p.upy = (int)upy;
    p.downx = (int)downx;
    p.downy = (int)downy;
    p.padx0 = (int)padx0;
    p.pady0 = (int)pady0;
    p.flip_filter = flip_filter;

    const Upfirdn2dDtype dtype = x.scalar_type() == torch::kFloat64 ? kUpfirdn2dFloat64
                               : x.scalar_type() == torch::kHalf    ? kUpfirdn2dFloat16 : kUpfirdn2dFloat32;
    const cudaError_t err = upfirdn2d_launch(p, dtype, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, "upfirdn2d kernel launch failed: ", cudaGetErrorString(err));
    return out;
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR-filter and downsample NCHW images (CUDA)");
}
