/* cortex/conv.h -- see cortex.h. (being written) */
#ifndef CORTEX_CONV_H
#define CORTEX_CONV_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
