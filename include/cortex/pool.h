/* cortex/pool.h -- see cortex.h. (being written) */
#ifndef CORTEX_POOL_H
#define CORTEX_POOL_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
