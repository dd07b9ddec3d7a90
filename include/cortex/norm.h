/* cortex/norm.h -- see cortex.h. (being written) */
#ifndef CORTEX_NORM_H
#define CORTEX_NORM_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
