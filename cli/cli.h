/* Internal header of the cortex command-line tool. */
#ifndef CORTEX_CLI_H
#define CORTEX_CLI_H
#include <cortex.h>
#include <stdio.h>

/* Flag parsing: flags are "--name value" or "--name" (boolean). */
typedef struct {
    const char *name;   /* without the leading -- */
    const char *help;
    bool boolean;       /* takes no value */
    const char *value;  /* default / parsed value (NULL = unset) */
} cli_flag;

/* Parse argv into flags (and positional args). Returns 0, or prints one line
 * naming the problem and returns 2. `--help` sets *help. */
int cli_parse(const char *cmd, int argc, char **argv, cli_flag *flags, int nflags, const char **pos,
              int max_pos, int *npos, bool *help);
void cli_usage(const char *cmd, const char *synopsis, const char *about, const cli_flag *flags, int nflags);
const char *cli_get(const cli_flag *flags, int n, const char *name);
/* Typed accessors: print an error and return false on a malformed value. */
bool cli_int(const char *cmd, const cli_flag *flags, int n, const char *name, int lo, int hi, int *out);
bool cli_double(const char *cmd, const cli_flag *flags, int n, const char *name, double lo, double hi, double *out);

/* Resolve a data location: a directory holding {prefix}-images-idx3-ubyte[.gz]
 * and {prefix}-labels-idx1-ubyte[.gz]. Returns false (message in buf) if absent. */
bool cli_find_idx(const char *dir, const char *prefix, char *images, char *labels, size_t n);

/* A model of the CLI: an MLP (from --hidden) or a network from a .net file.
 * Saved as safetensors holding its state (parameters + buffers, PyTorch
 * names) and metadata: cortex.arch = "mlp" (cortex.sizes "784,256,10",
 * cortex.act "relu") or "net" (cortex.net = the .net text). A checkpoint is
 * the trainer's (cortex/train.h): the same tensors and metadata plus the
 * optimiser state, the random streams and the position, so it also loads as
 * a model file. */
typedef struct {
    cx_module *net;
    bool is_netdef;
    char *net_text;                      /* .net source (netdef models) */
    int sizes[16], ns;                   /* MLP layer sizes */
    cx_act act;
    int in_shape[CX_MAX_DIMS], in_ndim;  /* one example's input shape */
} cli_model;
void cli_model_mlp(cli_model *m, const int *sizes, int n, cx_act act, float dropout);
cx_status cli_model_from_netfile(const char *path, cli_model *m);
/* Forward a batch of flat examples x [B, F] (reshaped to the model's input shape). */
cx_tensor *cli_model_forward(cli_model *m, cx_tensor *x);
/* Number of input features (product of in_shape). */
int cli_model_features(const cli_model *m);
void cli_model_free(cli_model *m);
/* The model's metadata (format, cortex.arch, cortex.sizes / cortex.act or
 * cortex.net): at most CLI_MODEL_META pairs, pointing into m and into `sizes`
 * (a buffer of n bytes); returns their number. */
#define CLI_MODEL_META 4
int cli_model_meta(const cli_model *m, const char **keys, const char **values, char *sizes, size_t n);
/* Save the model (state and metadata), atomically. */
cx_status cli_model_save(const char *path, cli_model *m);
/* Load a model file or checkpoint. The caller frees with cli_model_free. */
cx_status cli_model_load(const char *path, cli_model *m);
/* The same; netfile (a .net file, may be NULL) names the network for a file
 * without Cortex metadata (a PyTorch state_dict saved with safetensors: its
 * tensor names are the network's state names), and overrides the metadata
 * when given. */
cx_status cli_model_load_net(const char *path, const char *netfile, cli_model *m);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_viz(int argc, char **argv);
int cmd_charlm(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_caption(int argc, char **argv);
int cmd_babi(int argc, char **argv);
#endif
