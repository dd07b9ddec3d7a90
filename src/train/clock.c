/* Clocks and named metrics of cortex/train.h. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "cortex/core.h"
#include "cortex/train.h"

double cx_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cx_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool metric_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 31) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

void cx_metrics_set(cx_metrics *m, const char *name, double value) {
    if (!m) cx_fatal("cx_metrics_set: NULL metrics");
    if (!metric_name_ok(name))
        cx_fatal("cx_metrics_set: bad metric name '%s' (1..31 characters from A-Z a-z 0-9 _ . -)", name ? name : "(null)");
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->name[i], name)) {
            m->value[i] = value;
            return;
        }
    if (m->n < 0 || m->n >= CX_METRICS_MAX) cx_fatal("cx_metrics_set: more than %d metrics ('%s')", CX_METRICS_MAX, name);
    strcpy(m->name[m->n], name);
    m->value[m->n++] = value;
}

double cx_metrics_get(const cx_metrics *m, const char *name) {
    if (!m || !name) return NAN;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->name[i], name)) return m->value[i];
    return NAN;
}
