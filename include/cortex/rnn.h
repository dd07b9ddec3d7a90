/* cortex/rnn.h -- see cortex.h. (being written) */
#ifndef CORTEX_RNN_H
#define CORTEX_RNN_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
