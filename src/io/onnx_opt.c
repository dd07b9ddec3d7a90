/* Load-time graph optimisation of an ONNX model for inference (no-grad
 * runs of cx_onnx_run; cortex/onnx.h, cx_onnx_set_optimize):
 *
 *   - BatchNormalization folded into the Conv before it: when the BN's input
 *     is the output of a Conv used by nothing else (no other node, not a
 *     graph output) and the Conv's weight and bias and the BN's four tensors
 *     are F32 initialisers of the right shapes, the Conv runs with
 *         W'[o] = W[o] * s[o],  b'[o] = beta[o] + (b[o] - mean[o]) * s[o],
 *         s[o] = scale[o] / sqrt(var[o] + eps)      (computed in double)
 *     and the BN node is skipped (its output is the Conv's);
 *   - Relu fused into the node before it: when the Relu's input is used by
 *     nothing else and comes from an op whose output is a new tensor (Conv,
 *     Gemm, Add, Sub, Mul, Div, BatchNormalization), that node clamps its
 *     output in place and the Relu is skipped (a residual Add + Relu too);
 *   - an Add writes its sum (and fused Relu) into one of its operands when
 *     nothing else reads that operand's tensor and the op that made it
 *     made it new (Conv, Gemm, Add, Sub, Mul, Div, BatchNormalization),
 *     operands of the same shape at run time: a residual network's sums
 *     then take no new memory, so more of its activations stay in cache.
 *
 *   - the weights of the direct convolutions are packed into register-tile
 *     order once (src/nn/conv_pack.h) instead of on every run.
 *
 * The plan is made once at load (per-node notes beside the graph; the graph
 * itself is not changed) and used only when grad mode is off: a recorded
 * run needs every node's own op for the gradients. The folded weights are
 * derived from the initialisers, which are the model's parameters and can
 * be changed (fine-tuning, or written in place through CX_F): they (and the
 * packed weights) are derived again before the next no-grad run after a run
 * in grad mode, after cx_onnx_params or cx_onnx_set_optimize, and whenever
 * a fingerprint of the parameters' bytes, taken at the start of each
 * no-grad run, differs. The fingerprint is taken only once the parameters
 * can be reached from outside: after a call of cx_onnx_params (the caller
 * may keep the pointers and write through them later), a run in grad mode,
 * or a run one of whose outputs shares memory with a parameter (an output
 * that is an initialiser, or a view of one). Before that, nothing but the
 * model itself holds them, and an inference-only program does not pay for
 * reading every weight on each run (the small ResNet's 700 kB did not stay
 * in a 1 MB L2 cache beside its packed copy: 4% of a batch-1 run). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/onnx.h"
#include "onnx_internal.h"
#include "../tensor/internal.h"
#include "../nn/conv_pack.h"

typedef struct {
    int skip;         /* not run: its output 0 is the value src */
    int src;
    int relu;         /* ReLU in place on output 0 after the run */
    int bn;           /* Conv: the BN node folded into it, else -1 */
    cx_tensor *w, *b; /* Conv with a folded BN: inputs 1 and 2 */
    int inplace;      /* Add: 1 + the operand it writes its sum into, else 0 */
} opt_node;

struct onnx_opt {
    int on, dirty, n_skipped;
    int exposed;    /* the parameters can be reached from outside: fingerprint every run */
    uint64_t print; /* fingerprint of the parameters the plan was derived from */
    opt_node *node;
    cx_conv_pack *pack; /* convolution weights packed once (conv_pack.h) */
};

static bool is_op(const cx_onnx_model *m, int k, const char *name) {
    const onnx_node *nd = &m->nodes[k];
    return nd->op >= 0 && !nd->unsupported && !strcmp(cx_onnx_op_at(nd->op)->name, name);
}

/* the F32 initialiser of value id (NULL if it is none) */
static cx_tensor *f32_init(const cx_onnx_model *m, int id) {
    if (id < 0 || m->values[id].producer != -2) return NULL;
    cx_tensor *t = m->values[id].init;
    return t && t->dtype == CX_F32 ? t : NULL;
}

static bool vec_of(const cx_tensor *t, int n) { return t && t->ndim == 1 && t->shape[0] == n; }

/* node k's output 0 is a new tensor (not a view of an input or an initialiser) */
static bool makes_new(const cx_onnx_model *m, int k) {
    static const char *const ops[] = {"Conv", "Gemm", "Add", "Sub", "Mul", "Div", "BatchNormalization"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (is_op(m, k, ops[i])) return true;
    return false;
}

/* W', b' of conv k from its weight, bias and BN node bn (shapes checked at build) */
static void fold(cx_onnx_model *m, int k, opt_node *o) {
    const onnx_node *cv = &m->nodes[k], *bn = &m->nodes[o->bn];
    const cx_tensor *w = f32_init(m, cv->in[1]);
    const cx_tensor *b = cv->n_in > 2 ? f32_init(m, cv->in[2]) : NULL;
    const float *sc = CX_F(f32_init(m, bn->in[1])), *be = CX_F(f32_init(m, bn->in[2]));
    const float *mu = CX_F(f32_init(m, bn->in[3])), *var = CX_F(f32_init(m, bn->in[4]));
    const int O = w->shape[0];
    const int64_t per = w->numel / (O ? O : 1);
    for (int c = 0; c < O; c++) {
        const double s = (double)sc[c] / sqrt((double)var[c] + (double)bn->a.eps);
        for (int64_t j = 0; j < per; j++)
            CX_F(o->w)[c * per + j] = (float)((double)CX_F(w)[c * per + j] * s);
        CX_F(o->b)[c] = (float)((double)be[c] + ((b ? (double)CX_F(b)[c] : 0.0) - (double)mu[c]) * s);
    }
}

/* A fingerprint of every parameter's bytes: a caller may write into them
 * through CX_F at any time (a finite-difference check, a hand edit), with no
 * call that tells; a changed fingerprint makes the plan derive its folded
 * and packed weights again. Fletcher-style sums in 16 independent 32-bit
 * lanes (s += word, t += s: any single changed word changes s), which the
 * compiler vectorises (gcc, omp simd): about 7 us for the small ResNet's
 * 700 kB, 2.5-3.7% of its batch-1 run on AVX-512 (perf), the price of never
 * running on stale weights. */
static uint64_t fingerprint(const cx_onnx_model *m) {
    enum { L = 16 };
    uint32_t s[L] = {0}, t[L] = {0};
    for (int i = 0; i < m->params.n; i++) {
        const cx_tensor *p = m->params.t[i];
        const unsigned char *b = (const unsigned char *)p->data;
        const size_t n = (size_t)p->numel * cx_dtype_size(p->dtype);
        size_t j = 0;
        for (; j + 4 * L <= n; j += 4 * L) {
            CX_OMP(simd)
            for (int l = 0; l < L; l++) {
                uint32_t w;
                memcpy(&w, b + j + 4 * l, 4);
                s[l] += w;
                t[l] += s[l];
            }
        }
        for (; j < n; j++) {
            s[j % L] += b[j];
            t[j % L] += s[j % L];
        }
        s[0] += (uint32_t)n;
        t[0] += s[0];
    }
    uint64_t r = 0;
    for (int l = 0; l < L; l++) r = (r ^ ((uint64_t)t[l] << 32 | s[l])) * 0x9E3779B97F4A7C15ull;
    return r;
}

static void refresh(cx_onnx_model *m) {
    m->opt->print = fingerprint(m);
    for (int k = 0; k < m->n_nodes; k++)
        if (m->opt->node[k].bn >= 0) fold(m, k, &m->opt->node[k]);
    cx_conv_pack_clear(m->opt->pack);
    m->opt->dirty = 0;
}

void cx_onnx_opt_build(cx_onnx_model *m) {
    struct onnx_opt *op = cx_xmalloc(sizeof *op);
    memset(op, 0, sizeof *op);
    op->on = 1;
    op->pack = cx_conv_pack_new();
    op->node = cx_xmalloc(((size_t)m->n_nodes + 1) * sizeof *op->node);
    m->opt = op;
    for (int k = 0; k < m->n_nodes; k++) op->node[k] = (opt_node){0, -1, 0, -1, NULL, NULL, 0};
    /* uses of each value: node inputs and graph outputs */
    int *uses = cx_xmalloc(((size_t)m->n_values + 1) * sizeof *uses);
    memset(uses, 0, ((size_t)m->n_values + 1) * sizeof *uses);
    for (int k = 0; k < m->n_nodes; k++)
        for (int i = 0; i < m->nodes[k].n_in; i++)
            if (m->nodes[k].in[i] >= 0) uses[m->nodes[k].in[i]]++;
    for (int i = 0; i < m->n_outputs; i++) uses[m->output_ids[i]] += 2;
    /* the node computing each value (a skipped node's output: its source's) */
    int *comp = cx_xmalloc(((size_t)m->n_values + 1) * sizeof *comp);
    for (int i = 0; i < m->n_values; i++) comp[i] = m->values[i].producer >= 0 ? m->values[i].producer : -1;
    for (int k = 0; k < m->n_nodes; k++) {
        const onnx_node *nd = &m->nodes[k];
        if (nd->n_out < 1 || nd->out[0] < 0 || nd->n_in < 1 || nd->in[0] < 0) continue;
        const int x = nd->in[0], p = comp[x];
        if (p < 0 || uses[x] != 1 || op->node[p].relu) continue;
        if (is_op(m, k, "BatchNormalization") && is_op(m, p, "Conv") && m->values[x].producer == p &&
            op->node[p].bn < 0 && nd->n_out == 1) {
            const onnx_node *cv = &m->nodes[p];
            const cx_tensor *w = f32_init(m, cv->in[1]);
            const bool has_b = cv->n_in > 2 && cv->in[2] >= 0;
            if (!w || w->ndim < 3 || w->shape[0] < 1) continue;
            const int O = w->shape[0];
            bool ok = !has_b || vec_of(f32_init(m, cv->in[2]), O);
            for (int i = 1; i <= 4 && ok; i++) ok = vec_of(f32_init(m, nd->in[i]), O);
            if (!ok) continue;
            opt_node *o = &op->node[p];
            o->bn = k;
            o->w = cx_tensor_new(CX_F32, w->shape, w->ndim);
            o->b = cx_tensor_new(CX_F32, CX_SHAPE(O));
            op->node[k].skip = 1;
            op->node[k].src = x;
            comp[nd->out[0]] = p;
            op->n_skipped++;
        } else if (is_op(m, k, "Relu") && makes_new(m, p) &&
                   !op->node[p].skip && m->nodes[p].out[0] >= 0 && comp[m->nodes[p].out[0]] == p &&
                   (m->values[x].producer == p || uses[m->nodes[p].out[0]] == 1)) {
            /* x is p's output 0, or the output of BNs folded into p, each used once */
            if (m->values[x].producer == p && m->nodes[p].out[0] != x) continue;
            op->node[p].relu = 1;
            op->node[k].skip = 1;
            op->node[k].src = x;
            comp[nd->out[0]] = p;
            op->n_skipped++;
        }
    }
    /* reads of each value by nodes that run, and by the graph's outputs */
    memset(uses, 0, ((size_t)m->n_values + 1) * sizeof *uses);
    for (int k = 0; k < m->n_nodes; k++)
        for (int i = 0; i < m->nodes[k].n_in && !op->node[k].skip; i++)
            if (m->nodes[k].in[i] >= 0) uses[m->nodes[k].in[i]]++;
    for (int i = 0; i < m->n_outputs; i++) uses[m->output_ids[i]] += 2;
    for (int k = 0; k < m->n_nodes; k++) {
        const onnx_node *nd = &m->nodes[k];
        if (op->node[k].skip || !is_op(m, k, "Add") || nd->n_in != 2 || nd->n_out != 1 || nd->out[0] < 0) continue;
        for (int i = 0; i < 2 && !op->node[k].inplace; i++) {
            const int x = nd->in[i], p = x >= 0 ? comp[x] : -1;
            if (p < 0 || nd->in[1 - i] == x || !makes_new(m, p) || op->node[p].skip) continue;
            int reads = 0; /* of p's tensor, under all its names */
            for (int v = 0; v < m->n_values; v++)
                if (comp[v] == p) reads += uses[v];
            if (reads == 1) op->node[k].inplace = 1 + i;
        }
    }
    free(uses);
    free(comp);
    refresh(m);
}

void cx_onnx_opt_free(cx_onnx_model *m) {
    if (!m->opt) return;
    for (int k = 0; k < m->n_nodes; k++) {
        cx_tensor_free(m->opt->node[k].w);
        cx_tensor_free(m->opt->node[k].b);
    }
    free(m->opt->node);
    cx_conv_pack_free(m->opt->pack);
    free(m->opt);
    m->opt = NULL;
}

_Atomic long cx_onnx_fingerprints;

void cx_onnx_opt_touch(const cx_onnx_model *m) {
    if (m->opt) m->opt->dirty = m->opt->exposed = 1;
}

void cx_onnx_opt_outputs(const cx_onnx_model *m, cx_tensor *const *out, int n) {
    if (!m->opt || m->opt->exposed) return;
    for (int i = 0; i < n; i++) {
        if (!out[i] || !out[i]->data) continue;
        const char *o0 = out[i]->data, *o1 = o0 + (size_t)out[i]->numel * cx_dtype_size(out[i]->dtype);
        for (int j = 0; j < m->params.n; j++) {
            const cx_tensor *p = m->params.t[j];
            const char *p0 = p->data, *p1 = p0 + (size_t)p->numel * cx_dtype_size(p->dtype);
            if (o0 < p1 && p0 < o1) m->opt->exposed = 1;
        }
    }
}

bool cx_onnx_opt_begin(cx_onnx_model *m) {
    if (!m->opt) return false;
    if (cx_grad_enabled()) {
        m->opt->dirty = m->opt->exposed = 1; /* the parameters may be trained from this run */
        return false;
    }
    if (!m->opt->on) return false;
    if (!m->opt->dirty && m->opt->exposed) {
        cx_onnx_fingerprints++;
        if (fingerprint(m) != m->opt->print) m->opt->dirty = 1;
    }
    if (m->opt->dirty) refresh(m);
    cx_conv_pack_use(m->opt->pack); /* until cx_onnx_opt_end */
    return true;
}

void cx_onnx_opt_end(void) { cx_conv_pack_use(NULL); }

bool cx_onnx_opt_skip(const cx_onnx_model *m, int k, int *src) {
    if (!m->opt->node[k].skip) return false;
    *src = m->opt->node[k].src;
    return true;
}

void cx_onnx_opt_inputs(const cx_onnx_model *m, int k, cx_tensor **in) {
    const opt_node *o = &m->opt->node[k];
    if (o->w) in[1] = o->w, in[2] = o->b;
}

bool cx_onnx_opt_run(const cx_onnx_model *m, int k, cx_tensor **in, cx_tensor **out) {
    const opt_node *o = &m->opt->node[k];
    if (!o->inplace) return false;
    cx_tensor *a = in[o->inplace - 1], *b = in[2 - o->inplace];
    if (!a || !b || a->dtype != CX_F32 || b->dtype != CX_F32 || !cx_same_shape(a, b)) return false;
    float *pa = CX_F(a);
    const float *pb = CX_F(b);
    if (o->relu)
        for (int64_t i = 0; i < a->numel; i++) {
            const float v = pa[i] + pb[i];
            pa[i] = v > 0 ? v : 0.0f;
        }
    else
        for (int64_t i = 0; i < a->numel; i++) pa[i] += pb[i];
    out[0] = a;
    return true;
}

void cx_onnx_opt_after(const cx_onnx_model *m, int k, cx_tensor **out) {
    if (!m->opt->node[k].relu || !out[0]) return;
    cx_tensor *y = out[0];
    if (y->dtype != CX_F32) cx_fatal("fused Relu: output is %s, not float", cx_dtype_name(y->dtype));
    float *v = CX_F(y);
    for (int64_t i = 0; i < y->numel; i++) v[i] = v[i] > 0 ? v[i] : 0.0f;
}

void cx_onnx_set_optimize(cx_onnx_model *m, bool on) {
    if (!m || !m->opt) return;
    m->opt->on = on;
    m->opt->dirty = 1;
}

int cx_onnx_num_optimized(const cx_onnx_model *m) { return m && m->opt ? m->opt->n_skipped : 0; }

int cx_onnx_opt_num_inplace(const cx_onnx_model *m) {
    int n = 0;
    for (int k = 0; m && m->opt && k < m->n_nodes; k++) n += m->opt->node[k].inplace > 0;
    return n;
}
