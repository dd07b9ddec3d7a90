/* Closed-form learning-rate schedules (torch.optim.lr_scheduler). */
#include <math.h>

#include "cortex/optim.h"

#define M_PI_VALUE 3.14159265358979323846

static cx_sched sched_base(cx_sched_kind kind) {
    cx_sched s = {0};
    s.kind = kind;
    s.gamma = 1.0;
    s.start_factor = 1.0;
    s.end_factor = 1.0;
    s.warmup_start = 1.0;
    return s;
}

cx_sched cx_sched_constant(void) { return sched_base(CX_SCHED_CONSTANT); }

cx_sched cx_sched_step(int step_size, double gamma) {
    cx_sched s = sched_base(CX_SCHED_STEP);
    s.step_size = step_size;
    s.gamma = gamma;
    return s;
}

cx_sched cx_sched_exponential(double gamma) {
    cx_sched s = sched_base(CX_SCHED_EXPONENTIAL);
    s.gamma = gamma;
    return s;
}

cx_sched cx_sched_cosine(int t_max, double eta_min) {
    cx_sched s = sched_base(CX_SCHED_COSINE);
    s.t_max = t_max;
    s.eta_min = eta_min;
    return s;
}

cx_sched cx_sched_linear(double start_factor, double end_factor, int total_iters) {
    cx_sched s = sched_base(CX_SCHED_LINEAR);
    s.start_factor = start_factor;
    s.end_factor = end_factor;
    s.total_iters = total_iters;
    return s;
}

cx_sched cx_sched_with_warmup(cx_sched s, double start_factor, int warmup_iters) {
    s.warmup_start = start_factor;
    s.warmup_iters = warmup_iters;
    return s;
}

static double main_lr(const cx_sched *s, double base, int e) {
    switch (s->kind) {
    case CX_SCHED_CONSTANT: return base;
    case CX_SCHED_STEP:
        if (s->step_size <= 0) cx_fatal("cx_sched_lr: step_size must be > 0 (got %d)", s->step_size);
        return base * pow(s->gamma, (double)(e / s->step_size));
    case CX_SCHED_EXPONENTIAL: return base * pow(s->gamma, (double)e);
    case CX_SCHED_COSINE:
        if (s->t_max <= 0) cx_fatal("cx_sched_lr: t_max must be > 0 (got %d)", s->t_max);
        return s->eta_min +
               (base - s->eta_min) * (1.0 + cos(M_PI_VALUE * (double)e / (double)s->t_max)) / 2.0;
    case CX_SCHED_LINEAR: {
        if (s->total_iters <= 0)
            cx_fatal("cx_sched_lr: total_iters must be > 0 (got %d)", s->total_iters);
        int k = e < s->total_iters ? e : s->total_iters;
        return base * (s->start_factor +
                       (s->end_factor - s->start_factor) * (double)k / (double)s->total_iters);
    }
    }
    cx_fatal("cx_sched_lr: unknown schedule kind %d", (int)s->kind);
}

double cx_sched_lr(const cx_sched *s, double base_lr, int epoch) {
    if (!s) cx_fatal("cx_sched_lr: schedule is NULL");
    if (epoch < 0) epoch = 0;
    if (s->warmup_iters > 0) {
        if (epoch < s->warmup_iters)
            return base_lr * (s->warmup_start +
                              (1.0 - s->warmup_start) * (double)epoch / (double)s->warmup_iters);
        epoch -= s->warmup_iters;
    }
    return main_lr(s, base_lr, epoch);
}

void cx_sched_apply(const cx_sched *s, cx_optim *opt, double base_lr, int epoch) {
    cx_optim_set_lr(opt, cx_sched_lr(s, base_lr, epoch));
}
