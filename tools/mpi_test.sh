#!/usr/bin/env bash
# mpi_test.sh -- data-parallel training under mpirun (make mpi-test).
#
#   tools/mpi_test.sh BUILD/tests/dist/test_dist [BUILD/cortex]
#
# Runs the test binary on 2 and 3 processes (every rank must end with
# "RESULT n 0"), then its failure modes: a rank calling cx_fatal while the
# others wait in an all-reduce, a rank exiting without finalising, ranks with
# different models, an MPI error on one rank (2 processes: a broadcast
# whose receiver expects fewer floats than the root sends; MPI detects the
# truncation there, with more processes it need not). Each must make mpirun exit
# non-zero within LIMIT seconds (default 15), with the rank and the cause in
# the output where Cortex prints them. With the cortex binary: `cortex train`
# under mpirun -np 2 must print the epoch lines of a one-process run (training
# and validation loss and accuracy, to the 4 decimals printed) once, and save
# the model; `cortex charlm train` under -np 2 must print one process's
# validation lines, and its mid-epoch checkpoints resume 2 -> 1 and 1 -> 2. One thread per process (the machine
# may have fewer cores than processes: --oversubscribe). Ends with
# "N passed, N failed".
set -u
bin=${1:?usage: $0 BUILD/tests/dist/test_dist [BUILD/cortex]}
cortex=${2:-}
limit=${LIMIT:-15}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
command -v mpirun >/dev/null || { echo "mpi_test: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
run=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && run+=(--allow-run-as-root)
passed=0; failed=0
ok() { passed=$((passed+1)); printf '%-58s ok (%ss)\n' "$1" "$2"; }
bad() { failed=$((failed+1)); printf '%-58s FAILED: %s\n' "$1" "$2"; printf '%s\n' "$out" | tail -n 30; }

for np in 2 3; do
  name="weights of -np $np = weights of 1 process"
  t0=$(date +%s.%N)
  out=$(timeout 120 "${run[@]}" -np "$np" "$bin" 2>&1); rc=$?
  dt=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  nres=$(printf '%s\n' "$out" | grep -c '^RESULT [0-9]* 0$')
  if [ $rc = 0 ] && [ "$nres" = "$np" ]; then ok "$name" "$dt"; printf '%s\n' "$out" | grep '^#' | sed 's/^/    /'
  else bad "$name" "exit $rc, $nres of $np ranks passed"; fi
done

# mode, processes, text the output must hold
check_fail() {
  local name=$1 np=$2 want=$3; shift 3
  local t0 dt rc
  t0=$(date +%s.%N)
  out=$(timeout 60 "${run[@]}" -np "$np" "$bin" "$@" 2>&1); rc=$?
  dt=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  if [ $rc = 0 ]; then bad "$name" "mpirun exited 0"
  elif [ $rc = 124 ]; then bad "$name" "still running after 60 s (a rank hangs)"
  elif [ "$(echo "$dt > $limit" | bc)" = 1 ]; then bad "$name" "took ${dt}s (limit ${limit}s)"
  elif ! printf '%s\n' "$out" | grep -qF -- "$want"; then bad "$name" "no '$want' in the output"
  elif printf '%s\n' "$out" | grep -q 'the run went on\|went through\|accepted different'; then bad "$name" "a rank carried on"
  else ok "$name (exit $rc)" "$dt"; fi
}
check_fail "rank 1 of 2 calls cx_fatal in training" 2 "cortex: rank 1 of 2: deliberate failure at step 3" --fail-rank 1
check_fail "rank 0 of 3 calls cx_fatal in training" 3 "cortex: rank 0 of 3: deliberate failure at step 3" --fail-rank 0
check_fail "rank 2 of 3 exits without finalising" 3 "Exit code:    3" --exit-rank 2
check_fail "rank 1 of 2 has a different model" 2 "cortex: rank 1 of 2: cx_dist_broadcast_params: tensor 0 ('fc1.weight') is [17, 8] here, [16, 8] on rank 0" --mismatch-rank 1
check_fail "rank 2 of 3 has a different model" 3 "cortex: rank 2 of 3: cx_dist_broadcast_params: tensor 0 ('fc1.weight') is [17, 8] here, [16, 8] on rank 0" --mismatch-rank 2
check_fail "MPI error (truncated broadcast) on rank 1 of 2" 2 "cortex: rank 1 of 2: MPI error in MPI_Bcast" --mpi-error-rank 1
if [ -n "$cortex" ]; then
  name="cortex train: -np 2 = 1 process (epoch lines)"
  t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
  args=(train --data data/fashion-mnist-subset --limit 1500 --val 300 --test-limit 200 --hidden 32 --epochs 3
        --batch 50 --optim sgd --momentum 0.9 --lr 0.05 --seed 3 --quiet)
  t0=$(date +%s.%N)
  "$cortex" "${args[@]}" --out "$t/one.safetensors" --metrics "$t/one.csv" > "$t/one.txt" 2>&1
  out=$(timeout 120 "${run[@]}" -np 2 "$cortex" "${args[@]}" --out "$t/two.safetensors" --metrics "$t/two.csv" 2>&1); rc=$?
  dt=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  # the epoch lines without the timings
  strip() { sed -n 's/^\(epoch [0-9/]*  lr [^ ]*  train loss [^ ]* acc [^ ]*  val loss [^ ]* acc [^ ]*\).*/\1/p'; }
  want=$(strip < "$t/one.txt"); got=$(printf '%s\n' "$out" | strip)
  if [ $rc != 0 ]; then bad "$name" "exit $rc"
  elif [ -z "$want" ] || [ "$want" != "$got" ]; then bad "$name" "epoch lines differ: one process '$want', two '$got'"
  elif [ "$(printf '%s\n' "$out" | grep -c '^data-parallel: 2 processes')" != 1 ]; then bad "$name" "not data-parallel, or printed twice"
  elif [ ! -s "$t/two.safetensors" ] || [ ! -s "$t/two.csv" ]; then bad "$name" "no model or metrics file"
  else ok "$name" "$dt"; printf '%s\n' "$got" | sed 's/^/    /'; fi
  # --sync-bn: a network with batch norm; with it, -np 2 and -np 3 print one
  # process's epoch lines, without it (each process normalising over its own
  # part of the batch) they differ
  cat > "$t/bn_mlp.net" <<'NET'
input 784
linear name=fc1 out=32
batchnorm name=bn1
relu
linear name=fc2 out=10
NET
  bargs=(train --model "$t/bn_mlp.net" --data data/fashion-mnist-subset --limit 1500 --val 300 --test-limit 0
         --epochs 3 --batch 50 --optim sgd --momentum 0.9 --lr 0.05 --seed 3 --quiet)
  "$cortex" "${bargs[@]}" --out "$t/bn1.safetensors" --metrics "$t/bn1.csv" > "$t/bn1.txt" 2>&1
  want=$(strip < "$t/bn1.txt")
  for np in 2 3; do
    name="cortex train --sync-bn: -np $np = 1 process (batch norm)"
    t0=$(date +%s.%N)
    out=$(timeout 120 "${run[@]}" -np "$np" "$cortex" "${bargs[@]}" --sync-bn --out "$t/bn2.safetensors" --metrics "$t/bn2.csv" 2>&1); rc=$?
    out2=$(timeout 120 "${run[@]}" -np "$np" "$cortex" "${bargs[@]}" --out "$t/bn3.safetensors" --metrics "$t/bn3.csv" 2>&1); rc2=$?
    dt=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
    got=$(printf '%s\n' "$out" | strip); got2=$(printf '%s\n' "$out2" | strip)
    if [ $rc != 0 ] || [ $rc2 != 0 ]; then out="$out$out2"; bad "$name" "exit $rc / $rc2"
    elif [ -z "$want" ] || [ "$want" != "$got" ]; then bad "$name" "epoch lines differ: one process '$want', synchronised '$got'"
    elif [ "$(printf '%s\n' "$out" | grep -c "^batch norm synchronised over the $np processes")" != 1 ]; then bad "$name" "not synchronised, or printed twice"
    elif [ -z "$got2" ] || [ "$want" = "$got2" ]; then out=$out2; bad "$name" "without --sync-bn the epoch lines should differ from one process's"
    else ok "$name" "$dt"; printf '%s\n' "$got" | tail -n 1 | sed 's/^/    /'; fi
  done
  # cortex charlm train: each rank trains on its columns of every [seq, batch]
  # chunk; the validation lines must equal one process's, and a mid-epoch
  # checkpoint must resume across process counts (2 -> 1, 1 -> 2)
  name="cortex charlm train: -np 2 = 1 process, resume 2->1, 1->2"
  cargs=(charlm train --text data/text/kjv_genesis_ruth_jonah.txt --layers 1 --hidden 48 --embed 16 --seq 24
         --batch 12 --val-every 20 --seed 4 --quiet)
  vstrip() { sed -n 's/^\(epoch [0-9]* batch [0-9/]*  step [0-9]*  train [^ ]* bpc  val [^ ]* bpc\).*/\1/p'; }
  t0=$(date +%s.%N)
  "$cortex" "${cargs[@]}" --steps 40 --out "$t/lm1.safetensors" > "$t/lm1.txt" 2>&1
  out=$(timeout 120 "${run[@]}" -np 2 "$cortex" "${cargs[@]}" --steps 40 --out "$t/lm2.safetensors" 2>&1); rc=$?
  want=$(vstrip < "$t/lm1.txt"); got=$(printf '%s\n' "$out" | vstrip)
  out2=$(timeout 120 "${run[@]}" -np 2 "$cortex" "${cargs[@]}" --steps 20 --out "$t/lm3.safetensors" --checkpoint "$t/lm3.ckpt" 2>&1 &&
         "$cortex" "${cargs[@]}" --steps 40 --out "$t/lm3.safetensors" --resume "$t/lm3.ckpt" 2>&1); rc2=$?
  out3=$("$cortex" "${cargs[@]}" --steps 20 --out "$t/lm4.safetensors" --checkpoint "$t/lm4.ckpt" 2>&1 &&
         timeout 120 "${run[@]}" -np 2 "$cortex" "${cargs[@]}" --steps 40 --out "$t/lm4.safetensors" --resume "$t/lm4.ckpt" 2>&1); rc3=$?
  dt=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  last=$(printf '%s\n' "$want" | tail -n 1)
  if [ $rc != 0 ] || [ $rc2 != 0 ] || [ $rc3 != 0 ]; then out="$out$out2$out3"; bad "$name" "exit $rc / $rc2 / $rc3"
  elif [ -z "$want" ] || [ "$want" != "$got" ]; then bad "$name" "validation lines differ: one process '$want', two '$got'"
  elif [ "$(printf '%s\n' "$out" | grep -c '^data-parallel: 2 processes, 6 of the batch')" != 1 ]; then bad "$name" "not data-parallel, or printed twice"
  elif [ "$(printf '%s\n' "$out2" | vstrip | tail -n 1)" != "$last" ]; then out=$out2; bad "$name" "2 -> 1 resume does not end at '$last'"
  elif [ "$(printf '%s\n' "$out3" | vstrip | tail -n 1)" != "$last" ]; then out=$out3; bad "$name" "1 -> 2 resume does not end at '$last'"
  else ok "$name" "$dt"; printf '%s\n' "$got" | sed 's/^/    /'; fi
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
