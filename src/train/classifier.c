/* Classifier evaluation and the classifier training task of cortex/train.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/core.h"
#include "cortex/data.h"
#include "cortex/io.h"
#include "cortex/nn.h"
#include "cortex/train.h"
#include "cortex/dist.h"
#include "../tensor/internal.h"

cx_tensor *cx_forward_module(void *module, cx_tensor *x) { return cx_module_forward((cx_module *)module, x); }

cx_status cx_classifier_eval(cx_forward_fn forward, void *user, const cx_dataset *d, int batch, int64_t *confusion,
                             int num_classes, cx_classifier_result *out) {
    if (!forward || !d || !d->x || !out) return cx_set_error(CX_ERR_ARG, "cx_classifier_eval: NULL argument");
    if (batch < 1) return cx_set_error(CX_ERR_ARG, "cx_classifier_eval: batch %d < 1", batch);
    int n = cx_dataset_len(d);
    if (!d->y || d->y->dtype != CX_I32 || d->y->ndim != 1 || d->y->shape[0] != n)
        return cx_set_error(CX_ERR_ARG, "cx_classifier_eval: labels must be I32 [%d]", n);
    if (confusion && num_classes < 1) return cx_set_error(CX_ERR_ARG, "cx_classifier_eval: num_classes < 1");
    if (confusion) memset(confusion, 0, (size_t)num_classes * (size_t)num_classes * sizeof *confusion);
    memset(out, 0, sizeof *out);
    bool training = cx_is_training();
    cx_no_grad_begin();
    cx_set_training(false);
    cx_loader *ld = cx_loader_new(d, batch, false, false);
    cx_tensor *x, *y;
    double total = 0;
    int64_t correct = 0, seen = 0;
    cx_status st = CX_OK;
    while (!st && cx_loader_next(ld, &x, &y)) {
        cx_tensor *logits = forward(user, x);
        int B = x->shape[0];
        if (!logits || logits->dtype != CX_F32 || logits->ndim != 2 || logits->shape[0] != B) {
            st = cx_set_error(CX_ERR_SHAPE, "cx_classifier_eval: the model's output is not [%d, classes] logits", B);
            break;
        }
        int C = logits->shape[1];
        for (int i = 0; i < B; i++)
            if (CX_I32P(y)[i] < 0 || CX_I32P(y)[i] >= C) {
                st = cx_set_error(CX_ERR_ARG, "cx_classifier_eval: label %d of example %lld is not one of the model's %d classes",
                                  (int)CX_I32P(y)[i], (long long)(seen + i), C);
                break;
            }
        if (st) break;
        total += cx_item(cx_cross_entropy(logits, y, CX_REDUCE_SUM));
        cx_tensor *pred = cx_argmax(logits, 1);
        for (int i = 0; i < B; i++) {
            int p = CX_I32P(pred)[i], t = CX_I32P(y)[i];
            correct += p == t;
            if (confusion && t < num_classes && p < num_classes) confusion[(size_t)t * num_classes + p]++;
        }
        seen += B;
        cx_step_reset();
    }
    if (st) cx_step_reset();
    cx_loader_free(ld);
    cx_set_training(training);
    cx_no_grad_end();
    if (st) {
        if (confusion) memset(confusion, 0, (size_t)num_classes * (size_t)num_classes * sizeof *confusion);
        return st;
    }
    out->n = seen;
    out->correct = correct;
    out->loss = seen ? total / (double)seen : NAN;
    out->accuracy = seen ? (double)correct / (double)seen : NAN;
    return CX_OK;
}

/* ---------------------------------------------------------------- the task */
static int cls_begin(void *user, const cx_train_pos *pos) {
    cx_classifier *c = user;
    cx_loader_reset(c->train);
    if (pos->batch == 0) c->seen = c->correct = 0;
    return cx_loader_num_batches(c->train);
}

static bool cls_next(void *user, const cx_train_pos *pos) {
    (void)pos;
    cx_classifier *c = user;
    return cx_loader_next(c->train, &c->x, &c->y);
}

/* Rows [r0, r1) of a step tensor or loader batch t [B, ...], as a view (no
 * copy, no graph). */
static cx_tensor *rows_view(cx_tensor *t, int r0, int r1) {
    cx_tensor *v = cx_detach(t);
    const int64_t row = t->shape[0] > 0 ? t->numel / t->shape[0] : 0;
    v->shape[0] = r1 - r0;
    v->numel = row * (r1 - r0);
    v->data = (char *)t->data + (size_t)(row * r0) * cx_dtype_size(t->dtype);
    v->flat = NULL;
    return v;
}

/* The mean loss over examples [r0, r1) of the current batch; the hits are
 * added to the counts atomically when `shared` (parts on several threads). */
static cx_tensor *cls_rows_loss(cx_classifier *c, int r0, int r1, bool shared) {
    cx_tensor *x = c->x, *y = c->y;
    if (r0 > 0 || r1 < x->shape[0]) {
        if (x->node || x->requires_grad || y->shape[0] != x->shape[0])
            cx_fatal("cx_classifier: a batch split into parts needs a loader batch x [B, ...] and labels y [B]");
        x = rows_view(x, r0, r1);
        y = rows_view(y, r0, r1);
    }
    if (c->augment.shift || c->augment.hflip) {
        int shape[4] = {x->shape[0], c->image_shape[0], c->image_shape[1], c->image_shape[2]};
        if ((int64_t)shape[1] * shape[2] * shape[3] * shape[0] != x->numel)
            cx_fatal("cx_classifier: image_shape [%d, %d, %d] does not fit a batch of %lld values", shape[1], shape[2],
                     shape[3], (long long)x->numel);
        cx_augment_images(cx_reshape(x, shape, 4), &c->augment);
    }
    cx_tensor *logits = c->forward(c->forward_user, x);
    cx_tensor *loss = cx_cross_entropy(logits, y, CX_REDUCE_MEAN);
    cx_tensor *pred = cx_argmax(logits, 1);
    const int B = x->shape[0];
    int64_t hits = 0;
    for (int i = 0; i < B; i++) hits += CX_I32P(pred)[i] == CX_I32P(y)[i];
    if (shared) {
        CX_OMP(atomic)
        c->correct += hits;
        CX_OMP(atomic)
        c->seen += B;
    } else {
        c->correct += hits;
        c->seen += B;
    }
    return loss;
}

static cx_tensor *cls_loss(void *user, const cx_train_pos *pos, int64_t *count) {
    (void)pos;
    cx_classifier *c = user;
    *count = c->x->shape[0];
    return cls_rows_loss(c, 0, c->x->shape[0], false);
}

/* Part `part` of `parts` of the batch (batch splitting across threads). */
static cx_tensor *cls_loss_part(void *user, const cx_train_pos *pos, int part, int parts, int64_t *count) {
    (void)pos;
    cx_classifier *c = user;
    const int B = c->x->shape[0];
    const int r0 = (int)((int64_t)B * part / parts), r1 = (int)((int64_t)B * (part + 1) / parts);
    *count = r1 - r0;
    return r1 > r0 ? cls_rows_loss(c, r0, r1, true) : NULL;
}

static cx_status cls_evaluate(void *user, const cx_train_info *info, cx_metrics *out) {
    (void)info;
    cx_classifier *c = user;
    double vl = NAN, va = NAN;
    if (c->val && cx_dataset_len(c->val) > 0) {
        cx_classifier_result r;
        cx_status st = cx_classifier_eval(c->forward, c->forward_user, c->val, c->eval_batch > 0 ? c->eval_batch : 500,
                                          NULL, 0, &r);
        if (st) return st;
        vl = r.loss;
        va = r.accuracy;
    }
    double sc[2] = {(double)c->seen, (double)c->correct};
    /* a sharded loader (data-parallel training): every rank evaluates at the
     * same points; the accuracy is that of all the ranks' examples */
    if (cx_loader_shards(c->train) > 1) cx_dist_allreduce_sum_f64(sc, 2);
    cx_metrics_set(out, "train_acc", sc[0] > 0 ? sc[1] / sc[0] : NAN);
    cx_metrics_set(out, "val_loss", vl);
    cx_metrics_set(out, "val_acc", va);
    return CX_OK;
}

static cx_status cls_save(void *user, const cx_train_pos *pos, cx_ckpt *ck) {
    (void)pos;
    cx_classifier *c = user;
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)c->seen);
    cx_ckpt_add_meta(ck, "cortex.classifier.seen", b);
    snprintf(b, sizeof b, "%lld", (long long)c->correct);
    cx_ckpt_add_meta(ck, "cortex.classifier.correct", b);
    return CX_OK;
}

static cx_status cls_count(const cx_st_file *f, const char *path, const char *key, int64_t *out) {
    const char *s = cx_st_meta(f, key);
    char *end;
    errno = 0;
    long long v = s && *s ? strtoll(s, &end, 10) : -1;
    if (!s || !*s || errno || *end || v < 0)
        return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata %s is %s (a classifier task's checkpoint?)", path,
                            key, s ? "malformed" : "missing");
    *out = v;
    return CX_OK;
}

static cx_status cls_load(void *user, const cx_st_file *f, const char *path, const cx_train_pos *pos) {
    (void)pos;
    cx_classifier *c = user;
    int64_t seen = 0, correct = 0;
    cx_status st = cls_count(f, path, "cortex.classifier.seen", &seen);
    if (!st) st = cls_count(f, path, "cortex.classifier.correct", &correct);
    if (!st && correct > seen)
        st = cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata cortex.classifier.correct exceeds .seen", path);
    if (st) return st;
    c->seen = seen;
    c->correct = correct;
    return CX_OK;
}

cx_train_task cx_classifier_task(cx_classifier *c) {
    if (!c || !c->forward || !c->train) cx_fatal("cx_classifier_task: forward and train are required");
    if ((c->augment.shift || c->augment.hflip) &&
        (c->image_shape[0] < 1 || c->image_shape[1] < 1 || c->image_shape[2] < 1))
        cx_fatal("cx_classifier_task: augmentation needs image_shape (C, H, W)");
    cx_train_task t = {c, cls_begin, cls_next, cls_loss, NULL, cls_evaluate, cls_save, cls_load, cls_loss_part};
    return t;
}
