/* cortex -- command-line front end of the Cortex deep-learning framework. */
#include "cli.h"
#include <string.h>

static void usage(FILE *o) {
    fprintf(o,
            "cortex %s -- a deep-learning framework in C\n\n"
            "usage: cortex COMMAND [options]\n\n"
            "commands:\n"
            "  train    train an MLP or a .net network on an IDX (MNIST-format) data set\n"
            "  eval     evaluate a saved model on an IDX data set\n"
            "  summary  layers, output shapes, parameters and receptive fields of a network\n"
            "  info     list the tensors of a safetensors file\n"
            "  viz      pictures: filters, feature maps, learning curves\n"
            "  charlm   character-level LSTM language model: train, sample, eval\n"
            "  caption  captioned-canvas data sets for image captioning: gen, show\n"
            "  babi     bAbI question-answering files: show\n"
            "  memnn    end-to-end memory network on bAbI: train, eval, explain\n"
            "  ops      list every op of the library\n"
            "  help     show this text\n\n"
            "'cortex COMMAND --help' describes each command's options.\n",
            CORTEX_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        if (argc > 2) {
            char *h[] = {"--help"};
            if (!strcmp(argv[2], "train")) return cmd_train(1, h);
            if (!strcmp(argv[2], "eval")) return cmd_eval(1, h);
            if (!strcmp(argv[2], "info")) return cmd_info(1, h);
            if (!strcmp(argv[2], "summary")) return cmd_summary(1, h);
            if (!strcmp(argv[2], "viz")) return cmd_viz(1, h);
            if (!strcmp(argv[2], "charlm")) return cmd_charlm(1, h);
            if (!strcmp(argv[2], "ops")) return cmd_ops(1, h);
            if (!strcmp(argv[2], "caption")) return cmd_caption(1, h);
            if (!strcmp(argv[2], "babi")) return cmd_babi(1, h);
            if (!strcmp(argv[2], "memnn")) return cmd_memnn(1, h);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "--version")) {
        printf("cortex %s (BLAS: %s)\n", CORTEX_VERSION, cx_blas_name());
        return 0;
    }
    if (!strcmp(c, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(c, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(c, "summary")) return cmd_summary(argc - 2, argv + 2);
    if (!strcmp(c, "viz")) return cmd_viz(argc - 2, argv + 2);
    if (!strcmp(c, "charlm")) return cmd_charlm(argc - 2, argv + 2);
    if (!strcmp(c, "ops")) return cmd_ops(argc - 2, argv + 2);
    if (!strcmp(c, "caption")) return cmd_caption(argc - 2, argv + 2);
    if (!strcmp(c, "babi")) return cmd_babi(argc - 2, argv + 2);
    if (!strcmp(c, "memnn")) return cmd_memnn(argc - 2, argv + 2);
    fprintf(stderr, "cortex: unknown command '%s' (see 'cortex help')\n", c);
    return 2;
}
