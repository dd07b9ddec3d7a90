/*
 * cortex.h -- the one public header of Cortex, a deep-learning framework in C.
 *
 *   #include <cortex.h>      and link with  -lcortex  (pkg-config cortex)
 *
 * The API is split into a few sub-headers, all included here:
 *   cortex/core.h   tensors, arenas, random streams, errors (cx_try), autograd,
 *                   the op table, ops, losses, GEMM
 *   cortex/nn.h     the base module; Linear, Sequential, activations, Embedding;
 *                   initialisers; sequence losses
 *   cortex/optim.h  optimisers, LR schedules, gradient clipping
 *   cortex/io.h     safetensors, IDX, CSV, PNG output and a bitmap font, atomic
 *                   file writes, animated GIFs and PNG film strips
 *   cortex/data.h   datasets, seeded minibatch iterators, augmentation, text
 *                   corpora and the truncated-BPTT batcher
 *   cortex/models.h perceptron and kernel perceptron
 *   cortex/conv.h   convolutions (1-D, 2-D, 3-D, transposed) and their modules
 *   cortex/pool.h   pooling (max, average, adaptive, global) and up-sampling
 *   cortex/sampler.h the spatial transformer: affine grids, bilinear grid
 *                   sampling, the STN module
 *   cortex/norm.h   batch norm and layer norm
 *   cortex/rnn.h    recurrent cells and layers (RNN, LSTM, GRU)
 *   cortex/attention.h  scaled dot-product (fused), Luong and Bahdanau
 *                   attention, multi-head attention
 *   cortex/memory.h Neural Turing Machine memory ops: addressing, read, write
 *   cortex/seqtasks.h the NTM paper's algorithmic tasks (copy, repeat copy,
 *                   associative recall): seeded generators, bits-wrong metric
 *   cortex/ntm.h    the Neural Turing Machine module (LSTM / feed-forward
 *                   controller, read and write heads), files
 *   cortex/dnc.h    Differentiable Neural Computer: memory ops (usage,
 *                   allocation, temporal links), access step, the model
 *   cortex/memnn.h  the memory network with strong supervision (I, G, O, R)
 *   cortex/kvmem.h  key-value memory networks and the generated film
 *                   knowledge base they answer questions on
 *   cortex/decode.h sampling, greedy decoding, beam search, scheduled sampling
 *   cortex/caption.h captioned canvases (image-captioning data), corpus BLEU
 *   cortex/babi.h   the bAbI question-answering tasks: a reader for the
 *                   released files, a word vocabulary, MemN2N tensors
 *   cortex/memn2n.h the end-to-end memory network (MemN2N) for bAbI: fused
 *                   forward/backward, the paper's training recipe, files
 *   cortex/netdef.h networks described in text files, model summaries
 *   cortex/transformer.h a decoder-only Transformer language model (pre-norm
 *                   blocks, learned positions, weight tying, key/value-cache
 *                   decoding)
 *   cortex/charlm.h character-level language models: the LSTM, and the
 *                   Transformer trained, saved and sampled the same way
 *   cortex/rl.h     stochastic policies, the score-function (REINFORCE) estimator
 *   cortex/env.h    environments for reinforcement learning (CartPole,
 *                   Acrobot, MountainCar, Pendulum, FrozenLake, Catch),
 *                   vectorised copies, rendering
 *   cortex/tabular.h tabular RL: value and policy iteration on a model,
 *                   exact policy evaluation, Q-learning, SARSA
 *   cortex/agent.h  agents: REINFORCE, A2C, PPO, DQN; training, evaluation,
 *                   checkpoints with exact resume
 *   cortex/plot.h   figures: canvas, colour maps and scales, labelled heatmaps
 *   cortex/train.h  the trainer (loop, metrics, checkpoints, exact resume),
 *                   classifier evaluation, clocks
 *   cortex/onnx.h   ONNX models: reading and checking (protobuf-c), running
 *                   the graph on Cortex ops, TensorProto files
 *   cortex/dist.h   data-parallel training over MPI: ranks, parameter
 *                   broadcast, gradient all-reduce in buckets during backward,
 *                   sharded loaders (one process without MPI)
 *   cortex/saliency.h  what a network learned: gradient saliency, Grad-CAM,
 *                   receptive boxes, the strongest patches of a unit; the
 *                   Itti-Koch-Niebur bottom-up saliency map of an image
 *   cortex/detect.h object detection: RoI pooling and RoIAlign, box IoU,
 *                   NMS, box regression targets, average precision
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
#include "cortex/conv.h"
#include "cortex/pool.h"
#include "cortex/sampler.h"
#include "cortex/norm.h"
#include "cortex/rnn.h"
#include "cortex/attention.h"
#include "cortex/memory.h"
#include "cortex/seqtasks.h"
#include "cortex/ntm.h"
#include "cortex/dnc.h"
#include "cortex/kvmem.h"
#include "cortex/memnn.h"
#include "cortex/decode.h"
#include "cortex/caption.h"
#include "cortex/babi.h"
#include "cortex/memn2n.h"
#include "cortex/netdef.h"
#include "cortex/transformer.h"
#include "cortex/charlm.h"
#include "cortex/rl.h"
#include "cortex/env.h"
#include "cortex/tabular.h"
#include "cortex/agent.h"
#include "cortex/plot.h"
#include "cortex/train.h"
#include "cortex/onnx.h"
#include "cortex/dist.h"
#include "cortex/saliency.h"
#include "cortex/detect.h"

#endif
