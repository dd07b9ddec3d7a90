/* cortex/nn.h -- modules (Linear, activations, Dropout, Sequential) and
 * parameter initialisers. See cortex.h.
 *
 * A module owns its parameters (persistent tensors named like PyTorch's
 * state_dict: "weight", "bias"; inside a Sequential "fc1.weight" or
 * "0.weight"). cx_module_forward runs it on a step tensor; the intermediates
 * live in the current arena. cx_module_free frees the module, its children
 * and their parameters.
 *
 *   cx_module *net = cx_sequential_new();
 *   cx_sequential_add(net, "fc1", cx_linear_new(784, 256, true));
 *   cx_sequential_add(net, "act", cx_activation_new(CX_ACT_RELU, 0));
 *   cx_sequential_add(net, "fc2", cx_linear_new(256, 10, true));
 *   cx_params ps; cx_params_init(&ps); cx_module_params(net, &ps);
 *   // ps holds fc1.weight [256,784], fc1.bias, fc2.weight, fc2.bias
 */
#ifndef CORTEX_NN_H
#define CORTEX_NN_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_module cx_module;
typedef struct cx_module_ops {
    const char *kind;                                    /* "Linear", "Sequential", ... */
    cx_tensor *(*forward)(cx_module *m, cx_tensor *x);
    void (*params)(cx_module *m, cx_params *out);        /* append own + children's */
    void (*rename)(cx_module *m, const char *prefix);    /* prefix parameter names */
    void (*describe)(const cx_module *m, char *buf, size_t n); /* "Linear(784 -> 256)" */
    void (*destroy)(cx_module *m);                       /* free params and self */
    /* Non-trainable state saved with the model (PyTorch "buffers", e.g. batch
     * norm's running_mean / running_var / num_batches_tracked); may be NULL. */
    void (*buffers)(cx_module *m, cx_params *out);
} cx_module_ops;
struct cx_module {
    const cx_module_ops *ops;
};

cx_tensor *cx_module_forward(cx_module *m, cx_tensor *x);
/* Append the module's parameters (in registration order) to `out`. */
void cx_module_params(cx_module *m, cx_params *out);
void cx_module_free(cx_module *m);
/* Append the module's buffers (non-trainable state) to `out`. */
void cx_module_buffers(cx_module *m, cx_params *out);
/* Parameters then buffers: everything a PyTorch state_dict holds (save/load this). */
void cx_module_state(cx_module *m, cx_params *out);
const char *cx_module_kind(const cx_module *m);
void cx_module_describe(const cx_module *m, char *buf, size_t n);
/* Print one line per layer and the parameter total to stdout. */
void cx_module_print(cx_module *m);

/* Linear: y = x W^T + b, W [out, in], b [out]; PyTorch's default init
 * (kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)) for W and b). */
cx_module *cx_linear_new(int in_features, int out_features, bool bias);
cx_tensor *cx_linear_weight(cx_module *m);
cx_tensor *cx_linear_bias(cx_module *m);   /* NULL without bias */

typedef enum {
    CX_ACT_IDENTITY, CX_ACT_RELU, CX_ACT_LEAKY_RELU, CX_ACT_SIGMOID, CX_ACT_TANH,
    CX_ACT_ELU, CX_ACT_GELU, CX_ACT_SOFTPLUS, CX_ACT_MAXOUT, CX_ACT_SIGN,
    CX_ACT_SOFTMAX, CX_ACT_LOG_SOFTMAX
} cx_act;
/* Parameter-free activation module. `param`: leaky_relu slope (0 -> 0.01),
 * elu alpha (0 -> 1), maxout group size k; ignored otherwise.
 * SIGN is the McCulloch-Pitts threshold unit (+1 / -1, no gradient). */
cx_module *cx_activation_new(cx_act act, float param);
/* Parse "relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softplus",
 * "identity", "sign", "maxout"; returns false if unknown. */
bool cx_act_parse(const char *name, cx_act *out);
const char *cx_act_name(cx_act a);
/* Apply an activation function directly. */
cx_tensor *cx_activate(cx_act act, float param, cx_tensor *x);

cx_module *cx_dropout_new(float p);

/* Sequential: children run in order. name NULL -> "0", "1", ... as PyTorch. */
cx_module *cx_sequential_new(void);
/* Takes ownership of `child`. Renames its parameters "<name>.<param>". */
void cx_sequential_add(cx_module *seq, const char *name, cx_module *child);
int cx_sequential_len(const cx_module *seq);
cx_module *cx_sequential_get(cx_module *seq, int i);

/* Build an MLP: sizes[0] inputs, sizes[n-1] outputs, `act` between layers,
 * optional dropout p after each hidden activation; layers named fc1, fc2, ...
 * (activations "act1", dropout "drop1", which hold no parameters). */
cx_module *cx_mlp_new(const int *sizes, int n, cx_act act, float dropout);

/* ---- initialisers (in place, drawing from the current random stream). Fans follow
 * PyTorch: fan_in = size(1) * receptive field, fan_out = size(0) * receptive. */
typedef enum { CX_FAN_IN, CX_FAN_OUT } cx_fan_mode;
/* Recommended gain as torch.nn.init.calculate_gain ("linear", "sigmoid",
 * "tanh" 5/3, "relu" sqrt(2), "leaky_relu" with `param` slope, "selu" 3/4). */
float cx_init_gain(const char *nonlinearity, float param);
void cx_init_fans(const cx_tensor *t, int *fan_in, int *fan_out);
void cx_init_uniform(cx_tensor *t, float lo, float hi);
void cx_init_normal(cx_tensor *t, float mean, float std);
void cx_init_constant(cx_tensor *t, float v);
void cx_init_xavier_uniform(cx_tensor *t, float gain);
void cx_init_xavier_normal(cx_tensor *t, float gain);
/* a: negative slope of the rectifier after this layer (0 for relu). */
void cx_init_kaiming_uniform(cx_tensor *t, float a, cx_fan_mode mode, const char *nonlinearity);
void cx_init_kaiming_normal(cx_tensor *t, float a, cx_fan_mode mode, const char *nonlinearity);
/* (Semi-)orthogonal matrix scaled by gain; t viewed as [size(0), rest]. */
void cx_init_orthogonal(cx_tensor *t, float gain);

#ifdef __cplusplus
}
#endif
#endif
