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

/* The MLP model file: safetensors with metadata cortex.arch = "mlp",
 * cortex.sizes = "784,256,10", cortex.act = "relu". */
cx_status cli_model_save(const char *path, cx_module *net, const int *sizes, int n, cx_act act);
cx_status cli_model_load(const char *path, cx_module **net, int *sizes, int *n, cx_act *act);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
#endif
