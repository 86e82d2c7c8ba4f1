// CUDA kernel for bias_act: one thread per element (grid-stride loop).

#include "bias_act.h"
#include "storage_types.cuh"

namespace {

// Activation numbers, matching activation_funcs[...].cuda_idx in bias_act.py.
enum Act { kLinear = 1, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

// SELU constants, the same as in torch.nn.functional.selu.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// Above this, F.softplus returns its input unchanged; mirror it exactly.
constexpr double kSoftplusThreshold = 20.0;

template <typename T> struct Math;
template <> struct Math<float> {
    static __device__ float exp(float v) { return ::expf(v); }
    static __device__ float expm1(float v) { return ::expm1f(v); }
    static __device__ float log1p(float v) { return ::log1pf(v); }
    static __device__ float tanh(float v) { return ::tanhf(v); }
};
template <> struct Math<double> {
    static __device__ double exp(double v) { return ::exp(v); }
    static __device__ double expm1(double v) { return ::expm1(v); }
    static __device__ double log1p(double v) { return ::log1p(v); }
    static __device__ double tanh(double v) { return ::tanh(v); }
};

template <typename T>
__device__ T sigmoid(T v) { return T(1) / (T(1) + Math<T>::exp(-v)); }

template <typename T>
__device__ T activation(int act, T v, T alpha)
{
    switch (act) {
    case kRelu:     return v < T(0) ? T(0) : v;  // Comparison order lets NaN through, as torch.relu does.
    case kLrelu:    return v < T(0) ? v * alpha : v;
    case kTanh:     return Math<T>::tanh(v);
    case kSigmoid:  return sigmoid(v);
    case kElu:      return v > T(0) ? v : Math<T>::expm1(v);
    case kSelu:     return T(kSeluScale) * (v > T(0) ? v : T(kSeluAlpha) * Math<T>::expm1(v));
    case kSoftplus: return v > T(kSoftplusThreshold) ? v : Math<T>::log1p(Math<T>::exp(v));
    case kSwish:    return v * sigmoid(v);
    default:        return v;  // kLinear.
    }
}

// First derivative. `y` is the activation's output (y-based activations),
// `v` its input (x-based ones); each case reads the one its formula needs.
template <typename T>
__device__ T activation_grad(int act, T v, T y, T alpha)
{
    switch (act) {
    case kRelu:     return y > T(0) ? T(1) : T(0);
    case kLrelu:    return y > T(0) ? T(1) : alpha;
    case kTanh:     return T(1) - y * y;
    case kSigmoid:  return y * (T(1) - y);
    case kElu:      return y > T(0) ? T(1) : y + T(1);
    case kSelu:     return y > T(0) ? T(kSeluScale) : y + T(kSeluScale * kSeluAlpha);
    case kSoftplus: return -Math<T>::expm1(-y);  // sigmoid(v), written via y = log(1 + e^v).
    case kSwish:    { T s = sigmoid(v); return s + v * s * (T(1) - s); }
    default:        return T(1);  // kLinear.
    }
}

// Second derivative, for the activations whose one is not zero almost everywhere.
template <typename T>
__device__ T activation_grad2(int act, T v, T y)
{
    switch (act) {
    case kTanh:     return T(-2) * y * (T(1) - y * y);
    case kSigmoid:  return y * (T(1) - y) * (T(1) - T(2) * y);
    case kElu:      return y > T(0) ? T(0) : y + T(1);
    case kSelu:     return y > T(0) ? T(0) : y + T(kSeluScale * kSeluAlpha);
    case kSoftplus: return -Math<T>::expm1(-y) * Math<T>::exp(-y);
    case kSwish:    { T s = sigmoid(v); return s * (T(1) - s) * (T(2) + v * (T(1) - T(2) * s)); }
    default:        return T(0);  // Piecewise linear.
    }
}

// T: the tensors' element type; C: the arithmetic's (float32 for float16 tensors).
template <typename T>
__global__ void bias_act_kernel(BiasActParams p)
{
    using C = typename ComputeType<T>::type;
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* xref = static_cast<const T*>(p.xref);
    const T* yref = static_cast<const T*>(p.yref);
    const T* dy = static_cast<const T*>(p.dy);
    T* out = static_cast<T*>(p.out);
    const C alpha = C(p.alpha);
    const C gain = C(p.gain);
    const C clamp = C(p.clamp);

    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.size; i += (int64_t)gridDim.x * blockDim.x) {
        const C bias = b ? widen(b[(i / p.bias_step) % p.bias_len]) : C(0);
        if (p.grad == 0) {
            C v = activation(p.act, widen(x[i]) + bias, alpha);
            if (p.gain != 1.0)
                v *= gain;
            if (p.clamp >= 0.0)
                v = v > clamp ? clamp : (v < -clamp ? -clamp : v);  // NaN passes, as in torch.clamp.
            store(&out[i], v);
            continue;
        }
        // Gradient is zero where the forward output was clamped.
        if (p.clamp >= 0.0 && yref && !(widen(yref[i]) > -clamp && widen(yref[i]) < clamp)) {
            store(&out[i], C(0));
            continue;
        }
        const C v = xref ? widen(xref[i]) + bias : C(0);
        // Undo the gain to get the activation's own output.
        const C y = (yref && p.gain != 0.0) ? widen(yref[i]) / gain : C(0);
        const C deriv = p.grad == 1 ? activation_grad(p.act, v, y, alpha)
                                    : activation_grad2(p.act, v, y) * widen(dy[i]);
        store(&out[i], widen(x[i]) * deriv * gain);
    }
}

} // namespace

cudaError_t bias_act_launch(const BiasActParams& p, BiasActDtype dtype, cudaStream_t stream)
{
    if (p.size == 0)
        return cudaSuccess;
    const int threads = 256;
    // The grid-stride loop covers any size; cap the grid to a sane launch.
    const int64_t wanted = (p.size + threads - 1) / threads;
    const int blocks = (int)(wanted < 65536 ? wanted : 65536);
    if (dtype == kBiasActFloat64)
        bias_act_kernel<double><<<blocks, threads, 0, stream>>>(p);
    else if (dtype == kBiasActFloat16)
        bias_act_kernel<__half><<<blocks, threads, 0, stream>>>(p);
    else
        bias_act_kernel<float><<<blocks, threads, 0, stream>>>(p);
    return cudaGetLastError();
}
