/* Recurrent ops: fused sequence kernels for vanilla RNN, LSTM (with the
 * peephole and coupled-gate variants) and GRU, their BPTT backward, and the
 * single-step cells (a sequence of length 1). See include/cortex/rnn.h.
 *
 * Data of one op (one direction, time-major, T steps, batch B, G gates):
 *   P      the state blocks, [T+1, B, H] hidden states (then, for LSTM,
 *          [T+1, B, H] cell states); the node's outputs output [T, B, H],
 *          h_n and c_n [B, H] are views of them (no copies). Block hb_out(t) holds the state after
 *          time t, block hb_prev(t) the one before it; the initial state is
 *          block 0 (forward) or T (reverse), so the T hidden states a pass
 *          consumes form one contiguous [T*B, H] matrix (used by dW_hh).
 *   gates  [T*B, G*H] activated gates per time step (saved for backward).
 *   hn     GRU: W_hn h + b_hn per step [T*B, H]; tc LSTM: tanh(c_t) [T*B, H].
 * Backward: per step (reverse order) the fused kernel turns dh, dc into the
 * gate gradients DG (x side) and DGH (h side; differs from DG only for the
 * GRU's n gate), then dh_prev = DGH_t W_hh (cx_pgemm, src/cpu/pgemm.c, over
 * W_hh packed once;
 * the forward's h W_hh^T likewise). After the loop one cx_sgemm each:
 * dW_ih += DG^T X, dX += DG W_ih, dW_hh += DGH^T Hprev, and column sums for
 * the biases. */
#include "../autograd/graph.h"
#include "../cpu/cpu.h"
#include "../cpu/vmath.h"
#include <math.h>
#include <stdio.h>

/* The recurrent GEMM kernel relies on fused multiply-add contraction of
 * `acc += a * b`; -std=c11 turns GCC's contraction off (as in cpu/gemm.c). */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

/* ------------------------------------------------------------ fast math
 * Vectorisable sigmoid and tanh from cpu/vmath.h (~1-2 ulp, exact
 * saturation). */
static inline float fsigm(float x) { return cx_vsigmoidf(x); }
static inline float ftanh(float x) { return cx_vtanhf(x); }


/* ------------------------------------------------------------ op state */
enum { IN_X, IN_WIH, IN_WHH, IN_BIH, IN_BHH, IN_H0, IN_C0, IN_PEEP, N_IN };

typedef struct {
    cx_rnn_mode mode;
    int T, B, I, H, G;
    bool reverse, coupled, peep;
    float *gates; /* [T*B, G*H] */
    float *aux;   /* GRU: hn [T*B, H]; LSTM: tanh(c) [T*B, H] */
    float *P;     /* the state blocks (see the top of the file) */
} rnn_saved;

static inline int hb_out(const rnn_saved *s, int t) { return s->reverse ? t : t + 1; }
static inline int hb_prev(const rnn_saved *s, int t) { return s->reverse ? t + 1 : t; }

static int gates_of(cx_rnn_mode mode, bool coupled) {
    switch (mode) {
    case CX_RNN_TANH: case CX_RNN_RELU: return 1;
    case CX_RNN_LSTM: return coupled ? 3 : 4;
    case CX_RNN_GRU: return 3;
    }
    cx_fatal("rnn: unknown mode %d", (int)mode);
}

static int threads_for(int64_t work) {
    return work >= CX_RNN_PAR_MIN ? cx_cpu_threads_available() : 1;
}


/* ------------------------------------------------------------ forward kernels
 * One time step for B rows: xp = gates row (x projection + biases on input,
 * activated gates on output), hg = h_prev W_hh^T [B, G*H]. */
static void step_fwd_rnn(const rnn_saved *s, float *xp, const float *hg, float *hout) {
    const int B = s->B, H = s->H;
    const bool relu = s->mode == CX_RNN_RELU;
    int nt = threads_for((int64_t)B * H * 8);
    (void)nt;
    CX_OMP(parallel for num_threads(nt) if(nt > 1))
    for (int b = 0; b < B; b++) {
        float *a = xp + (size_t)b * H;
        const float *u = hg + (size_t)b * H;
        float *h = hout + (size_t)b * H;
        if (relu) {
            CX_OMP(simd)
            for (int j = 0; j < H; j++) {
                float v = a[j] + u[j];
                h[j] = v > 0 ? v : 0.0f;
            }
        } else {
            CX_OMP(simd)
            for (int j = 0; j < H; j++) h[j] = ftanh(a[j] + u[j]);
        }
    }
}

static void step_fwd_lstm(const rnn_saved *s, float *xp, const float *hg, const float *cprev,
                          float *cout, float *hout, float *tc, const float *peep) {
    const int B = s->B, H = s->H, GH = s->G * s->H;
    int nt = threads_for((int64_t)B * H * 8);
    (void)nt;
    if (!s->coupled) {
        const float *pi = peep, *pf = peep + H, *po = peep + 2 * H;
        CX_OMP(parallel for num_threads(nt) if(nt > 1))
        for (int b = 0; b < B; b++) {
            float *ai = xp + (size_t)b * GH, *af = ai + H, *ag = ai + 2 * H, *ao = ai + 3 * H;
            const float *ui = hg + (size_t)b * GH, *uf = ui + H, *ug = ui + 2 * H, *uo = ui + 3 * H;
            const float *cp = cprev + (size_t)b * H;
            float *c = cout + (size_t)b * H, *h = hout + (size_t)b * H, *tcb = tc + (size_t)b * H;
            CX_OMP(simd)
            for (int j = 0; j < H; j++) {
                float i = fsigm(ai[j] + ui[j] + pi[j] * cp[j]);
                float f = fsigm(af[j] + uf[j] + pf[j] * cp[j]);
                float g = ftanh(ag[j] + ug[j]);
                float cn = f * cp[j] + i * g;
                float o = fsigm(ao[j] + uo[j] + po[j] * cn);
                float t = ftanh(cn);
                ai[j] = i; af[j] = f; ag[j] = g; ao[j] = o;
                c[j] = cn; tcb[j] = t; h[j] = o * t;
            }
        }
    } else {
        const float *pf = peep, *po = peep + H;
        CX_OMP(parallel for num_threads(nt) if(nt > 1))
        for (int b = 0; b < B; b++) {
            float *af = xp + (size_t)b * GH, *ag = af + H, *ao = af + 2 * H;
            const float *uf = hg + (size_t)b * GH, *ug = uf + H, *uo = uf + 2 * H;
            const float *cp = cprev + (size_t)b * H;
            float *c = cout + (size_t)b * H, *h = hout + (size_t)b * H, *tcb = tc + (size_t)b * H;
            CX_OMP(simd)
            for (int j = 0; j < H; j++) {
                float f = fsigm(af[j] + uf[j] + pf[j] * cp[j]);
                float g = ftanh(ag[j] + ug[j]);
                float cn = f * cp[j] + (1.0f - f) * g;
                float o = fsigm(ao[j] + uo[j] + po[j] * cn);
                float t = ftanh(cn);
                af[j] = f; ag[j] = g; ao[j] = o;
                c[j] = cn; tcb[j] = t; h[j] = o * t;
            }
        }
    }
}

static void step_fwd_gru(const rnn_saved *s, float *xp, const float *hg, const float *hprev,
                         float *hout, float *hn, const float *b_hn) {
    const int B = s->B, H = s->H, GH = 3 * s->H;
    int nt = threads_for((int64_t)B * H * 8);
    (void)nt;
    CX_OMP(parallel for num_threads(nt) if(nt > 1))
    for (int b = 0; b < B; b++) {
        float *ar = xp + (size_t)b * GH, *az = ar + H, *an = ar + 2 * H;
        const float *ur = hg + (size_t)b * GH, *uz = ur + H, *un = ur + 2 * H;
        const float *hp = hprev + (size_t)b * H;
        float *h = hout + (size_t)b * H, *hnb = hn + (size_t)b * H;
        CX_OMP(simd)
        for (int j = 0; j < H; j++) {
            float r = fsigm(ar[j] + ur[j]);
            float z = fsigm(az[j] + uz[j]);
            float q = un[j] + b_hn[j];
            float n = ftanh(an[j] + r * q);
            ar[j] = r; az[j] = z; an[j] = n;
            hnb[j] = q;
            h[j] = (1.0f - z) * n + z * hp[j];
        }
    }
}

/* ------------------------------------------------------------ backward kernels
 * gh, gc: upstream gradient of this step's h / c block of P; dhr: dh arriving
 * through the recurrence (read, then overwritten with the part of dh_prev
 * that bypasses W_hh: 0 for RNN/LSTM, dh*z for GRU); dcr: dc carried (LSTM). */
static void step_bwd_rnn(const rnn_saved *s, const float *hout, const float *gh, float *dhr, float *dg) {
    const int B = s->B, H = s->H;
    const bool relu = s->mode == CX_RNN_RELU;
    int nt = threads_for((int64_t)B * H * 2);
    (void)nt;
    CX_OMP(parallel for num_threads(nt) if(nt > 1))
    for (int b = 0; b < B; b++) {
        const float *h = hout + (size_t)b * H, *g = gh + (size_t)b * H;
        float *r = dhr + (size_t)b * H, *d = dg + (size_t)b * H;
        if (relu) {
            CX_OMP(simd)
            for (int j = 0; j < H; j++) d[j] = h[j] > 0 ? g[j] + r[j] : 0.0f;
        } else {
            CX_OMP(simd)
            for (int j = 0; j < H; j++) d[j] = (g[j] + r[j]) * (1.0f - h[j] * h[j]);
        }
    }
}

static void step_bwd_lstm(const rnn_saved *s, const float *gates, const float *tc, const float *cprev,
                          const float *gh, const float *gc, float *dhr, float *dcr, float *dg,
                          const float *peep) {
    const int B = s->B, H = s->H, GH = s->G * s->H;
    int nt = threads_for((int64_t)B * H * 2);
    (void)nt;
    if (!s->coupled) {
        const float *pi = peep, *pf = peep + H, *po = peep + 2 * H;
        CX_OMP(parallel for num_threads(nt) if(nt > 1))
        for (int b = 0; b < B; b++) {
            const float *gi = gates + (size_t)b * GH, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
            float *di = dg + (size_t)b * GH, *df = di + H, *dgg = di + 2 * H, *dob = di + 3 * H;
            const float *t = tc + (size_t)b * H, *cp = cprev + (size_t)b * H;
            const float *ghb = gh + (size_t)b * H, *gcb = gc + (size_t)b * H;
            float *rh = dhr + (size_t)b * H, *rc = dcr + (size_t)b * H;
            CX_OMP(simd)
            for (int j = 0; j < H; j++) {
                float dh = ghb[j] + rh[j];
                float o = go[j], i = gi[j], f = gf[j], g = gg[j], tj = t[j];
                float dop = dh * tj * o * (1.0f - o);
                float dc = gcb[j] + rc[j] + dh * o * (1.0f - tj * tj) + dop * po[j];
                float dip = dc * g * i * (1.0f - i);
                float dfp = dc * cp[j] * f * (1.0f - f);
                dgg[j] = dc * i * (1.0f - g * g);
                di[j] = dip; df[j] = dfp; dob[j] = dop;
                rc[j] = dc * f + dip * pi[j] + dfp * pf[j];
                rh[j] = 0.0f;
            }
        }
    } else {
        const float *pf = peep, *po = peep + H;
        CX_OMP(parallel for num_threads(nt) if(nt > 1))
        for (int b = 0; b < B; b++) {
            const float *gf = gates + (size_t)b * GH, *gg = gf + H, *go = gf + 2 * H;
            float *df = dg + (size_t)b * GH, *dgg = df + H, *dob = df + 2 * H;
            const float *t = tc + (size_t)b * H, *cp = cprev + (size_t)b * H;
            const float *ghb = gh + (size_t)b * H, *gcb = gc + (size_t)b * H;
            float *rh = dhr + (size_t)b * H, *rc = dcr + (size_t)b * H;
            CX_OMP(simd)
            for (int j = 0; j < H; j++) {
                float dh = ghb[j] + rh[j];
                float o = go[j], f = gf[j], g = gg[j], tj = t[j];
                float dop = dh * tj * o * (1.0f - o);
                float dc = gcb[j] + rc[j] + dh * o * (1.0f - tj * tj) + dop * po[j];
                float dfp = dc * (cp[j] - g) * f * (1.0f - f);
                dgg[j] = dc * (1.0f - f) * (1.0f - g * g);
                df[j] = dfp; dob[j] = dop;
                rc[j] = dc * f + dfp * pf[j];
                rh[j] = 0.0f;
            }
        }
    }
}

static void step_bwd_gru(const rnn_saved *s, const float *gates, const float *hn, const float *hprev,
                         const float *gh, float *dhr, float *dgx, float *dgh) {
    const int B = s->B, H = s->H, GH = 3 * s->H;
    int nt = threads_for((int64_t)B * H * 2);
    (void)nt;
    CX_OMP(parallel for num_threads(nt) if(nt > 1))
    for (int b = 0; b < B; b++) {
        const float *gr = gates + (size_t)b * GH, *gz = gr + H, *gn = gr + 2 * H;
        const float *q = hn + (size_t)b * H, *hp = hprev + (size_t)b * H, *ghb = gh + (size_t)b * H;
        float *xr = dgx + (size_t)b * GH, *xz = xr + H, *xn = xr + 2 * H;
        float *hr = dgh + (size_t)b * GH, *hz = hr + H, *hnn = hr + 2 * H;
        float *rh = dhr + (size_t)b * H;
        CX_OMP(simd)
        for (int j = 0; j < H; j++) {
            float dh = ghb[j] + rh[j];
            float r = gr[j], z = gz[j], n = gn[j];
            float dzp = dh * (hp[j] - n) * z * (1.0f - z);
            float dnp = dh * (1.0f - z) * (1.0f - n * n);
            float drp = dnp * q[j] * r * (1.0f - r);
            xr[j] = drp; xz[j] = dzp; xn[j] = dnp;
            hr[j] = drp; hz[j] = dzp; hnn[j] = dnp * r;
            rh[j] = dh * z;
        }
    }
}

/* out[c] += sum over rows of m[rows, cols] (fixed order per column). */
static void col_sums(const float *m, int rows, int cols, float *out) {
    int nt = threads_for((int64_t)rows * cols / 8);
    (void)nt;
    const int CH = 64;
    int nch = (cols + CH - 1) / CH;
    CX_OMP(parallel for num_threads(nt) if(nt > 1))
    for (int k = 0; k < nch; k++) {
        int c0 = k * CH, c1 = c0 + CH < cols ? c0 + CH : cols;
        float acc[64];
        for (int c = c0; c < c1; c++) acc[c - c0] = 0.0f;
        for (int r = 0; r < rows; r++) {
            const float *row = m + (size_t)r * cols;
            CX_OMP(simd)
            for (int c = c0; c < c1; c++) acc[c - c0] += row[c];
        }
        for (int c = c0; c < c1; c++) out[c] += acc[c - c0];
    }
}

/* ------------------------------------------------------------ backward */
static void rnn_backward(cx_node *nd) {
    const rnn_saved *s = nd->saved;
    const int T = s->T, B = s->B, I = s->I, H = s->H, G = s->G, GH = G * H;
    const size_t BH = (size_t)B * H, TB = (size_t)T * B;
    const bool lstm = s->mode == CX_RNN_LSTM, gru = s->mode == CX_RNN_GRU;
    cx_tensor *x = nd->in[IN_X], *wih = nd->in[IN_WIH], *whh = nd->in[IN_WHH];
    cx_tensor *peep_t = nd->in[IN_PEEP];
    const float *P = s->P;
    /* upstream gradient of every state block: the outputs' gradients (output,
     * h_n, c_n: the engine gives each one, zeros where nothing flowed) laid
     * over the blocks they view */
    const int nblk = lstm ? 2 * (T + 1) : T + 1;
    const int last = s->reverse ? 0 : T;
    float *gP = cx_arena_alloc((size_t)nblk * BH * sizeof(float));
    memset(gP, 0, (size_t)nblk * BH * sizeof(float));
    memcpy(gP + (size_t)(s->reverse ? 0 : 1) * BH, nd->out[0]->grad, TB * H * sizeof(float));
    {
        float *gh = gP + (size_t)last * BH;
        const float *g1 = nd->out[1]->grad;
        for (size_t e = 0; e < BH; e++) gh[e] += g1[e];
        if (lstm) memcpy(gP + (size_t)(T + 1 + last) * BH, nd->out[2]->grad, BH * sizeof(float));
    }
    const float *wp = cx_pgemm_pack(CX_F(whh), H, false, GH, H); /* W_hh [GH, H] as B */

    float *dg = cx_arena_alloc(TB * GH * sizeof(float));
    float *dgh = gru ? cx_arena_alloc(TB * GH * sizeof(float)) : dg;
    float *dhr = cx_arena_alloc(BH * sizeof(float));
    float *dcr = lstm ? cx_arena_alloc(BH * sizeof(float)) : NULL;
    memset(dhr, 0, BH * sizeof(float));
    if (dcr) memset(dcr, 0, BH * sizeof(float));
    float *zpeep = NULL;
    const float *peep = NULL;
    if (lstm) {
        if (peep_t) {
            peep = CX_F(peep_t);
        } else {
            zpeep = cx_arena_alloc((size_t)3 * H * sizeof(float));
            memset(zpeep, 0, (size_t)3 * H * sizeof(float));
            peep = zpeep;
        }
    }
    const size_t coff = (size_t)(T + 1) * BH; /* cell blocks of P */
    const bool need_h0 = (nd->in[IN_H0] && nd->in[IN_H0]->requires_grad);

    for (int k = T - 1; k >= 0; k--) {
        const int t = s->reverse ? T - 1 - k : k;
        const float *gates = s->gates + (size_t)t * B * GH;
        float *dgt = dg + (size_t)t * B * GH, *dght = dgh + (size_t)t * B * GH;
        const float *gh = gP + (size_t)hb_out(s, t) * BH;
        switch (s->mode) {
        case CX_RNN_TANH:
        case CX_RNN_RELU:
            step_bwd_rnn(s, P + (size_t)hb_out(s, t) * BH, gh, dhr, dgt);
            break;
        case CX_RNN_LSTM:
            step_bwd_lstm(s, gates, s->aux + (size_t)t * BH, P + coff + (size_t)hb_prev(s, t) * BH, gh,
                          gP + coff + (size_t)hb_out(s, t) * BH, dhr, dcr, dgt, peep);
            break;
        case CX_RNN_GRU:
            step_bwd_gru(s, gates, s->aux + (size_t)t * BH, P + (size_t)hb_prev(s, t) * BH, gh, dhr,
                         dgt, dght);
            break;
        }
        /* dh_prev (+)= DGH_t W_hh: [B, GH] x [GH, H]; not needed after the
         * last step unless h0 wants its gradient */
        if (k > 0 || need_h0)
            cx_pgemm(B, H, GH, dght, GH, wp, gru ? 1.0f : 0.0f, dhr, H);
    }
    /* initial states: what reached them through the recurrence plus any
     * gradient on their own blocks of P */
    const int b0 = s->reverse ? T : 0;
    float *gh0 = cx_in_grad(nd, IN_H0);
    if (gh0) {
        const float *g = gP + (size_t)b0 * BH;
        for (size_t e = 0; e < BH; e++) gh0[e] += dhr[e] + g[e];
    }
    float *gc0 = lstm ? cx_in_grad(nd, IN_C0) : NULL;
    if (gc0) {
        const float *g = gP + coff + (size_t)b0 * BH;
        for (size_t e = 0; e < BH; e++) gc0[e] += dcr[e] + g[e];
    }
    /* the big GEMMs */
    float *gwih = cx_in_grad(nd, IN_WIH), *gwhh = cx_in_grad(nd, IN_WHH), *gx = cx_in_grad(nd, IN_X);
    if (gwih) cx_sgemm(true, false, GH, I, (int)TB, 1.0f, dg, GH, CX_F(x), I, 1.0f, gwih, I);
    if (gx) cx_sgemm(false, false, (int)TB, I, GH, 1.0f, dg, GH, CX_F(wih), I, 1.0f, gx, I);
    if (gwhh) {
        const float *hprev = P + (size_t)(s->reverse ? 1 : 0) * BH; /* blocks of t = 0..T-1 */
        cx_sgemm(true, false, GH, H, (int)TB, 1.0f, dgh, GH, hprev, H, 1.0f, gwhh, H);
    }
    float *gbih = cx_in_grad(nd, IN_BIH), *gbhh = cx_in_grad(nd, IN_BHH);
    if (gbih) col_sums(dg, (int)TB, GH, gbih);
    if (gbhh) col_sums(dgh, (int)TB, GH, gbhh);
    float *gpeep = lstm && peep_t ? cx_in_grad(nd, IN_PEEP) : NULL;
    if (gpeep) {
        /* rows (i, f, o) or (f, o): sum over t, b of dgate_pre * c (c_prev for
         * i and f, c_t for o) */
        const int np = s->coupled ? 2 : 3;
        for (int q = 0; q < np; q++) {
            const int gate = s->coupled ? (q == 0 ? 0 : 2) : (q == 2 ? 3 : q);
            const bool uses_new = q == np - 1;
            float *gp = gpeep + (size_t)q * H;
            for (int t = 0; t < T; t++) {
                const int blk = uses_new ? hb_out(s, t) : hb_prev(s, t);
                const float *cc = P + coff + (size_t)blk * BH;
                for (int b = 0; b < B; b++) {
                    const float *d = dg + ((size_t)t * B + b) * GH + (size_t)gate * H;
                    const float *cb = cc + (size_t)b * H;
                    CX_OMP(simd)
                    for (int j = 0; j < H; j++) gp[j] += d[j] * cb[j];
                }
            }
        }
    }
}

/* ------------------------------------------------------------ forward */
static void need_shape2(const char *op, const char *what, const cx_tensor *t, int d0, int d1) {
    char sb[96];
    cx_need_f32(op, t);
    if (t->ndim != 2 || t->shape[0] != d0 || t->shape[1] != d1)
        cx_fatal("%s: %s has shape %s, expected [%d, %d]", op, what, cx_shape_str(t, sb, sizeof sb), d0, d1);
}
static void need_shape1(const char *op, const char *what, const cx_tensor *t, int d0) {
    char sb[96];
    cx_need_f32(op, t);
    if (t->ndim != 1 || t->shape[0] != d0)
        cx_fatal("%s: %s has shape %s, expected [%d]", op, what, cx_shape_str(t, sb, sizeof sb), d0);
}

/* The engine. x: [T, B, I] data (shape checked by the callers). One node
 * with the outputs output [T, B, H], h_n [B, H] (and c_n [B, H] for LSTM),
 * which view the state blocks P (no copies). */
static cx_rnn_out rnn_run(const cx_op_desc *opd, cx_rnn_mode mode, int T, int B, cx_tensor *x,
                          cx_tensor *h0, cx_tensor *c0, cx_tensor *w_ih, cx_tensor *w_hh,
                          cx_tensor *b_ih, cx_tensor *b_hh, cx_tensor *peep, bool coupled,
                          bool reverse) {
    const char *op = opd->name;
    char sb[96];
    cx_need_f32(op, x);
    cx_need_f32(op, w_ih);
    cx_need_f32(op, w_hh);
    const bool lstm = mode == CX_RNN_LSTM, gru = mode == CX_RNN_GRU;
    if (!lstm && (c0 || peep || coupled))
        cx_fatal("%s: cell state, peephole and coupled gates are LSTM-only", op);
    const int G = gates_of(mode, coupled);
    if (w_hh->ndim != 2 || w_hh->shape[0] % G != 0 || w_hh->shape[0] == 0)
        cx_fatal("%s: weight_hh has shape %s, expected [%d*H, H]", op, cx_shape_str(w_hh, sb, sizeof sb), G);
    const int H = w_hh->shape[0] / G, GH = G * H;
    need_shape2(op, "weight_hh", w_hh, GH, H);
    if (w_ih->ndim != 2 || w_ih->shape[0] != GH)
        cx_fatal("%s: weight_ih has shape %s, expected [%d, I] (%d gates x hidden %d)", op,
                 cx_shape_str(w_ih, sb, sizeof sb), GH, G, H);
    const int I = w_ih->shape[1];
    if (T < 1 || B < 1 || I < 1)
        cx_fatal("%s: empty input (T=%d, B=%d, I=%d)", op, T, B, I);
    if (x->numel != (int64_t)T * B * I)
        cx_fatal("%s: input %s does not match weight_ih [%d, %d]", op, cx_shape_str(x, sb, sizeof sb), GH, I);
    if (b_ih) need_shape1(op, "bias_ih", b_ih, GH);
    if (b_hh) need_shape1(op, "bias_hh", b_hh, GH);
    if (h0) need_shape2(op, "initial hidden state", h0, B, H);
    if (c0) need_shape2(op, "initial cell state", c0, B, H);
    if (peep) need_shape2(op, "peephole", peep, coupled ? 2 : 3, H);

    const size_t BH = (size_t)B * H, TB = (size_t)T * B;
    const int nblk = lstm ? 2 * (T + 1) : T + 1;
    float *Pd = cx_arena_alloc((size_t)nblk * BH * sizeof(float));
    rnn_saved *s = cx_arena_alloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->mode = mode; s->T = T; s->B = B; s->I = I; s->H = H; s->G = G;
    s->reverse = reverse; s->coupled = coupled; s->peep = peep != NULL;
    s->gates = cx_arena_alloc(TB * GH * sizeof(float));
    s->aux = (lstm || gru) ? cx_arena_alloc(TB * H * sizeof(float)) : NULL;
    s->P = Pd;

    const int b0 = reverse ? T : 0;
    const size_t coff = (size_t)(T + 1) * BH;
    if (h0) memcpy(Pd + (size_t)b0 * BH, CX_F(h0), BH * sizeof(float));
    else memset(Pd + (size_t)b0 * BH, 0, BH * sizeof(float));
    if (lstm) {
        if (c0) memcpy(Pd + coff + (size_t)b0 * BH, CX_F(c0), BH * sizeof(float));
        else memset(Pd + coff + (size_t)b0 * BH, 0, BH * sizeof(float));
    }

    /* input projections of every step: one GEMM, biases folded in (the GRU's
     * b_hn stays inside r * (W_hn h + b_hn)) */
    float *xp = s->gates;
    float *bias = NULL, *b_hn = NULL;
    if (b_ih || b_hh) {
        bias = cx_arena_alloc((size_t)GH * sizeof(float));
        for (int j = 0; j < GH; j++) {
            bool hn_part = gru && j >= 2 * H;
            bias[j] = (b_ih ? CX_F(b_ih)[j] : 0.0f) + (b_hh && !hn_part ? CX_F(b_hh)[j] : 0.0f);
        }
        for (size_t r = 0; r < TB; r++) memcpy(xp + r * GH, bias, (size_t)GH * sizeof(float));
    }
    if (gru) {
        b_hn = cx_arena_alloc((size_t)H * sizeof(float));
        for (int j = 0; j < H; j++) b_hn[j] = b_hh ? CX_F(b_hh)[2 * H + j] : 0.0f;
    }
    cx_sgemm(false, true, (int)TB, GH, I, 1.0f, CX_F(x), I, CX_F(w_ih), I, bias ? 1.0f : 0.0f, xp, GH);

    const float *peepd = NULL;
    if (lstm) {
        if (peep) {
            peepd = CX_F(peep);
        } else {
            float *z = cx_arena_alloc((size_t)3 * H * sizeof(float));
            memset(z, 0, (size_t)3 * H * sizeof(float));
            peepd = z;
        }
    }
    float *hg = cx_arena_alloc((size_t)B * GH * sizeof(float));
    /* op(B) = W_hh^T [H, GH], packed once for the T steps */
    const float *wp = cx_pgemm_pack(CX_F(w_hh), H, true, H, GH);
    for (int k = 0; k < T; k++) {
        const int t = reverse ? T - 1 - k : k;
        const float *hp = Pd + (size_t)hb_prev(s, t) * BH;
        float *ho = Pd + (size_t)hb_out(s, t) * BH;
        float *xpt = xp + (size_t)t * B * GH;
        cx_pgemm(B, GH, H, hp, H, wp, 0.0f, hg, GH);
        switch (mode) {
        case CX_RNN_TANH:
        case CX_RNN_RELU: step_fwd_rnn(s, xpt, hg, ho); break;
        case CX_RNN_LSTM:
            step_fwd_lstm(s, xpt, hg, Pd + coff + (size_t)hb_prev(s, t) * BH,
                          Pd + coff + (size_t)hb_out(s, t) * BH, ho, s->aux + (size_t)t * BH, peepd);
            break;
        case CX_RNN_GRU: step_fwd_gru(s, xpt, hg, hp, ho, s->aux + (size_t)t * BH, b_hn); break;
        }
    }
    cx_tensor *in[N_IN] = {x, w_ih, w_hh, b_ih, b_hh, h0, c0, peep};
    const int last = reverse ? 0 : T;
    cx_rnn_out r = {0};
    r.output = cx_wrap(Pd + (reverse ? 0 : BH), (const int[]){T, B, H}, 3);
    r.h = cx_wrap(Pd + (size_t)last * BH, (const int[]){B, H}, 2);
    if (lstm) r.c = cx_wrap(Pd + ((size_t)T + 1 + last) * BH, (const int[]){B, H}, 2);
    cx_tensor *outs[3] = {r.output, r.h, r.c};
    cx_record_n(opd, outs, lstm ? 3 : 2, in, N_IN, s, 0);
    return r;
}

/* ------------------------------------------------------------ public ops */
CX_OP_DEF(rnn_tanh_seq, .backward = rnn_backward, .n_out = 2);
CX_OP_DEF(rnn_relu_seq, .backward = rnn_backward, .n_out = 2);
CX_OP_DEF(gru_seq, .backward = rnn_backward, .n_out = 2);
CX_OP_DEF(lstm_seq, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(lstm_peephole_seq, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(lstm_coupled_seq, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(lstm_peephole_coupled_seq, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(rnn_tanh_cell, .backward = rnn_backward, .n_out = 2);
CX_OP_DEF(rnn_relu_cell, .backward = rnn_backward, .n_out = 2);
CX_OP_DEF(gru_cell, .backward = rnn_backward, .n_out = 2);
CX_OP_DEF(lstm_cell, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(lstm_peephole_cell, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(lstm_coupled_cell, .backward = rnn_backward, .n_out = 3);
CX_OP_DEF(lstm_peephole_coupled_cell, .backward = rnn_backward, .n_out = 3);

/* LSTM op by variant: [cell][coupled][peephole] */
static const cx_op_desc *const lstm_ops[2][2][2] = {
    {{&cx_opd_lstm_seq, &cx_opd_lstm_peephole_seq}, {&cx_opd_lstm_coupled_seq, &cx_opd_lstm_peephole_coupled_seq}},
    {{&cx_opd_lstm_cell, &cx_opd_lstm_peephole_cell},
     {&cx_opd_lstm_coupled_cell, &cx_opd_lstm_peephole_coupled_cell}}};

static void need_seq_x(const char *op, const cx_tensor *x) {
    char sb[96];
    cx_need_f32(op, x);
    if (x->ndim != 3) cx_fatal("%s: input must be [T, B, I], got %s", op, cx_shape_str(x, sb, sizeof sb));
}
static void need_cell_x(const char *op, const cx_tensor *x) {
    char sb[96];
    cx_need_f32(op, x);
    if (x->ndim != 2) cx_fatal("%s: input must be [B, I], got %s", op, cx_shape_str(x, sb, sizeof sb));
}

cx_rnn_out cx_rnn_seq(cx_rnn_mode mode, cx_tensor *x, cx_tensor *h0, cx_tensor *c0, cx_tensor *w_ih,
                      cx_tensor *w_hh, cx_tensor *b_ih, cx_tensor *b_hh, bool reverse) {
    static const cx_op_desc *const ops[] = {&cx_opd_rnn_tanh_seq, &cx_opd_rnn_relu_seq, &cx_opd_lstm_seq,
                                            &cx_opd_gru_seq};
    if ((unsigned)mode > CX_RNN_GRU) cx_fatal("rnn_seq: unknown mode %d", (int)mode);
    need_seq_x(ops[mode]->name, x);
    return rnn_run(ops[mode], mode, x->shape[0], x->shape[1], x, h0, c0, w_ih, w_hh, b_ih, b_hh, NULL, false,
                   reverse);
}

cx_rnn_out cx_lstm_seq_ex(cx_tensor *x, cx_tensor *h0, cx_tensor *c0, cx_tensor *w_ih, cx_tensor *w_hh,
                          cx_tensor *b_ih, cx_tensor *b_hh, cx_tensor *peephole, bool coupled,
                          bool reverse) {
    const cx_op_desc *op = lstm_ops[0][coupled][peephole != NULL];
    need_seq_x(op->name, x);
    return rnn_run(op, CX_RNN_LSTM, x->shape[0], x->shape[1], x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole,
                   coupled, reverse);
}

cx_tensor *cx_rnn_cell(cx_tensor *x, cx_tensor *h, cx_tensor *w_ih, cx_tensor *w_hh, cx_tensor *b_ih,
                       cx_tensor *b_hh, bool relu) {
    const cx_op_desc *op = relu ? &cx_opd_rnn_relu_cell : &cx_opd_rnn_tanh_cell;
    need_cell_x(op->name, x);
    return rnn_run(op, relu ? CX_RNN_RELU : CX_RNN_TANH, 1, x->shape[0], x, h, NULL, w_ih, w_hh, b_ih, b_hh,
                   NULL, false, false).h;
}

cx_rnn_out cx_lstm_cell_ex(cx_tensor *x, cx_tensor *h, cx_tensor *c, cx_tensor *w_ih, cx_tensor *w_hh,
                           cx_tensor *b_ih, cx_tensor *b_hh, cx_tensor *peephole, bool coupled) {
    const cx_op_desc *op = lstm_ops[1][coupled][peephole != NULL];
    need_cell_x(op->name, x);
    cx_rnn_out r = rnn_run(op, CX_RNN_LSTM, 1, x->shape[0], x, h, c, w_ih, w_hh, b_ih, b_hh, peephole, coupled,
                           false);
    r.output = r.h;
    return r;
}

cx_rnn_out cx_lstm_cell(cx_tensor *x, cx_tensor *h, cx_tensor *c, cx_tensor *w_ih, cx_tensor *w_hh,
                        cx_tensor *b_ih, cx_tensor *b_hh) {
    return cx_lstm_cell_ex(x, h, c, w_ih, w_hh, b_ih, b_hh, NULL, false);
}

cx_tensor *cx_gru_cell(cx_tensor *x, cx_tensor *h, cx_tensor *w_ih, cx_tensor *w_hh, cx_tensor *b_ih,
                       cx_tensor *b_hh) {
    need_cell_x("gru_cell", x);
    return rnn_run(&cx_opd_gru_cell, CX_RNN_GRU, 1, x->shape[0], x, h, NULL, w_ih, w_hh, b_ih, b_hh, NULL, false,
                   false).h;
}
