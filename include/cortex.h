/*
 * cortex.h -- the one public header of Cortex, a deep-learning framework in C.
 *
 *   #include <cortex.h>      and link with  -lcortex  (pkg-config cortex)
 *
 * The API is split into a few sub-headers, all included here:
 *   cortex/core.h   tensors, arenas, PRNG, errors, autograd, ops, losses, GEMM
 *   cortex/nn.h     modules (Linear, Sequential, activations), initialisers
 *   cortex/optim.h  optimisers, LR schedules, gradient clipping
 *   cortex/io.h     safetensors, IDX, CSV, atomic file writes
 *   cortex/data.h   datasets and seeded minibatch iterators
 *   cortex/models.h perceptron and kernel perceptron
 * Every public name starts with cx_ (types, functions) or CX_ (macros, enums).
 */
#ifndef CORTEX_H
#define CORTEX_H

#define CORTEX_VERSION "0.1.0"

#include "cortex/core.h"
#include "cortex/nn.h"
#include "cortex/optim.h"
#include "cortex/io.h"
#include "cortex/data.h"
#include "cortex/models.h"

#endif
