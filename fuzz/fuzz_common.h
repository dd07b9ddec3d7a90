/* Shared by the libFuzzer targets (fuzz/fuzz_*.c) and by the regression test
 * that replays their corpora with any compiler (tests/io/test_fuzz_replay.c).
 *
 * Readers that take a path get the fuzz input through a memory file
 * (memfd_create: a regular file that needs no directory and leaves nothing
 * behind when the fuzzer stops), named /proc/self/fd/N. */
#ifndef CX_FUZZ_COMMON_H
#define CX_FUZZ_COMMON_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cortex.h>

/* Every target calls this first: one thread, a clean arena per input. */
__attribute__((unused)) static void cxf_begin(void) {
    static int ready;
    if (!ready) {
        cx_set_threads(1);
        ready = 1;
    }
    cx_step_reset();
}

/* Write data to the target's memory file (created on first use) and return
 * its path; the file is exactly `size` bytes long afterwards. */
__attribute__((unused)) static const char *cxf_file(const char *tag, const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create(tag, 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    return path;
}

/* A NUL-terminated copy (free with free()). */
__attribute__((unused)) static char *cxf_text(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* A reader's failure must come with a message. */
__attribute__((unused)) static void cxf_check_error(cx_status st) {
    if (st != CX_OK && !*cx_last_error()) {
        fprintf(stderr, "status %d without a message\n", (int)st);
        abort();
    }
}
#endif
