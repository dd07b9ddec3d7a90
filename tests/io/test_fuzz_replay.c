/* The libFuzzer targets (fuzz/fuzz_*.c) replayed with the test build's
 * compiler (gcc, clang, the SAN=1 build): every seed input of
 * fuzz/corpus/NAME/ and every input that once failed, kept in
 * fuzz/regressions/NAME/, runs through its target, which aborts on any
 * inconsistency; ASan/UBSan report the rest in the SAN=1 build. (make fuzz
 * builds the same targets for libFuzzer: tools/fuzz_ci.sh.) */
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "../../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_csv_one
#include "../../fuzz/fuzz_csv.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_netdef_one
#include "../../fuzz/fuzz_netdef.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text_one
#include "../../fuzz/fuzz_text.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_babi_one
#include "../../fuzz/fuzz_babi.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_onnx_one
#include "../../fuzz/fuzz_onnx.c"
#undef LLVMFuzzerTestOneInput

#include <dirent.h>
#include "test.h"

typedef int (*target_fn)(const uint8_t *, size_t);

/* Runs every file of dir through fn; returns the number of files. */
static int replay_dir(const char *dir, target_fn fn) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        void *buf;
        size_t len;
        CHECK_MSG(cx_read_file(path, &buf, &len, 1 << 24) == CX_OK, "%s", cx_last_error());
        fn(buf, len); /* aborts on failure */
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static int replay(const char *name, target_fn fn) {
    char dir[256];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", name);
    int n = replay_dir(dir, fn);
    CHECK_MSG(n >= 3, "%s: %d seed inputs", name, n);
    snprintf(dir, sizeof dir, "fuzz/regressions/%s", name);
    return n + replay_dir(dir, fn);
}

static void replay_safetensors(void) { replay("safetensors", fuzz_safetensors_one); }
static void replay_idx(void) { replay("idx", fuzz_idx_one); }
static void replay_csv(void) { replay("csv", fuzz_csv_one); }
static void replay_text(void) { replay("text", fuzz_text_one); }
static void replay_babi(void) { replay("babi", fuzz_babi_one); }
static void replay_onnx(void) { replay("onnx", fuzz_onnx_one); }
/* the .net target three ways: cx_net_check, cx_net_parse, and both compared */
static void replay_netdef(void) {
    cxf_net_diff = 0;
    cxf_net_full = 0;
    replay("netdef", fuzz_netdef_one);
    cxf_net_full = 1;
    replay("netdef", fuzz_netdef_one);
    cxf_net_full = 0;
    cxf_net_diff = 1;
    replay("netdef", fuzz_netdef_one);
    cxf_net_diff = 0;
}

int main(void) {
    RUN(replay_safetensors);
    RUN(replay_idx);
    RUN(replay_csv);
    RUN(replay_netdef);
    RUN(replay_text);
    RUN(replay_babi);
    RUN(replay_onnx);
    TEST_END();
}
