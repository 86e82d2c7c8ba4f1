// Winograd F(4x4, 3x3) convolution of float32 channels-last tensors on the CPU (see winograd.py).
//
// Work is split into chunks of tiles, one chunk per task: the chunk's 6x6 input tiles are transformed into
// V [36, tiles, I], multiplied by the transformed weights U [36, I, O] (36 matrix products, one per transformed
// tile position), and the products M [36, tiles, O] transformed back into 4x4 output tiles. A chunk's V and M stay
// in the core's cache, which is what makes this faster than the direct convolution at small channel counts too.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace {

constexpr int kBlock = 64;  // channels per pass over a tile: the scratch tiles stay in L1/L2

constexpr int kIn = 6, kOut = 4;  // per dimension: a tile's input pixels (also its transformed positions), outputs

// B^T of F(4x4, 3x3) (Lavin & Gray, 2016), on six vectors of n channels.
void input_transform_1d(const float* const in[kIn], float* const out[kIn], int n) {
    const float *__restrict__ d0 = in[0], *__restrict__ d1 = in[1], *__restrict__ d2 = in[2];
    const float *__restrict__ d3 = in[3], *__restrict__ d4 = in[4], *__restrict__ d5 = in[5];
    float *__restrict__ o0 = out[0], *__restrict__ o1 = out[1], *__restrict__ o2 = out[2];
    float *__restrict__ o3 = out[3], *__restrict__ o4 = out[4], *__restrict__ o5 = out[5];
    for (int c = 0; c < n; ++c) {
        o0[c] = 4.f * d0[c] - 5.f * d2[c] + d4[c];
        o1[c] = -4.f * (d1[c] + d2[c]) + d3[c] + d4[c];
        o2[c] = 4.f * (d1[c] - d2[c]) - d3[c] + d4[c];
        o3[c] = 2.f * (d3[c] - d1[c]) - d2[c] + d4[c];
        o4[c] = 2.f * (d1[c] - d3[c]) - d2[c] + d4[c];
        o5[c] = 4.f * d1[c] - 5.f * d3[c] + d5[c];
    }
}

// A^T of F(4x4, 3x3): six vectors of products to four vectors of outputs.
void output_transform_1d(const float* const in[kIn], float* const out[kOut], int n) {
    const float *__restrict__ m0 = in[0], *__restrict__ m1 = in[1], *__restrict__ m2 = in[2];
    const float *__restrict__ m3 = in[3], *__restrict__ m4 = in[4], *__restrict__ m5 = in[5];
    float *__restrict__ o0 = out[0], *__restrict__ o1 = out[1];
    float *__restrict__ o2 = out[2], *__restrict__ o3 = out[3];
    for (int c = 0; c < n; ++c) {
        const float sum12 = m1[c] + m2[c], diff12 = m1[c] - m2[c];
        const float sum34 = m3[c] + m4[c], diff34 = m3[c] - m4[c];
        o0[c] = m0[c] + sum12 + sum34;
        o1[c] = diff12 + 2.f * diff34;
        o2[c] = sum12 + 4.f * sum34;
        o3[c] = diff12 + 8.f * diff34 + m5[c];
    }
}

struct Geometry {
    int64_t height, width, tiles_y, tiles_x;
    int64_t image(int64_t tile) const { return tile / (tiles_y * tiles_x); }
    int64_t tile_y(int64_t tile) const { return (tile / tiles_x) % tiles_y; }
    int64_t tile_x(int64_t tile) const { return tile % tiles_x; }
};

// One input tile (6x6 pixels from (4 ty - 1, 4 tx - 1), zeros outside the image) to V[:, slot, :].
void transform_input_tile(const float* x, int64_t channels, const Geometry& g, int64_t tile, float* v,
                          int64_t slot, int64_t slots) {
    alignas(64) float pixels[kIn * kIn][kBlock];
    alignas(64) float columns[kIn * kIn][kBlock];
    const float zeros[kBlock] = {};
    const int64_t n = g.image(tile), y0 = 4 * g.tile_y(tile) - 1, x0 = 4 * g.tile_x(tile) - 1;
    for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
        const int nc = (int)std::min<int64_t>(kBlock, channels - c0);
        for (int i = 0; i < kIn; ++i) {
            for (int j = 0; j < kIn; ++j) {
                const int64_t y = y0 + i, xx = x0 + j;
                const bool inside = y >= 0 && y < g.height && xx >= 0 && xx < g.width;
                std::copy_n(inside ? x + ((n * g.height + y) * g.width + xx) * channels + c0 : zeros, nc,
                            pixels[i * kIn + j]);
            }
        }
        const float* in[kIn];
        float* out[kIn];
        for (int j = 0; j < kIn; ++j) {  // down each column, then along each transformed row
            for (int k = 0; k < kIn; ++k) in[k] = pixels[k * kIn + j], out[k] = columns[k * kIn + j];
            input_transform_1d(in, out, nc);
        }
        for (int i = 0; i < kIn; ++i) {
            for (int k = 0; k < kIn; ++k)
                in[k] = columns[i * kIn + k], out[k] = v + ((i * kIn + k) * slots + slot) * channels + c0;
            input_transform_1d(in, out, nc);
        }
    }
}

// M[:, slot, :] to one 4x4 output tile from (4 ty, 4 tx), cropped at the image's edge.
void transform_output_tile(const float* m, int64_t slot, int64_t slots, int64_t channels, const Geometry& g,
                           int64_t tile, float* y) {
    alignas(64) float rows[kOut * kIn][kBlock];
    alignas(64) float outputs[kOut * kOut][kBlock];
    const int64_t n = g.image(tile), y0 = 4 * g.tile_y(tile), x0 = 4 * g.tile_x(tile);
    for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
        const int nc = (int)std::min<int64_t>(kBlock, channels - c0);
        const float* in[kIn];
        float* out[kOut];
        for (int j = 0; j < kIn; ++j) {
            for (int k = 0; k < kIn; ++k) in[k] = m + ((k * kIn + j) * slots + slot) * channels + c0;
            for (int k = 0; k < kOut; ++k) out[k] = rows[k * kIn + j];
            output_transform_1d(in, out, nc);
        }
        for (int i = 0; i < kOut; ++i) {
            for (int k = 0; k < kIn; ++k) in[k] = rows[i * kIn + k];
            for (int k = 0; k < kOut; ++k) out[k] = outputs[i * kOut + k];
            output_transform_1d(in, out, nc);
        }
        for (int i = 0; i < kOut && y0 + i < g.height; ++i)
            for (int j = 0; j < kOut && x0 + j < g.width; ++j)
                std::copy_n(outputs[i * kOut + j], nc,
                            y + ((n * g.height + y0 + i) * g.width + x0 + j) * channels + c0);
    }
}

}  // namespace

// x: [N, I, H, W] float32 (any memory format); u: [36, I, O], the transformed weights. Returns the stride-1,
// zero-padded ("same") 3x3 convolution [N, O, H, W] in channels-last memory format.
torch::Tensor conv3x3(torch::Tensor x, torch::Tensor u, int64_t tiles_per_task) {
    constexpr int64_t positions = kIn * kIn;
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() == 4,
                "x: float32 NCHW on the CPU");
    TORCH_CHECK(u.scalar_type() == torch::kFloat32 && u.dim() == 3 && u.size(0) == positions && u.size(1) == x.size(1),
                "u: [36, in_channels, out_channels] float32");
    TORCH_CHECK(tiles_per_task >= 1, "tiles_per_task must be positive");
    const int64_t batch = x.size(0), in_channels = x.size(1), out_channels = u.size(2);
    const int64_t height = x.size(2), width = x.size(3);
    const Geometry g{height, width, (height + 3) / 4, (width + 3) / 4};
    const int64_t tiles = batch * g.tiles_y * g.tiles_x;
    const auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
    const auto uc = u.contiguous();
    auto y = torch::empty({batch, out_channels, height, width},
                          x.options().memory_format(at::MemoryFormat::ChannelsLast));
    const float* xp = xc.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const int64_t tasks = (tiles + tiles_per_task - 1) / tiles_per_task;
    at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
        // Inside a parallel region ATen's matrix products run on this thread alone.
        auto v = torch::zeros({positions, tiles_per_task, in_channels}, xc.options());
        auto m = torch::empty({positions, tiles_per_task, out_channels}, xc.options());
        for (int64_t task = begin; task < end; ++task) {
            const int64_t first = task * tiles_per_task, count = std::min(tiles_per_task, tiles - first);
            for (int64_t t = 0; t < count; ++t)
                transform_input_tile(xp, in_channels, g, first + t, v.data_ptr<float>(), t, tiles_per_task);
            at::bmm_out(m, v, uc);
            for (int64_t t = 0; t < count; ++t)
                transform_output_tile(m.data_ptr<float>(), t, tiles_per_task, out_channels, g, first + t, yp);
        }
    });
    return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("conv3x3", &conv3x3, "Winograd F(4x4, 3x3) 'same' convolution of channels-last float32 tensors");
}
