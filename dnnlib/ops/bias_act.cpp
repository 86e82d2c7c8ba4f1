// ATen / Python glue for the bias_act CUDA kernel: checks arguments, makes
// tensors contiguous and launches on the current stream.

#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "bias_act.h"

namespace {

// An empty tensor stands for "not given"; a given one must match x and be contiguous.
const void* optional_ptr(const torch::Tensor& t, const torch::Tensor& x, const char* name)
{
    if (t.numel() == 0)
        return nullptr;
    TORCH_CHECK(t.device() == x.device() && t.scalar_type() == x.scalar_type(), name, " must match x in device and dtype");
    return t.data_ptr();
}

torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref, torch::Tensor dy,
                       int64_t grad, int64_t dim, int64_t act, double alpha, double gain, double clamp)
{
    TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64 ||
                x.scalar_type() == torch::kHalf, "x must be float32, float64 or float16");
    TORCH_CHECK(grad >= 0 && grad <= 2, "grad must be 0, 1 or 2");
    TORCH_CHECK(b.numel() == 0 || (b.dim() == 1 && dim >= 0 && dim < x.dim() && b.size(0) == x.size(dim)),
                "b must be empty or 1-D with x.shape[dim] elements");
    TORCH_CHECK(xref.numel() == 0 || xref.sizes() == x.sizes(), "xref must be empty or shaped like x");
    TORCH_CHECK(yref.numel() == 0 || yref.sizes() == x.sizes(), "yref must be empty or shaped like x");
    TORCH_CHECK(dy.numel() == 0 || dy.sizes() == x.sizes(), "dy must be empty or shaped like x");
    TORCH_CHECK(grad != 2 || dy.numel() != 0, "grad 2 needs dy");
    TORCH_CHECK(grad == 0 || xref.numel() != 0 || yref.numel() != 0, "gradients need xref or yref");

    const c10::cuda::OptionalCUDAGuard device_guard(x.device());
    x = x.contiguous();
    b = b.contiguous();
    xref = xref.contiguous();
    yref = yref.contiguous();
    dy = dy.contiguous();
    torch::Tensor out = torch::empty_like(x);

    BiasActParams p;
    p.x = x.data_ptr();
    p.b = optional_ptr(b, x, "b");
    p.xref = optional_ptr(xref, x, "xref");
    p.yref = optional_ptr(yref, x, "yref");
    p.dy = optional_ptr(dy, x, "dy");
    p.out = out.data_ptr();
    p.size = x.numel();
    p.bias_len = b.numel();
    p.bias_step = 1;
    if (p.bias_len > 0)
        for (int64_t i = dim + 1; i < x.dim(); i++)
            p.bias_step *= x.size(i);
    p.grad = (int)grad;
    p.act = (int)act;
    p.alpha = alpha;
    p.gain = gain;
    p.clamp = clamp;

    const BiasActDtype dtype = x.scalar_type() == torch::kFloat64 ? kBiasActFloat64
                             : x.scalar_type() == torch::kHalf    ? kBiasActFloat16 : kBiasActFloat32;
    const cudaError_t err = bias_act_launch(p, dtype, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, "bias_act kernel launch failed: ", cudaGetErrorString(err));
    return out;
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act, "Fused bias + activation + gain + clamp, or its derivatives (CUDA)");
}
