/* cortex/seq.h -- see cortex.h. (being written) */
#ifndef CORTEX_SEQ_H
#define CORTEX_SEQ_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
