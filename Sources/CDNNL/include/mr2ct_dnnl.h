// MR2CT's thin bridge to oneDNN (Debian libdnnl-dev 2.6): 2-D convolutions and transposed convolutions on plain
// NCHW float buffers, forward, backward-data and backward-weights. No oneDNN type appears here: Swift sees an opaque
// handle and plain floats. oneDNN picks its blocked layouts (format_tag_any); the bridge keeps the reorders at the
// edges and caches the reordered weights until the caller says they changed.
#ifndef MR2CT_DNNL_H
#define MR2CT_DNNL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The arithmetic of a convolution: float32 throughout, or bfloat16 operands with float32 accumulation and
/// float32 results (oneDNN's bf16 kernels; only where the CPU has them).
typedef enum { MR2CT_DNNL_F32 = 0, MR2CT_DNNL_BF16 = 1 } mr2ct_dnnl_precision;

/// Which passes a handle is built for (a bit set).
enum { MR2CT_DNNL_FORWARD = 1, MR2CT_DNNL_BACKWARD_DATA = 2, MR2CT_DNNL_BACKWARD_WEIGHTS = 4 };

/// One convolution's geometry. `transposed` = 0: a convolution from `in` to `out`, weights
/// `out_channels × in_channels × k × k` (PyTorch Conv2d). `transposed` = 1: PyTorch ConvTranspose2d from `in` to
/// `out`, weights `in_channels × out_channels × k × k`, `pad_end` = padding − output_padding. Square kernels and
/// strides; zero padding `pad_begin` before and `pad_end` after in both spatial dimensions.
typedef struct {
    int transposed;
    int batch;
    int in_channels, in_height, in_width;
    int out_channels, out_height, out_width;
    int kernel, stride, pad_begin, pad_end;
    int has_bias;
    int precision;
} mr2ct_dnnl_shape;

typedef struct mr2ct_dnnl_conv mr2ct_dnnl_conv;

/// A convolution with its primitives for `passes`, run on `threads` OpenMP threads (oneDNN fixes its work split
/// when it builds a primitive, so a handle serves one thread count), or NULL when oneDNN has no implementation for
/// it on this CPU (e.g. bfloat16 without AVX512 BF16) or the shape is invalid.
mr2ct_dnnl_conv *mr2ct_dnnl_create(const mr2ct_dnnl_shape *shape, int passes, int threads);
void mr2ct_dnnl_destroy(mr2ct_dnnl_conv *conv);

/// The implementation oneDNN chose for a pass ("jit:avx2", "brgconv:avx512_core_bf16", ...), or "" if not built.
const char *mr2ct_dnnl_implementation(const mr2ct_dnnl_conv *conv, int pass);

/// dst = conv(src, weights) + bias. `weights_version` changes whenever the weights do (the reordered copy is made
/// again only then). Calls on one handle are serialised (it owns the reorder buffers). 0 on success.
int mr2ct_dnnl_forward(mr2ct_dnnl_conv *conv, const float *src, const float *weights, uint64_t weights_version,
                       const float *bias, float *dst);

/// diff_src = the gradient of the forward pass with respect to src (overwritten).
int mr2ct_dnnl_backward_data(mr2ct_dnnl_conv *conv, const float *diff_dst, const float *weights,
                             uint64_t weights_version, float *diff_src);

/// diff_weights += the gradient with respect to the weights (accumulated in float32, PyTorch's weight layout).
int mr2ct_dnnl_backward_weights(mr2ct_dnnl_conv *conv, const float *src, const float *diff_dst, float *diff_weights);

/// Bytes the handle holds (primitives' scratchpads and the reorder buffers).
int64_t mr2ct_dnnl_bytes(const mr2ct_dnnl_conv *conv);

/// The transient buffers calls have made (idle ones, between calls), and their bytes: as many as calls ran at once.
int mr2ct_dnnl_transient_buffers(int64_t *bytes);

#ifdef __cplusplus
}
#endif

#endif
