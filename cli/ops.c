/* cortex ops -- the op table: every op of the library, core and nn alike. */
#include "cli.h"
#include <string.h>

int cmd_ops(int argc, char **argv) {
    cli_flag f[] = {
        {"names", "print the names only, one per line", true, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse("ops", argc, argv, f, nf, pos, 0, &npos, &help)) return 2;
    if (help) {
        cli_usage("ops", "[options]",
                  "List every op of the library (the op table that check mode, graph dumps and\n"
                  "cx_op_find read): its name, how many outputs one call produces and whether\n"
                  "it has a gradient.",
                  f, nf);
        return 0;
    }
    bool names = cli_get(f, nf, "names") != NULL;
    int n = cx_op_count();
    if (!names) printf("%-28s %7s  %s\n", "op", "outputs", "gradient");
    for (int i = 0; i < n; i++) {
        const cx_op_desc *op = cx_op_at(i);
        if (names) printf("%s\n", op->name);
        else printf("%-28s %7d  %s\n", op->name, cx_op_outputs(op), op->backward ? "yes" : "no");
    }
    if (!names) printf("%d ops\n", n);
    return 0;
}
