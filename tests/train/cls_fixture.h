/* Shared by the trainer tests: synthetic classification data and a
 * classifier run (model, optimiser, seeded shuffling loader, classifier
 * task, trainer). */
#ifndef CX_TEST_CLS_FIXTURE_H
#define CX_TEST_CLS_FIXTURE_H
#include <string.h>
#include <cortex.h>

/* n examples of 16 features (a 1x4x4 "image") in 3 classes: class k has mean
 * 1.5 on the features j with j % 3 == k, Gaussian noise of std 0.8. */
static inline void make_blobs(cx_dataset *d, int n, uint64_t seed) {
    cx_rng r = cx_rng_new(seed);
    d->x = cx_tensor_new(CX_F32, CX_SHAPE(n, 16));
    d->y = cx_tensor_new(CX_I32, CX_SHAPE(n));
    d->owned = true;
    for (int i = 0; i < n; i++) {
        int k = (int)cx_rng_below(&r, 3);
        CX_I32P(d->y)[i] = k;
        for (int j = 0; j < 16; j++) CX_F(d->x)[i * 16 + j] = (j % 3 == k ? 1.5f : 0.0f) + 0.8f * cx_rng_normal(&r);
    }
}

/* A classifier run. */
typedef struct {
    cx_module *net;
    cx_params ps;
    cx_optim *opt;
    cx_loader *ld;
    cx_rng loader_rng;
    cx_classifier c;
    cx_train_task task;
    cx_trainer *tr;
} cls_run;

/* With r->net, r->ps and r->opt set: a shuffling loader over `train` (its
 * own stream, seed 77; registered as "loader" when add_loader_rng), the
 * classifier task (forward on r->net, validation on `val` in batches of 64,
 * shift-1 and flip augmentation of 1x4x4 images when augment) and the
 * trainer. */
static inline void cls_wire(cls_run *r, const cx_train_opts *o, const cx_dataset *train, const cx_dataset *val,
                            cx_forward_fn forward, bool augment, int batch, bool add_loader_rng) {
    r->loader_rng = cx_rng_new(77);
    r->ld = cx_loader_new(train, batch, true, false);
    cx_loader_set_rng(r->ld, &r->loader_rng);
    r->c.forward = forward;
    r->c.forward_user = r->net;
    r->c.train = r->ld;
    r->c.val = val;
    r->c.eval_batch = 64;
    if (augment) {
        r->c.augment.shift = 1;
        r->c.augment.hflip = true;
        r->c.image_shape[0] = 1;
        r->c.image_shape[1] = 4;
        r->c.image_shape[2] = 4;
    }
    r->task = cx_classifier_task(&r->c);
    r->tr = cx_trainer_new(&r->task, r->net, r->opt, o);
    if (add_loader_rng) cx_trainer_add_rng(r->tr, "loader", &r->loader_rng);
}

static inline void cls_free(cls_run *r) {
    cx_trainer_free(r->tr);
    cx_loader_free(r->ld);
    cx_optim_free(r->opt);
    cx_params_free(&r->ps);
    cx_module_free(r->net);
}

/* Every tensor of two lists is bit-identical (same sizes and dtypes). */
static inline bool same_tensors(const cx_params *a, const cx_params *b) {
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
        if (a->t[i]->numel != b->t[i]->numel || a->t[i]->dtype != b->t[i]->dtype ||
            memcmp(a->t[i]->data, b->t[i]->data, (size_t)a->t[i]->numel * cx_dtype_size(a->t[i]->dtype)))
            return false;
    return true;
}
#endif
