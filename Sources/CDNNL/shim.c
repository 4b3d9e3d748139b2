// The bridge declared in include/mr2ct_dnnl.h, on oneDNN's C API (2.6).
#include "mr2ct_dnnl.h"

#include <oneapi/dnnl/dnnl.h>
// libgomp (oneDNN's runtime): the calling thread's team size for the next parallel regions.
extern void omp_set_num_threads(int);
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/// The oneDNN functions the bridge calls, each reached as `api.NAME` for `dnnl_NAME`.
#define MR2CT_DNNL_FUNCTIONS(X) \
    X(convolution_backward_data_desc_init) \
    X(convolution_backward_weights_desc_init) \
    X(convolution_forward_desc_init) \
    X(deconvolution_backward_data_desc_init) \
    X(deconvolution_backward_weights_desc_init) \
    X(deconvolution_forward_desc_init) \
    X(engine_create) \
    X(memory_create) \
    X(memory_desc_equal) \
    X(memory_desc_get_size) \
    X(memory_desc_init_by_tag) \
    X(memory_destroy) \
    X(memory_set_data_handle) \
    X(primitive_attr_create) \
    X(primitive_attr_set_scratchpad_mode) \
    X(primitive_create) \
    X(primitive_desc_create) \
    X(primitive_desc_destroy) \
    X(primitive_desc_query) \
    X(primitive_desc_query_md) \
    X(primitive_destroy) \
    X(primitive_execute) \
    X(reorder_primitive_desc_create) \
    X(stream_create) \
    X(stream_destroy) \
    X(stream_wait)

/// oneDNN (libdnnl.so.2, with its OpenMP runtime libgomp) is opened at the first convolution that asks for it, not
/// linked: libgomp reads its environment once, in its own constructor, which runs before any code of this program
/// when the library is linked, so its spin could not be set (`set_openmp_spin`). Without the library every
/// primitive is refused (`mr2ct_dnnl_create` returns NULL) and MR2CT's own kernels run every pass.
static struct {
    #define FIELD(name) __typeof__(&dnnl_##name) name;
    MR2CT_DNNL_FUNCTIONS(FIELD)
    #undef FIELD
    __typeof__(&omp_set_num_threads) omp_set_num_threads;
} api;

/// libgomp's spin before an idle worker thread sleeps. oneDNN's forward passes outside a fork run on an OpenMP team
/// of all compute threads; after each parallel region libgomp's default (OMP_WAIT_POLICY unset: 300 000 spins,
/// milliseconds) kept the team's worker spinning on the core that MR2CT's own kernels (Winograd, normalisation,
/// the transposed convolutions) were to run on next: 13–15 % of a 128² f32 inference's samples were in libgomp
/// (`perf`, 2026-12-03, Zen 4). 10 000 spins keep the team warm between consecutive oneDNN layers and hand the core
/// back soon after: 128² inference 0.0356 → 0.0303 s per slice in f32, medians of 5 alternating runs; bf16, whose
/// layers all run on oneDNN, 0.0234 → 0.0240, within noise, where OMP_WAIT_POLICY=PASSIVE was slower (0.0201 →
/// 0.0224–0.0245). Set by a constructor, while the program is single-threaded and before libgomp is loaded; a
/// user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY is left as it is (and inherited, as this one, by child processes).
__attribute__((constructor))
static void set_openmp_spin(void) {
    if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) setenv("GOMP_SPINCOUNT", "10000", 0);
}

static int load_library(void) {
    void *library = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!library) return 0;
    #define LOAD(name) if (!(api.name = (__typeof__(api.name))dlsym(library, "dnnl_" #name))) return 0;
    MR2CT_DNNL_FUNCTIONS(LOAD)
    #undef LOAD
    // libgomp, loaded with oneDNN as its dependency.
    return (api.omp_set_num_threads = (__typeof__(api.omp_set_num_threads))dlsym(library, "omp_set_num_threads")) != NULL;
}

static dnnl_engine_t engine;
static int engine_ok;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

/// Every primitive and reorder is built with a user-provided scratchpad (user mode), placed in the call's
/// transient buffer: oneDNN's library-managed scratchpad is shared between primitives and not safe when two of
/// MR2CT's chains call oneDNN at once.
static dnnl_primitive_attr_t own_scratchpad;

/// The buffers a pass needs only while it runs — the blocked-layout copies of its activations (source,
/// destination, gradients), its scratchpad and its reorders' scratchpads — are not held per primitive: a call
/// takes one transient buffer from a pool for its duration (`take_transient`), grown to what it needs, and gives
/// it back, so there are as many as calls ever ran at once (two: MR2CT's two chains). Held per primitive, they
/// added about 590 MB to a 256² CycleGAN training step (one copy per layer, pass and chain). Until 2026-12-03 they
/// were one buffer per calling thread, and conversion's per-core calls run on whichever of libdispatch's worker
/// threads is free: a third thread's 24 MB copy (256², ngf 64) stayed with it, 403 → 425 MB of peak RSS in one
/// whole-volume run. Persistent per primitive: the reordered weights (reused while the weights are unchanged) and
/// the weight-gradient sum.
typedef struct transient {
    void *base;
    size_t capacity;
    struct transient *next;
} transient;

static transient *idle_transients;
static pthread_mutex_t transient_lock = PTHREAD_MUTEX_INITIALIZER;

/// A transient buffer of at least `bytes` (64-byte aligned) for one call, from the pool or new; NULL when out of
/// memory. The pool's largest buffer first: buffers then settle at the sizes the concurrent calls need.
static transient *take_transient(size_t bytes) {
    pthread_mutex_lock(&transient_lock);
    transient *t = idle_transients;
    if (t) idle_transients = t->next;
    pthread_mutex_unlock(&transient_lock);
    if (!t && !(t = calloc(1, sizeof *t))) return NULL;
    if (t->capacity < bytes) {
        free(t->base);
        t->capacity = 0;
        t->base = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!t->base) { free(t); return NULL; }
        t->capacity = bytes;
    }
    return t;
}

/// Returns `t` (taken by `take_transient`, or NULL) to the pool, keeping the pool ordered largest first.
static void give_back_transient(transient *t) {
    if (!t) return;
    pthread_mutex_lock(&transient_lock);
    transient **at = &idle_transients;
    while (*at && (*at)->capacity > t->capacity) at = &(*at)->next;
    t->next = *at;
    *at = t;
    pthread_mutex_unlock(&transient_lock);
}

static void make_engine(void) {
    engine_ok = load_library() &&
                api.engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
                api.primitive_attr_create(&own_scratchpad) == dnnl_success &&
                api.primitive_attr_set_scratchpad_mode(own_scratchpad, dnnl_scratchpad_mode_user) == dnnl_success;
}

/// A scratchpad memory object for `pd` when it needs one (NULL otherwise), without storage: its data handle is
/// set into the call's transient buffer; its size goes to `size`.
static int make_scratchpad(dnnl_primitive_desc_t pd, dnnl_memory_t *scratch, size_t *size) {
    const dnnl_memory_desc_t *smd = api.primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *scratch = NULL;
    *size = 0;
    if (!smd || smd->ndims == 0 || api.memory_desc_get_size(smd) == 0) return 0;
    if (api.memory_create(scratch, smd, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    *size = api.memory_desc_get_size(smd);
    return 0;
}

/// One operand of a pass: the layout the primitive wants, and when it differs from the caller's plain layout, a
/// buffer in that layout with the reorder between the two.
typedef struct {
    dnnl_memory_t user;      // the caller's plain buffer (its handle set per call)
    dnnl_memory_t inner;     // the primitive's buffer (== user when the layouts agree)
    dnnl_primitive_t reorder; // user -> inner for inputs, inner -> user for outputs; NULL when not needed
    dnnl_memory_t reorder_scratch;
    size_t inner_size;        // bytes of `inner` in the transient buffer (0: inner is the user's or persistent)
    size_t reorder_scratch_size;
} operand;

typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;
    size_t scratch_size;
    operand src, weights, dst;  // fwd: src, weights, dst; bwd-data: diff_dst (src), weights, diff_src (dst);
                                // bwd-weights: src, diff_dst (weights slot), diff_weights (dst)
    dnnl_memory_t bias;
    uint64_t weights_version;
    int weights_valid;
} pass;

struct mr2ct_dnnl_conv {
    mr2ct_dnnl_shape shape;
    int threads;
    pass fwd, bwd_data, bwd_weights;
    dnnl_stream_t stream;
    pthread_mutex_t lock;
    float *weights_sum;  // bwd-weights result in the plain layout, added to the caller's gradient
    int64_t bytes;
};

static void release_operand(operand *o) {
    if (o->reorder) api.primitive_destroy(o->reorder);
    if (o->reorder_scratch) api.memory_destroy(o->reorder_scratch);
    if (o->inner && o->inner != o->user) api.memory_destroy(o->inner);
    if (o->user) api.memory_destroy(o->user);
    memset(o, 0, sizeof *o);
}

static void release_pass(pass *p) {
    release_operand(&p->src);
    release_operand(&p->weights);
    release_operand(&p->dst);
    if (p->bias) api.memory_destroy(p->bias);
    if (p->scratch) api.memory_destroy(p->scratch);
    if (p->prim) api.primitive_destroy(p->prim);
    if (p->pd) api.primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
}

/// Sets up `o` for the primitive argument `arg` of `pd` against the plain layout `plain`; `input` says which way
/// the reorder goes; `persistent`: the blocked copy is kept between calls (the reordered weights), else it lives
/// in the call's transient buffer.
static int make_operand(mr2ct_dnnl_conv *c, operand *o, dnnl_primitive_desc_t pd, int arg,
                        const dnnl_memory_desc_t *plain, int input, int persistent) {
    const dnnl_memory_desc_t *want = api.primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!want || api.memory_create(&o->user, plain, engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (api.memory_desc_equal(want, plain)) {
        o->inner = o->user;
        return 0;
    }
    if (api.memory_create(&o->inner, want, engine, persistent ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE) != dnnl_success) return -1;
    if (persistent) c->bytes += (int64_t)api.memory_desc_get_size(want);
    else o->inner_size = api.memory_desc_get_size(want);
    dnnl_primitive_desc_t rpd;
    dnnl_status_t s = input ? api.reorder_primitive_desc_create(&rpd, plain, engine, want, engine, own_scratchpad)
                            : api.reorder_primitive_desc_create(&rpd, want, engine, plain, engine, own_scratchpad);
    if (s != dnnl_success) return -1;
    if (make_scratchpad(rpd, &o->reorder_scratch, &o->reorder_scratch_size)) {
        api.primitive_desc_destroy(rpd);
        return -1;
    }
    s = api.primitive_create(&o->reorder, rpd);
    api.primitive_desc_destroy(rpd);
    return s == dnnl_success ? 0 : -1;
}

static int run_reorder(mr2ct_dnnl_conv *c, operand *o, int input) {
    if (!o->reorder) return 0;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, input ? o->user : o->inner}, {DNNL_ARG_TO, input ? o->inner : o->user},
                               {DNNL_ARG_SCRATCHPAD, o->reorder_scratch}};
    return api.primitive_execute(o->reorder, c->stream, o->reorder_scratch ? 3 : 2, args) == dnnl_success ? 0 : -1;
}

static int finish_pass(mr2ct_dnnl_conv *c, pass *p) {
    if (make_scratchpad(p->pd, &p->scratch, &p->scratch_size)) return -1;
    return api.primitive_create(&p->prim, p->pd) == dnnl_success ? 0 : -1;
}

mr2ct_dnnl_conv *mr2ct_dnnl_create(const mr2ct_dnnl_shape *shape, int passes, int threads) {
    pthread_once(&engine_once, make_engine);
    if (!engine_ok) return NULL;
    const mr2ct_dnnl_shape s = *shape;
    if (s.batch < 1 || s.in_channels < 1 || s.out_channels < 1 || s.kernel < 1 || s.stride < 1 || s.in_height < 1 ||
        s.in_width < 1 || s.out_height < 1 || s.out_width < 1) return NULL;  // empty tensors: the caller's own kernels
    mr2ct_dnnl_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->shape = s;
    c->threads = threads < 1 ? 1 : threads;
    api.omp_set_num_threads(c->threads);
    pthread_mutex_init(&c->lock, NULL);
    if (api.stream_create(&c->stream, engine, dnnl_stream_default_flags) != dnnl_success) goto fail;

    dnnl_data_type_t dt = s.precision == MR2CT_DNNL_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t src_dims = {s.batch, s.in_channels, s.in_height, s.in_width};
    dnnl_dims_t dst_dims = {s.batch, s.out_channels, s.out_height, s.out_width};
    // oneDNN's weights are (output channels, input channels, k, k) of the primitive; PyTorch's ConvTranspose2d
    // stores (input, output, k, k), which is oneDNN's iohw.
    dnnl_dims_t w_dims = {s.out_channels, s.in_channels, s.kernel, s.kernel};
    dnnl_dims_t b_dims = {s.out_channels};
    dnnl_dims_t strides = {s.stride, s.stride}, pad_l = {s.pad_begin, s.pad_begin}, pad_r = {s.pad_end, s.pad_end};
    dnnl_memory_desc_t src_any, dst_any, w_any, wf_any, b_md, src_plain, dst_plain, w_plain;
    dnnl_format_tag_t w_tag = s.transposed ? dnnl_iohw : dnnl_oihw;
    if (api.memory_desc_init_by_tag(&src_any, 4, src_dims, dt, dnnl_format_tag_any) != dnnl_success ||
        api.memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        api.memory_desc_init_by_tag(&w_any, 4, w_dims, dt, dnnl_format_tag_any) != dnnl_success ||
        api.memory_desc_init_by_tag(&wf_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        api.memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_x) != dnnl_success ||
        api.memory_desc_init_by_tag(&src_plain, 4, src_dims, dnnl_f32, dnnl_nchw) != dnnl_success ||
        api.memory_desc_init_by_tag(&dst_plain, 4, dst_dims, dnnl_f32, dnnl_nchw) != dnnl_success ||
        api.memory_desc_init_by_tag(&w_plain, 4, w_dims, dnnl_f32, w_tag) != dnnl_success) goto fail;
    // bf16 backward-data: the gradient arriving (diff_dst) is bf16, the one leaving (diff_src) f32.
    dnnl_memory_desc_t ddst_any = dst_any, dsrc_any = src_any;
    if (dt == dnnl_bf16) {
        api.memory_desc_init_by_tag(&ddst_any, 4, dst_dims, dnnl_bf16, dnnl_format_tag_any);
        api.memory_desc_init_by_tag(&dsrc_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any);
    }

    // The forward descriptor is needed as the hint of the backward passes.
    union { dnnl_convolution_desc_t conv; dnnl_deconvolution_desc_t deconv; } fd, bd, wd;
    dnnl_status_t st = s.transposed
        ? api.deconvolution_forward_desc_init(&fd.deconv, dnnl_forward_training, dnnl_deconvolution_direct, &src_any,
                                               &w_any, s.has_bias ? &b_md : NULL, &dst_any, strides, pad_l, pad_r)
        : api.convolution_forward_desc_init(&fd.conv, dnnl_forward_training, dnnl_convolution_direct, &src_any,
                                             &w_any, s.has_bias ? &b_md : NULL, &dst_any, strides, pad_l, pad_r);
    if (st != dnnl_success || api.primitive_desc_create(&c->fwd.pd, &fd, own_scratchpad, engine, NULL) != dnnl_success) goto fail;

    if (passes & MR2CT_DNNL_FORWARD) {
        pass *p = &c->fwd;
        if (make_operand(c, &p->src, p->pd, DNNL_ARG_SRC, &src_plain, 1, 0) ||
            make_operand(c, &p->weights, p->pd, DNNL_ARG_WEIGHTS, &w_plain, 1, 1) ||
            make_operand(c, &p->dst, p->pd, DNNL_ARG_DST, &dst_plain, 0, 0)) goto fail;
        if (s.has_bias && api.memory_create(&p->bias, &b_md, engine, DNNL_MEMORY_NONE) != dnnl_success) goto fail;
        if (finish_pass(c, p)) goto fail;
    }
    if (passes & MR2CT_DNNL_BACKWARD_DATA) {
        pass *p = &c->bwd_data;
        st = s.transposed
            ? api.deconvolution_backward_data_desc_init(&bd.deconv, dnnl_deconvolution_direct, &dsrc_any, &w_any,
                                                         &ddst_any, strides, pad_l, pad_r)
            : api.convolution_backward_data_desc_init(&bd.conv, dnnl_convolution_direct, &dsrc_any, &w_any, &ddst_any,
                                                       strides, pad_l, pad_r);
        if (st != dnnl_success || api.primitive_desc_create(&p->pd, &bd, own_scratchpad, engine, c->fwd.pd) != dnnl_success) goto fail;
        if (make_operand(c, &p->src, p->pd, DNNL_ARG_DIFF_DST, &dst_plain, 1, 0) ||
            make_operand(c, &p->weights, p->pd, DNNL_ARG_WEIGHTS, &w_plain, 1, 1) ||
            make_operand(c, &p->dst, p->pd, DNNL_ARG_DIFF_SRC, &src_plain, 0, 0) || finish_pass(c, p)) goto fail;
    }
    if (passes & MR2CT_DNNL_BACKWARD_WEIGHTS) {
        pass *p = &c->bwd_weights;
        st = s.transposed
            ? api.deconvolution_backward_weights_desc_init(&wd.deconv, dnnl_deconvolution_direct, &src_any, &wf_any,
                                                            NULL, &ddst_any, strides, pad_l, pad_r)
            : api.convolution_backward_weights_desc_init(&wd.conv, dnnl_convolution_direct, &src_any, &wf_any, NULL,
                                                          &ddst_any, strides, pad_l, pad_r);
        if (st != dnnl_success || api.primitive_desc_create(&p->pd, &wd, own_scratchpad, engine, c->fwd.pd) != dnnl_success) goto fail;
        if (make_operand(c, &p->src, p->pd, DNNL_ARG_SRC, &src_plain, 1, 0) ||
            make_operand(c, &p->weights, p->pd, DNNL_ARG_DIFF_DST, &dst_plain, 1, 0) ||
            make_operand(c, &p->dst, p->pd, DNNL_ARG_DIFF_WEIGHTS, &w_plain, 0, 0) || finish_pass(c, p)) goto fail;
        size_t n = (size_t)s.out_channels * s.in_channels * s.kernel * s.kernel;
        c->weights_sum = malloc(n * sizeof(float));
        if (!c->weights_sum) goto fail;
        c->bytes += (int64_t)(n * sizeof(float));
    }
    if (!(passes & MR2CT_DNNL_FORWARD)) {
        api.primitive_desc_destroy(c->fwd.pd);
        c->fwd.pd = NULL;
    }
    return c;
fail:
    mr2ct_dnnl_destroy(c);
    return NULL;
}

void mr2ct_dnnl_destroy(mr2ct_dnnl_conv *c) {
    if (!c) return;
    release_pass(&c->fwd);
    release_pass(&c->bwd_data);
    release_pass(&c->bwd_weights);
    if (c->stream) api.stream_destroy(c->stream);
    free(c->weights_sum);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *mr2ct_dnnl_implementation(const mr2ct_dnnl_conv *c, int which) {
    const pass *p = which == MR2CT_DNNL_FORWARD ? &c->fwd : which == MR2CT_DNNL_BACKWARD_DATA ? &c->bwd_data
                  : &c->bwd_weights;
    const char *info = "";
    if (p->pd) api.primitive_desc_query(p->pd, dnnl_query_impl_info_str, 0, &info);
    return info ? info : "";
}

int64_t mr2ct_dnnl_bytes(const mr2ct_dnnl_conv *c) { return c->bytes; }

int mr2ct_dnnl_transient_buffers(int64_t *bytes) {
    int count = 0;
    int64_t total = 0;
    pthread_mutex_lock(&transient_lock);
    for (transient *t = idle_transients; t; t = t->next) { count++; total += (int64_t)t->capacity; }
    pthread_mutex_unlock(&transient_lock);
    if (bytes) *bytes = total;
    return count;
}

/// Points the transient memory objects of `p` (blocked activation copies, scratchpads) into a transient buffer
/// taken for this call (`*taken`, to be given back; NULL when the pass needs none), each at a 64-byte-aligned offset.
static int place_transients(pass *p, transient **taken) {
    operand *ops[3] = {&p->src, &p->weights, &p->dst};
    size_t total = (p->scratch_size + 63) & ~(size_t)63;
    for (int i = 0; i < 3; i++) total += ((ops[i]->inner_size + 63) & ~(size_t)63) + ((ops[i]->reorder_scratch_size + 63) & ~(size_t)63);
    *taken = NULL;
    if (total == 0) return 0;
    transient *t = take_transient(total);
    if (!t) return -1;
    *taken = t;
    char *base = t->base;
    size_t offset = 0;
    #define PLACE(memory, size) do { if (size) { api.memory_set_data_handle(memory, base + offset); \
                                                offset += ((size) + 63) & ~(size_t)63; } } while (0)
    PLACE(p->scratch, p->scratch_size);
    for (int i = 0; i < 3; i++) {
        PLACE(ops[i]->inner, ops[i]->inner_size);
        PLACE(ops[i]->reorder_scratch, ops[i]->reorder_scratch_size);
    }
    #undef PLACE
    return 0;
}

/// Runs pass `p`: inputs `a` (src / diff_dst) and `b` (weights / diff_dst) reordered in as needed, the
/// primitive, the output reordered out into `out`.
static int run_pass(mr2ct_dnnl_conv *c, pass *p, int a_arg, const float *a, int b_arg, const float *b,
                    int reorder_b, const float *bias, int out_arg, float *out) {
    api.omp_set_num_threads(c->threads);
    api.memory_set_data_handle(p->src.user, (void *)a);
    api.memory_set_data_handle(p->weights.user, (void *)b);
    api.memory_set_data_handle(p->dst.user, out);
    if (run_reorder(c, &p->src, 1)) return -1;
    if (reorder_b && run_reorder(c, &p->weights, 1)) return -1;
    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){a_arg, p->src.inner};
    args[n++] = (dnnl_exec_arg_t){b_arg, p->weights.inner};
    args[n++] = (dnnl_exec_arg_t){out_arg, p->dst.inner};
    if (bias && p->bias) {
        api.memory_set_data_handle(p->bias, (void *)bias);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bias};
    }
    if (p->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    if (api.primitive_execute(p->prim, c->stream, n, args) != dnnl_success) return -1;
    if (run_reorder(c, &p->dst, 0)) return -1;
    return api.stream_wait(c->stream) == dnnl_success ? 0 : -1;
}

static int execute(mr2ct_dnnl_conv *c, pass *p, int a_arg, const float *a, int b_arg, const float *b,
                   int reorder_b, const float *bias, int out_arg, float *out) {
    if (!p->prim) return -1;
    transient *t;
    if (place_transients(p, &t)) return -1;
    int r = run_pass(c, p, a_arg, a, b_arg, b, reorder_b, bias, out_arg, out);
    give_back_transient(t);
    return r;
}

/// Whether the cached reordered weights of `p` are stale (and marks them fresh for `version`).
static int weights_stale(pass *p, uint64_t version) {
    if (!p->weights.reorder) return 0;
    if (p->weights_valid && p->weights_version == version) return 0;
    p->weights_version = version;
    p->weights_valid = 1;
    return 1;
}

int mr2ct_dnnl_forward(mr2ct_dnnl_conv *c, const float *src, const float *weights, uint64_t version,
                       const float *bias, float *dst) {
    pthread_mutex_lock(&c->lock);
    int stale = weights_stale(&c->fwd, version);
    int r = execute(c, &c->fwd, DNNL_ARG_SRC, src, DNNL_ARG_WEIGHTS, weights, stale, bias, DNNL_ARG_DST, dst);
    if (r) c->fwd.weights_valid = 0;
    pthread_mutex_unlock(&c->lock);
    return r;
}

int mr2ct_dnnl_backward_data(mr2ct_dnnl_conv *c, const float *diff_dst, const float *weights, uint64_t version,
                             float *diff_src) {
    pthread_mutex_lock(&c->lock);
    int stale = weights_stale(&c->bwd_data, version);
    int r = execute(c, &c->bwd_data, DNNL_ARG_DIFF_DST, diff_dst, DNNL_ARG_WEIGHTS, weights, stale, NULL,
                    DNNL_ARG_DIFF_SRC, diff_src);
    if (r) c->bwd_data.weights_valid = 0;
    pthread_mutex_unlock(&c->lock);
    return r;
}

int mr2ct_dnnl_backward_weights(mr2ct_dnnl_conv *c, const float *src, const float *diff_dst, float *diff_weights) {
    pthread_mutex_lock(&c->lock);
    int r = execute(c, &c->bwd_weights, DNNL_ARG_SRC, src, DNNL_ARG_DIFF_DST, diff_dst, 1, NULL,
                    DNNL_ARG_DIFF_WEIGHTS, c->weights_sum);
    if (r == 0) {
        size_t n = (size_t)c->shape.out_channels * c->shape.in_channels * c->shape.kernel * c->shape.kernel;
        for (size_t i = 0; i < n; i++) diff_weights[i] += c->weights_sum[i];
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}
