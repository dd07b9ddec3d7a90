#!/usr/bin/env bash
# make bench: Cortex vs PyTorch on this machine, same shapes/model/batch/optimiser
# and thread count, run back to back; prints ratios (the machine drifts, so only
# ratios measured together count). PyTorch: torch.set_num_threads(T) and
# OPENBLAS_NUM_THREADS=T; its best setting (min over 1 and 2 threads) is shown too.
# Usage: tools/bench.sh BUILD_DIR   (results also saved to out/bench.txt)
set -uo pipefail
B=${1:?build dir}
PY=/usr/bin/python3
mkdir -p out
log=out/bench.txt
: > "$log"
have_torch=0
$PY -c 'import torch' 2>/dev/null && have_torch=1
[ $have_torch = 1 ] || echo "(python3-torch not installed: Cortex figures only; apt-get install python3-torch)"
run() { echo "+ $*" >&2; "$@" 2>&1 | tee -a "$log" | grep -E '^(TORCH_)?(GEMM|MLP_STEP|MLP_EPOCH|OPTIM_STEP|CONV|RNN|ATTN|CHARLM|CNN_STEP|CNN_EPOCH|G2P_STEP|TLM|NTM|MEMN2N|RL_ENV|RL_TRAIN|RL_SOLVE|ONNX) ' ; }
# Sections: all by default; BENCH="gemm mlp optim conv rnn attention charlm cnn g2p transformer ntm memn2n rl onnx" picks some.
want() { [ -z "${BENCH:-}" ] || [[ " $BENCH " == *" $1 "* ]]; }
FM=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
# The MLP and CNN sections train on the full Fashion-MNIST (Debian's
# dataset-fashion-mnist): without it they cannot run, which is said (first and
# last) and makes the run fail, rather than dropping them silently.
missing_data=
if { want mlp || want cnn; } && ! [ -f "$FM/train-images-idx3-ubyte.gz" ] && ! [ -f "$FM/train-images-idx3-ubyte" ]; then
  missing_data="make bench: the MLP and CNN sections need Fashion-MNIST in $FM, which is missing: install it with 'apt-get install dataset-fashion-mnist' (as a user: sudo apt-get install dataset-fashion-mnist), or set FASHION_MNIST=DIR, or pick other sections with BENCH=\"gemm optim conv rnn attention charlm g2p transformer\""
  echo "$missing_data" >&2
fi
want_data() { want "$1" && [ -z "$missing_data" ]; }
want gemm && for T in 1 2; do
  run env CX_THREADS=$T "$B/bench/bench_gemm" $T >/dev/null
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T OMP_NUM_THREADS=$T $PY tools/bench_torch_gemm.py $T >/dev/null
done
want_data mlp && for T in 1 2; do
  run "$B/bench/bench_mlp" --hidden 256,256 --epochs 0 --steps 200 --threads $T --data "$FM" >/dev/null
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_mlp.py --hidden 256,256 --epochs 0 --steps 200 --threads $T --data "$FM" >/dev/null
done
want_data mlp && for T in 1 2; do
  run "$B/bench/bench_mlp" --hidden 256 --epochs 1 --threads $T --data "$FM" >/dev/null
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_mlp.py --hidden 256 --epochs 1 --threads $T --data "$FM" >/dev/null
done
# Adam step alone, per-tensor vs flat buffer (cx_flat): the 784-256-10 MLP
# (4 tensors) and a 784-64x6-10 one (14 smaller tensors). No data needed.
want optim && for H in 256 64,64,64,64,64,64; do for T in 1 2; do
  run "$B/bench/bench_mlp" --hidden $H --epochs 0 --optim-steps 1000 --optim-reps 15 --threads $T >/dev/null
done; done
want conv && for T in 1 2; do
  run "$B/bench/bench_conv" $T >/dev/null
  for L in nchw channels_last; do
    [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_conv.py $T 0 $L >/dev/null
  done
done
want rnn && for T in 1 2; do
  run "$B/bench/bench_rnn" $T >/dev/null
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_rnn.py $T >/dev/null
done
# multi-head self-attention (B=32, T=64, E=256, 8 heads), forward + backward
want attention && for T in 1 2; do
  run "$B/bench/bench_attention" $T >/dev/null
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_attention.py $T >/dev/null
done
if want charlm && [ $have_torch = 1 ]; then
  txt=out/bench_rand90.txt
  $PY -c "import random; random.seed(1); print(''.join(chr(33 + random.randrange(90)) for _ in range(400000)), end='')" > "$txt"
  for T in 1 2; do
    echo "+ cortex charlm train (1x256, batch 32, seq 64) threads=$T" >&2
    "$B/cortex" charlm train --text "$txt" --layers 1 --hidden 256 --embed 64 --batch 32 --seq 64 --val-frac 0 \
      --steps 100 --threads $T --quiet --out out/bench_lm.safetensors 2>&1 | tee -a "$log" |
      sed -n 's/.*(\([0-9]*\) chars\/s training).*/CHARLM threads='$T' chars_per_s=\1/p' | tee -a "$log"
    run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_charlm.py --threads $T --steps 60 >/dev/null
  done
fi
if want_data cnn && [ -x "$B/bench/bench_cnn" ] && [ -f tools/bench_torch_cnn.py ]; then
  for T in 1 2; do
    run "$B/bench/bench_cnn" --net models/lenet5.net --epochs 1 --threads $T >/dev/null
    # PyTorch in both memory formats (channels_last is faster on Intel's oneDNN); the faster counts
    for L in "" --channels-last; do
      [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_cnn.py --net lenet5 --epochs 1 --threads $T $L >/dev/null
    done
  done
  # small ResNet (3x3 convolutions with batch norm): training step time
  for T in 1 2; do
    run "$B/bench/bench_cnn" --net models/small_resnet.net --epochs 0 --steps 30 --threads $T >/dev/null
    for L in "" --channels-last; do
      [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_cnn.py --net small_resnet --epochs 0 --steps 30 --threads $T $L >/dev/null
    done
  done
fi
# attention seq2seq (examples/g2p.c): one training step, batch 64, 7-letter words
if want g2p && [ -x "$B/examples/g2p" ]; then
  for A in additive general none; do for T in 1 2; do
    run "$B/examples/g2p" --bench-steps 30 --attention $A --threads $T >/dev/null
    [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_g2p.py --attention $A --steps 30 --threads $T >/dev/null
  done; done
fi
# Transformer char-LM training step (bench/bench_tlm.c = the step of `cortex charlm
# train --arch transformer`): 4 blocks, embed 256, 4 heads, ffn 1024, 91 symbols,
# batch 32 x seq 128, Adam + clipping; Cortex and PyTorch alternate, TLM_REPS times
# (default 3; the summary shows medians), 10 timed steps after 3 warm-up steps each.
if want transformer; then
  for T in 1 2; do for rep in $(seq "${TLM_REPS:-3}"); do
    run "$B/bench/bench_tlm" $T --steps 10 >/dev/null
    [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_transformer_lm.py --threads $T --steps 10 >/dev/null
  done; done
fi
# NTM copy-task training (bench/bench_ntm.c, the paper's model: LSTM 100, 1 read + 1 write
# head, memory 128 x 20; RMSprop + clipping; lengths 1..20 on a fixed schedule), sequences/s,
# Cortex and PyTorch back to back, 1 thread, batch 1 and 16.
if want ntm; then
  for NB in 1 16; do
    run "$B/bench/bench_ntm" 1 --batch $NB --steps $((NB == 1 ? 100 : 40)) >/dev/null
    [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=1 $PY tools/bench_torch_ntm.py 1 --batch $NB --steps $((NB == 1 ? 100 : 40)) >/dev/null
  done
fi
# MemN2N (3 hops, PE, d 20, batch 32, SGD, clip 40) epoch on 1000 generated task-1
# questions; bench_memn2n writes the questions for the PyTorch side
if want memn2n; then
  for T in 1 2; do
    run "$B/bench/bench_memn2n" $T --epochs 30 --data-out out/bench_memn2n_data.safetensors >/dev/null
    [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=$T $PY tools/bench_torch_memn2n.py $T --epochs 30 --data out/bench_memn2n_data.safetensors >/dev/null
  done
fi
# Reinforcement learning on CartPole-v1 (bench/bench_rl.c, tools/bench_torch_rl.py: the same
# environment, the four agents with cx_rl_defaults' networks, optimisers and update structure),
# 1 thread, Cortex and PyTorch back to back, RL_REPS times (default 2; the summary shows medians):
# raw env steps/s (one env, 8 vectorised), training env steps/s (env + acting + updates) per
# algorithm, and DQN from pixels on Catch-v0 (dqn_catch); PyTorch's training also at 2 threads. Then the wall time to solve (greedy mean
# of 20 episodes >= 475, evaluated every 10k steps, evaluation time excluded), 5 seeds each.
# RL_ARGS adds options to both sides (a quick run: RL_ARGS="--env-steps 100000 --steps
# reinforce=5000,a2c=5000,ppo=5000,dqn=1000 --seeds 1 --solve-algos a2c").
if want rl; then
  for rep in $(seq "${RL_REPS:-2}"); do
    run env OPENBLAS_NUM_THREADS=1 "$B/bench/bench_rl" 1 --what env,train ${RL_ARGS:-} >/dev/null
    [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PY tools/bench_torch_rl.py 1 --what env,train ${RL_ARGS:-} >/dev/null
  done
  # (fewer steps: on a loaded 2-core machine PyTorch at 2 threads can be 10x slower than at 1)
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 $PY tools/bench_torch_rl.py 2 --what train \
    --steps reinforce=50000,a2c=20000,ppo=5000,dqn=2000,dqn_catch=500 ${RL_ARGS:-} >/dev/null
  run env OPENBLAS_NUM_THREADS=1 "$B/bench/bench_rl" 1 --what solve ${RL_ARGS:-} >/dev/null
  [ $have_torch = 1 ] && run env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PY tools/bench_torch_rl.py 1 --what solve ${RL_ARGS:-} >/dev/null
fi
# ONNX inference against onnxruntime-node (needs node and, once,
# `cd tools/ortnode && npm install --ignore-scripts onnxruntime-node`): the
# PyTorch-exported LeNet-5 and small ResNet of tests/fixtures/onnx
# (tools/gen_onnx_models.py; speed does not depend on the weights) on test
# images of the shipped subset, batch 1 and 64, one thread each, Cortex
# (bench/bench_onnx) and onnxruntime (tools/ort_run.js --bench) back to back,
# ONNX_REPS times (default 3; the summary shows medians of the ratios).
if want onnx; then
  if command -v node >/dev/null && [ -d tools/ortnode/node_modules/onnxruntime-node ]; then
    for m in lenet5 small_resnet; do
      node tools/ort_run.js tests/fixtures/onnx/$m.onnx --idx data/fashion-mnist-subset/t10k-images-idx3-ubyte.gz \
        --limit 64 --write-input out/bench_onnx_in.pb --limit-print 0 >/dev/null || continue
      for nb in 1 64; do for rep in $(seq "${ONNX_REPS:-3}"); do
        runs=$((nb == 1 ? 2000 : 200))
        c=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$B/bench/bench_onnx" tests/fixtures/onnx/$m.onnx out/bench_onnx_in.pb \
              --batch $nb --runs $runs --threads 1 | tee -a "$log" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
        o=$(OMP_NUM_THREADS=1 node tools/ort_run.js tests/fixtures/onnx/$m.onnx --input out/bench_onnx_in.pb --limit-print 0 \
              --bench $runs --batch $nb --threads 1 | tee -a "$log" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
        echo "ONNX model=$m batch=$nb cortex_ms=$c ort_ms=$o" | tee -a "$log"
      done; done
    done
  else
    echo "(onnx section skipped: needs node and tools/ortnode/node_modules: cd tools/ortnode && npm install --ignore-scripts onnxruntime-node)"
  fi
fi
echo
awk 'function kv(s, k,   r) { r = " " s; if (!sub(".* " k "=", "", r)) return ""; sub(/ .*/, "", r); return r }
/^GEMM /        { n=kv($0,"n"); t=kv($0,"threads"); cg[n,t]=kv($0,"cortex"); cb[n,t]=kv($0,"cortex_blas"); ob[n,t]=kv($0,"openblas_direct"); bi[n,t]=kv($0,"builtin"); ns[n]=1 }
/^TORCH_GEMM /  { n=kv($0,"n"); t=kv($0,"threads"); tg[n,t]=kv($0,"gflops") }
/^MLP_STEP /    { t=kv($0,"threads"); cs[t]=kv($0,"ms") }
/^TORCH_MLP_STEP / { t=kv($0,"threads"); ts[t]=kv($0,"ms") }
/^MLP_EPOCH /   { t=kv($0,"threads"); ce[t]=kv($0,"seconds"); ca[t]=kv($0,"test_acc") }
/^TORCH_MLP_EPOCH / { t=kv($0,"threads"); te[t]=kv($0,"seconds"); ta[t]=kv($0,"test_acc") }
/^OPTIM_STEP /  { t=kv($0,"threads"); h=kv($0,"hidden"); opt_pt[h,t]=kv($0,"per_tensor_us"); opt_fl[h,t]=kv($0,"flat_us"); opt_np[h]=kv($0,"params"); opt_nt[h]=kv($0,"tensors"); opt_id[h,t]=kv($0,"identical"); opt_h[h]=1 }
/^CONV /        { l=kv($0,"layer"); t=kv($0,"threads"); cv[l,t]=kv($0,"ms"); cl[l]=1 }
/^TORCH_CONV /  { l=kv($0,"layer"); t=kv($0,"threads"); v=kv($0,"ms") + 0; if (!((l,t) in tv) || v < tv[l,t]) { tv[l,t]=v; tvl[l,t]=kv($0,"layout") } }
/^RNN /         { c=kv($0,"cell"); t=kv($0,"threads"); rn[c,t]=kv($0,"ms"); rc[c]=1 }
/^TORCH_RNN /   { c=kv($0,"cell"); t=kv($0,"threads"); tr[c,t]=kv($0,"ms") }
/^ATTN /        { t=kv($0,"threads"); an[t]=kv($0,"ms") + 0 }
/^TORCH_ATTN /  { t=kv($0,"threads"); ta_[t]=kv($0,"ms") + 0 }
/^CHARLM /      { t=kv($0,"threads"); cl_c[t]=kv($0,"chars_per_s") }
/^TORCH_CHARLM / { t=kv($0,"threads"); cl_t[t]=kv($0,"chars_per_s") }
/^CNN_EPOCH /   { t=kv($0,"threads"); nn=kv($0,"net"); cn[t]=kv($0,"seconds"); cna[t]=kv($0,"test_acc") }
/^TORCH_CNN_EPOCH / { t=kv($0,"threads"); v=kv($0,"seconds") + 0; if (!(t in tn) || v < tn[t]) { tn[t]=v; tna[t]=kv($0,"test_acc"); tnl[t]=kv($0,"layout") } }
/^CNN_STEP /    { t=kv($0,"threads"); nn=kv($0,"net"); cst[nn,t]=kv($0,"ms"); csp[nn,t]=kv($0,"pingpong_ns"); csn[nn]=1 }
/^TORCH_CNN_STEP / { t=kv($0,"threads"); nn=kv($0,"net"); v=kv($0,"ms") + 0; if (!((nn,t) in tst) || v < tst[nn,t]) { tst[nn,t]=v; tsl[nn,t]=kv($0,"layout") } }
/^G2P_STEP /    { t=kv($0,"threads"); at=kv($0,"attention"); g2c[at,t]=kv($0,"ms"); g2a[at]=1 }
/^TORCH_G2P_STEP / { t=kv($0,"threads"); at=kv($0,"attention"); g2t[at,t]=kv($0,"ms") }
/^NTM /         { t=kv($0,"threads"); nb=kv($0,"batch"); ntm_c[nb,t]=kv($0,"seq_per_s"); ntm_cc[nb,t]=kv($0,"seq_per_cpu_s"); ntm_b[nb]=1 }
/^TORCH_NTM /   { t=kv($0,"threads"); nb=kv($0,"batch"); ntm_t[nb,t]=kv($0,"seq_per_s"); ntm_tc[nb,t]=kv($0,"seq_per_cpu_s") }
/^MEMN2N /      { t=kv($0,"threads"); mn_c[t]=kv($0,"epoch_ms"); mn_ce[t]=kv($0,"train_err") }
/^TORCH_MEMN2N / { t=kv($0,"threads"); mn_t[t]=kv($0,"epoch_ms"); mn_te[t]=kv($0,"train_err") }
/^RL_ENV /       { k=kv($0,"kind"); rle_c[k, ++rle_nc[k]]=kv($0,"steps_per_s"); rle_k[k]=1 }
/^TORCH_RL_ENV / { k=kv($0,"kind"); rle_t[k, ++rle_nt[k]]=kv($0,"steps_per_s") }
/^RL_TRAIN /     { a=kv($0,"algo"); rlt_c[a, ++rlt_nc[a]]=kv($0,"steps_per_s"); rlt_cc[a, rlt_nc[a]]=kv($0,"steps_per_cpu_s"); rlt_a[a]=1 }
/^TORCH_RL_TRAIN / { a=kv($0,"algo"); t=kv($0,"threads"); if (t == 1) { rlt_t[a, ++rlt_nt[a]]=kv($0,"steps_per_s"); rlt_tc[a, rlt_nt[a]]=kv($0,"steps_per_cpu_s") } else rlt_t2[a, ++rlt_nt2[a]]=kv($0,"steps_per_s") }
/^RL_SOLVE /     { a=kv($0,"algo"); n=++rls_nc[a]; rls_cs[a, n]=kv($0,"seconds"); rls_cn[a, n]=kv($0,"steps"); rls_cok[a]+=kv($0,"solved"); rls_a[a]=1 }
/^TORCH_RL_SOLVE / { a=kv($0,"algo"); n=++rls_nt[a]; rls_ts[a, n]=kv($0,"seconds"); rls_tn[a, n]=kv($0,"steps"); rls_tok[a]+=kv($0,"solved") }
/^ONNX /        { m=kv($0,"model"); b=kv($0,"batch"); n=++ox_n[m,b]; ox_r[m SUBSEP b, n]=(kv($0,"ort_ms") > 0 ? kv($0,"cortex_ms") / kv($0,"ort_ms") : 0); ox_c[m SUBSEP b, n]=kv($0,"cortex_ms"); ox_o[m SUBSEP b, n]=kv($0,"ort_ms"); ox_m[m]=1 }
/^TLM /         { t=kv($0,"threads"); tl_c[t, ++tl_nc[t]]=kv($0,"chars_per_s"); tl_cc[t, tl_nc[t]]=kv($0,"chars_per_cpu_s"); tl_p=kv($0,"params") }
/^TORCH_TLM /   { t=kv($0,"threads"); tl_t[t, ++tl_nt[t]]=kv($0,"chars_per_s"); tl_tc[t, tl_nt[t]]=kv($0,"chars_per_cpu_s") }
function med(arr, t, n,   i, j, v, x) { if (!n) return 0; for (i = 1; i <= n; i++) v[i] = arr[t, i] + 0
  for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
  return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-" }
function best(x1, x2) { x1 += 0; x2 += 0; return (x2 > 0 && (x1 <= 0 || x2 < x1)) ? x2 : x1 }
END {
  if (length(cg)) {
  print "sgemm, square n (GFLOPS; ratio > 1 means Cortex is faster)"
  print "  cortex = cx_sgemm as used (auto backend); cx(blas) = cx_sgemm forced through OpenBLAS"
  printf "%6s %3s %9s %9s %9s %9s %9s %12s %15s %13s\n", "n", "thr", "cortex", "cx(blas)", "openblas", "builtin", "torch", "cortex/torch", "cx(blas)/oblas", "builtin/oblas"
  for (t = 1; t <= 2; t++) for (n = 64; n <= 1024; n *= 2) if ((n,t) in cg)
    printf "%6d %3d %9.1f %9s %9.1f %9.1f %9s %12s %15s %13s\n", n, t, cg[n,t], cb[n,t], ob[n,t], bi[n,t], ((n,t) in tg) ? tg[n,t] : "-", r(cg[n,t], tg[n,t]), r(cb[n,t], ob[n,t]), r(bi[n,t], ob[n,t])
  }
  if (length(cs)) {
  print ""
  print "MLP 784-256-256-10 training step, batch 64, Adam (ms; speedup = torch/cortex)"
  tb = best(ts[1], ts[2])
  for (t = 1; t <= 2; t++) if (t in cs)
    printf "  threads %d: cortex %.3f ms  torch %s ms  speedup %s  (vs torch best setting %s ms: %s)\n", t, cs[t], (t in ts) ? ts[t] : "-", r(ts[t], cs[t]), tb ? tb : "-", r(tb, cs[t])
  }
  if (length(ce)) {
  print ""
  print "MLP 784-256-10 epoch on Fashion-MNIST (60k), batch 64, Adam (s; ratio = cortex/torch, goal <= 0.67)"
  eb = best(te[1], te[2])
  for (t = 1; t <= 2; t++) if (t in ce)
    printf "  threads %d: cortex %.3f s (test acc %s)  torch %s s (acc %s)  ratio %s  (vs torch best %s s: %s)\n", t, ce[t], ca[t], (t in te) ? te[t] : "-", (t in ta) ? ta[t] : "-", r(ce[t], te[t]), eb ? eb : "-", r(ce[t], eb)
  if ((1 in ce) && (2 in ce)) printf "  cortex 2 threads vs 1: %.2fx faster\n", ce[1] / ce[2]
  }
  if (length(opt_h)) {
    print ""
    print "Adam step alone over the MLP parameters, per tensor vs one flat buffer (us, medians; speedup = per-tensor/flat)"
    for (h in opt_h) for (t = 1; t <= 2; t++) if ((h,t) in opt_pt)
      printf "  hidden %-18s (%s params, %s tensors) threads %d: per-tensor %8.2f us  flat %8.2f us  speedup %s  bit-identical %s\n", h, opt_np[h], opt_nt[h], t, opt_pt[h,t], opt_fl[h,t], r(opt_pt[h,t], opt_fl[h,t]), opt_id[h,t]
  }
  if (length(cl)) {
    print ""
    print "conv2d forward+backward (ms; speedup = torch/cortex, goal >= 1 at 1 and 2 threads)"
    for (l in cl) for (t = 1; t <= 2; t++) if ((l,t) in cv)
      printf "  %-8s threads %d: cortex %8.2f ms  torch %8s ms (%s, the faster layout)  speedup %s\n", l, t, cv[l,t], ((l,t) in tv) ? tv[l,t] : "-", ((l,t) in tvl) ? tvl[l,t] : "-", r(tv[l,t], cv[l,t])
  }
  if (length(rc)) {
    print ""
    print "RNN layer forward+backward, input 128, hidden 256, batch 32, seq 64 (ms; goal >= 1.5x at 1 thread)"
    for (c in rc) for (t = 1; t <= 2; t++) if ((c,t) in rn)
      printf "  %-5s threads %d: cortex %8.2f ms  torch %8s ms  speedup %s\n", c, t, rn[c,t], ((c,t) in tr) ? tr[c,t] : "-", r(tr[c,t], rn[c,t])
  }
  if (length(an)) {
    print ""
    print "Multi-head self-attention forward+backward, batch 32, seq 64, embed 256, 8 heads (ms; speedup = torch/cortex, goal >= 1.5)"
    atb = best(ta_[1], ta_[2])
    for (t = 1; t <= 2; t++) if (t in an)
      printf "  threads %d: cortex %8.2f ms  torch %8s ms  speedup %s  (vs torch best setting %s ms: %s)\n", t, an[t], (t in ta_) ? ta_[t] : "-", r(ta_[t], an[t]), atb ? atb : "-", r(atb, an[t])
  }
  if (length(cl_c)) {
    print ""
    print "char-LM training (1-layer LSTM 256, batch 32, seq 64, 91 symbols), chars/s (goal >= 30k at 1 thread)"
    for (t = 1; t <= 2; t++) if (t in cl_c)
      printf "  threads %d: cortex %s  torch %s  speedup %s\n", t, cl_c[t], (t in cl_t) ? cl_t[t] : "-", r(cl_c[t], cl_t[t])
  }
  if (length(cn)) {
    print ""
    print "LeNet-5 epoch on Fashion-MNIST, batch 64, Adam (s; ratio = cortex/torch, goal <= 0.5 at 1 thread)"
    for (t = 1; t <= 2; t++) if (t in cn)
      printf "  threads %d: cortex %.2f s (acc %s)  torch %s s (acc %s, %s, the faster layout)  ratio %s\n", t, cn[t], cna[t], (t in tn) ? tn[t] : "-", (t in tna) ? tna[t] : "-", (t in tnl) ? tnl[t] : "-", r(cn[t], tn[t])
  }
  if (length(csn)) {
    print ""
    print "CNN training step, batch 64, Adam (ms; speedup = torch/cortex; ping-pong: ns for a cache line between"
    print "  two threads before/after the Cortex run, about 30 when the cores share a last-level cache, 150+ when not)"
    for (nn in csn) for (t = 1; t <= 2; t++) if ((nn,t) in cst)
      printf "  %-13s threads %d: cortex %8.2f ms  torch %8s ms (%s, the faster layout)  speedup %s  ping-pong %s ns\n", nn, t, cst[nn,t], ((nn,t) in tst) ? tst[nn,t] : "-", ((nn,t) in tsl) ? tsl[nn,t] : "-", r(tst[nn,t], cst[nn,t]), csp[nn,t] != "" ? csp[nn,t] : "-"
  }
  if (length(g2a)) {
    print ""
    print "G2P seq2seq training step (examples/g2p.c), batch 64, 7 letters, Adam + clipping (ms; speedup = torch/cortex, goal >= 2 with attention)"
    for (at in g2a) { tb = best(g2t[at,1], g2t[at,2]); for (t = 1; t <= 2; t++) if ((at,t) in g2c)
      printf "  %-9s threads %d: cortex %8.2f ms  torch %8s ms  speedup %s  (vs torch best %s ms: %s)\n", at, t, g2c[at,t], ((at,t) in g2t) ? g2t[at,t] : "-", r(g2t[at,t], g2c[at,t]), tb ? tb : "-", r(tb, g2c[at,t]) }
  }
  if (length(mn_c)) {
    print ""
    print "MemN2N epoch, 1000 task-1 questions, 3 hops PE, d 20, batch 32, SGD + clipping (ms, medians; speedup = torch/cortex, goal >= 3 at 1 thread)"
    for (t = 1; t <= 2; t++) if (t in mn_c)
      printf "  threads %d: cortex %8.2f ms (train err %s)  torch %8s ms (train err %s)  speedup %s\n", t, mn_c[t], mn_ce[t], (t in mn_t) ? mn_t[t] : "-", (t in mn_te) ? mn_te[t] : "-", r(mn_t[t], mn_c[t])
  }
  if (length(tl_nc)) {
    print ""
    print "Transformer char-LM training (4 blocks, embed 256, 4 heads, ffn 1024, 91 symbols, " tl_p " params, batch 32 x seq 128, Adam + clipping),"
    print "  chars/s from the median step, medians over the repetitions (speedup = cortex/torch, goal >= 1.5); per CPU-second alongside"
    for (t = 1; t <= 2; t++) if (t in tl_nc) {
      c = med(tl_c, t, tl_nc[t]); tt = med(tl_t, t, tl_nt[t]); cc = med(tl_cc, t, tl_nc[t]); tc = med(tl_tc, t, tl_nt[t])
      printf "  threads %d (%d reps): cortex %.0f  torch %s  speedup %s   (per CPU-s: cortex %.0f  torch %s  ratio %s)\n", t, tl_nc[t], c, tt ? sprintf("%.0f", tt) : "-", r(c, tt), cc, tc ? sprintf("%.0f", tc) : "-", r(cc, tc)
    }
  }
  if (length(rle_k) || length(rlt_a) || length(rls_a)) {
    print ""
    print "Reinforcement learning on CartPole-v1 (dqn_catch: pixel DQN on Catch-v0), 1 thread, env steps/s (medians of the repetitions; speedup = cortex/torch, goal >= 10 for the CartPole agents, >= 1.5 for dqn_catch)"
    split("single vec8", rl_ks, " ")
    for (i = 1; i <= 2; i++) { rl_k = rl_ks[i]; if (rl_k in rle_nc) {
      rl_c = med(rle_c, rl_k, rle_nc[rl_k]); rl_t = med(rle_t, rl_k, rle_nt[rl_k])
      printf "  env %-9s (random actions): cortex %10.0f  torch %8s  speedup %s\n", rl_k, rl_c, rl_t ? sprintf("%.0f", rl_t) : "-", r(rl_c, rl_t) } }
    split("reinforce a2c ppo dqn dqn_catch", rl_as, " ")
    for (i = 1; i <= 5; i++) { rl_a = rl_as[i]; if (rl_a in rlt_nc) {
      rl_c = med(rlt_c, rl_a, rlt_nc[rl_a]); rl_t = med(rlt_t, rl_a, rlt_nt[rl_a]); rl_t2 = med(rlt_t2, rl_a, rlt_nt2[rl_a]); rl_tb = (rl_t2 > rl_t) ? rl_t2 : rl_t
      rl_cc = med(rlt_cc, rl_a, rlt_nc[rl_a]); rl_tc = med(rlt_tc, rl_a, rlt_nt[rl_a])
      printf "  train %-9s (env + updates): cortex %8.0f  torch %8s  speedup %6s   (per CPU-s: %s; torch 2 threads %s; vs torch best %s)\n", rl_a, rl_c, rl_t ? sprintf("%.0f", rl_t) : "-", r(rl_c, rl_t), r(rl_cc, rl_tc), rl_t2 ? sprintf("%.0f", rl_t2) : "-", r(rl_c, rl_tb) } }
    if (length(rls_a)) print "  time to solve (greedy mean of 20 episodes >= 475, checked every 10k steps; training seconds, evaluations excluded; medians over seeds; speedup = torch/cortex):"
    for (i = 1; i <= 3; i++) { rl_a = rl_as[i]; if (rl_a in rls_nc) {
      rl_cs = med(rls_cs, rl_a, rls_nc[rl_a]); rl_cn = med(rls_cn, rl_a, rls_nc[rl_a]); rl_ts = med(rls_ts, rl_a, rls_nt[rl_a]); rl_tn = med(rls_tn, rl_a, rls_nt[rl_a])
      printf "    %-9s cortex %7.2f s (%7.0f steps, %d/%d solved)  torch %7s s (%7s steps, %d/%d solved)  speedup %s\n", rl_a, rl_cs, rl_cn, rls_cok[rl_a], rls_nc[rl_a], rl_ts ? sprintf("%.2f", rl_ts) : "-", rl_tn ? sprintf("%.0f", rl_tn) : "-", rls_tok[rl_a], rls_nt[rl_a], r(rl_ts, rl_cs) } }
  }
  if (length(ox_m)) {
    print ""
    print "ONNX inference, PyTorch-exported models, 1 thread, ms per run (medians of the repetitions; ratio = cortex/onnxruntime, goal <= 1 at batch 1)"
    split("lenet5 small_resnet", ox_ms, " ")
    for (i = 1; i <= 2; i++) for (b = 1; b <= 64; b += 63) { ox_k = ox_ms[i] SUBSEP b; if (ox_n[ox_ms[i], b])
      printf "  %-12s batch %-2d: cortex %8.4f  onnxruntime %8.4f  ratio %.2f\n", ox_ms[i], b, med(ox_c, ox_k, ox_n[ox_ms[i], b]), med(ox_o, ox_k, ox_n[ox_ms[i], b]), med(ox_r, ox_k, ox_n[ox_ms[i], b]) }
  }
  if (length(ntm_b)) {
    print ""
    print "NTM copy-task training (LSTM 100, memory 128 x 20, 1+1 heads, RMSprop + clipping, lengths 1..20), sequences/s (speedup = cortex/torch, goal >= 3 at 1 thread)"
    for (nb in ntm_b) for (t = 1; t <= 2; t++) if ((nb,t) in ntm_c)
      printf "  batch %-3s threads %d: cortex %8.1f  torch %8s  speedup %s   (per CPU-s: cortex %s  torch %s  ratio %s)\n", nb, t, ntm_c[nb,t], ((nb,t) in ntm_t) ? ntm_t[nb,t] : "-", r(ntm_c[nb,t], ntm_t[nb,t]), ntm_cc[nb,t], ((nb,t) in ntm_tc) ? ntm_tc[nb,t] : "-", r(ntm_cc[nb,t], ntm_tc[nb,t])
  }
}' "$log" | tee out/bench-summary.txt
if [ -n "$missing_data" ]; then
  echo "$missing_data" >&2
  exit 1
fi
