/* cortex -- command-line front end of the Cortex deep-learning framework. */
#include "cli.h"
#include <string.h>

/* Every command, in the order `cortex help` lists them: the help text and the
 * dispatch both come from this table, so a command cannot be added to one and
 * forgotten in the other (tests/cli/test_help_cli.c also checks that every
 * cmd_ function of cli.h is listed). */
static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *about;
} commands[] = {
    {"train", cmd_train, "train an MLP or a .net network on an IDX (MNIST-format) data set"},
    {"eval", cmd_eval, "evaluate a saved model (or a PyTorch state_dict with --net) on an IDX data set"},
    {"summary", cmd_summary, "layers, output shapes, parameters and receptive fields of a network"},
    {"info", cmd_info, "list the tensors and metadata of a safetensors file"},
    {"viz", cmd_viz, "pictures: filters, feature maps, learning curves"},
    {"charlm", cmd_charlm, "character-level language model (LSTM or Transformer): train, sample, eval"},
    {"caption", cmd_caption, "captioned-canvas data sets for image captioning: gen, show"},
    {"babi", cmd_babi, "bAbI question-answering files: show, gen"},
    {"memnn", cmd_memnn, "end-to-end memory network (MemN2N) on bAbI: train, eval, explain"},
    {"rl", cmd_rl, "reinforcement learning: train, play, envs (CartPole, ...; REINFORCE, A2C, PPO, DQN)"},
    {"ops", cmd_ops, "list every op of the library"},
    {"onnx", cmd_onnx, "ONNX models: info (inputs, outputs, ops, unsupported nodes), run on .pb inputs, export"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof *commands))

static void usage(FILE *o) {
    fprintf(o,
            "cortex %s -- a deep-learning framework in C\n\n"
            "usage: cortex COMMAND [options]\n\n"
            "commands:\n",
            CORTEX_VERSION);
    for (int i = 0; i < NCOMMANDS; i++) fprintf(o, "  %-8s %s\n", commands[i].name, commands[i].about);
    fprintf(o, "  %-8s %s\n", "help", "show this text ('cortex help COMMAND': that command's options)");
    fprintf(o,
            "\n'cortex COMMAND --help' describes each command's options. Common ones: --threads N\n"
            "(OpenMP and BLAS threads; 0 = all cores; default 1), --seed S.\n"
            "'cortex --version' prints the version and the BLAS in use.\n");
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        if (argc > 2) {
            char *h[] = {"--help"};
            for (int i = 0; i < NCOMMANDS; i++)
                if (!strcmp(argv[2], commands[i].name)) return commands[i].fn(1, h);
            fprintf(stderr, "cortex help: unknown command '%s' (see 'cortex help')\n", argv[2]);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "--version")) {
        printf("cortex %s (BLAS: %s)\n", CORTEX_VERSION, cx_blas_name());
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(c, commands[i].name)) return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "cortex: unknown command '%s' (see 'cortex help')\n", c);
    return 2;
}

/* Under mpirun (a build with MPI): every rank runs the command; only rank 0
 * prints to stdout. A rank that ends with an error stops them all (the
 * others may be waiting for it in a collective). */
int main(int argc, char **argv) {
    cx_dist_init(&argc, &argv);
    if (cx_dist_size() > 1 && cx_dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "cortex: rank %d: cannot silence stdout\n", cx_dist_rank());
        cx_dist_abort(1);
    }
    int rc = run(argc, argv);
    if (rc && cx_dist_size() > 1) {
        fprintf(stderr, "cortex: rank %d of %d: exit status %d\n", cx_dist_rank(), cx_dist_size(), rc);
        cx_dist_abort(rc);
    }
    cx_dist_finalize();
    return rc;
}
