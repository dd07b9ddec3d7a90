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

/* Every F32 weight and buffer of m is finite; else CX_ERR_FORMAT naming path,
 * the count and the first tensor holding NaN or inf. */
cx_status cli_model_check_finite(cli_model *m, const char *path);
/* The same for a command: true if finite; with `allow`, true after a warning
 * line; otherwise false after the error line (naming --allow-nonfinite). */
bool cli_model_finite_or_allowed(const char *cmd, cli_model *m, const char *path, bool allow);
/* The run configuration a checkpoint records, so that --resume can refuse
 * other flags: one metadata pair "cortex.run.NAME" = value per set flag not in
 * `skip` (NULL-terminated), plus "cortex.run.data-id" = data_id (what the data
 * is: examples and a fingerprint). Keys are written into buf (n bytes); returns
 * the number of pairs (at most cap). */
int cli_run_meta(const cli_flag *f, int nf, const char *const *skip, const char *data_id, const char **keys,
                 const char **values, int cap, char *buf, size_t n);
/* Compare this run's flags and data with those recorded in checkpoint ck
 * (path): 0 if they match (or with `override`, after a note naming the
 * differences), else 2 after one error line naming each flag and both values.
 * Flags in `inherit` that this run leaves unset take the checkpoint's value. */
int cli_run_check(const char *cmd, const char *path, const cx_st_file *ck, const cli_flag *f, int nf,
                  const char *const *skip, const char *const *inherit, const char *data_id, bool override);
/* FNV-1a over n bytes, continuing from h (0 to start). */
uint64_t cli_fingerprint(uint64_t h, const void *data, size_t n);
/* --FLAG PATH can be written: not a directory, its directory exists and takes
 * a new file (a probe is created and removed). Prints the error, returns false. */
bool cli_check_writable(const char *cmd, const char *flag, const char *path);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_viz(int argc, char **argv);
int cmd_charlm(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_caption(int argc, char **argv);
int cmd_babi(int argc, char **argv);
/* cortex summary of a char-LM model file (cortex.arch = charlm, either
 * architecture): prints it and returns 0, or 1 after printing an error;
 * -1 (nothing printed) when the file is not a char-LM model. */
int cli_charlm_summary(const char *path);

/* Class names (cli/classes.c), for eval --confusion and viz maps. --classes
 * SPEC: "auto" (NULL: the default) -- Fashion-MNIST's names when the data
 * directory's path contains "fashion" and the model has at most 10 classes,
 * else none; "fashion"; "none"; or a file with one name per line. Returns
 * false after printing a message ("cortex CMD: ...") when the names cannot
 * be had; out->n is 0 when there are none. */
#define CLI_MAX_CLASSES 1000
typedef struct {
    int n;
    char name[CLI_MAX_CLASSES][48];
} cli_classes;
bool cli_classes_load(const char *cmd, const char *spec, const char *data_dir, int n_classes, cli_classes *out);
/* Name of a label (NULL when unknown). */
const char *cli_class_name(const cli_classes *c, int label);
/* The C x C confusion matrix conf[true * C + predicted] with the class
 * numbers on top and numbers and names (when known) on the left. */
void cli_print_confusion(const int64_t *conf, int C, const cli_classes *names);
int cmd_memnn(int argc, char **argv);
int cmd_rl(int argc, char **argv);
int cmd_onnx(int argc, char **argv);
#endif
