#!/usr/bin/env bash
# One prepared GPU check for a single H100/H200 (about 8 minutes), needing nothing but this repository:
#   1. environment (nvidia-smi, torch, triton versions)
#   2. the Triton kernels' tests compiled for the GPU (tests/kernels/gpu_triton_cases.py, not interpreted)
#   3. the kernel benchmark: channel attention and a whole SEM block, reference vs triton, fwd and fwd+bwd
#   4. the model benchmark: DeepSPG vs Retinexformer, forward fp32/bf16 at 600x400 and 1920x1080, and a
#      training step fp32/bf16 (batch 8, 128x128), random weights
# Tables (.md) and raw rows (.json) go to the output folder: $OUT, or the first argument, or ./gpu_check_out.
#
# Usage:
#   bash benchmarks/gpu_check.sh [OUTDIR]            # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run [OUTDIR]  # anywhere: every step on the CPU at toy sizes (seconds);
#                                                    # proves the script, measures nothing worth quoting
# Every step runs even if an earlier one fails; the exit status is the number of failed steps.
set -u
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
DEST="${1:-${OUT:-./gpu_check_out}}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
failed=0
SCALE=1  # the dry run checks commands, not speed: a busy CPU gets longer limits (GPU_CHECK_LIMIT_SCALE)
step() {  # step NAME SECONDS CMD...: run with a time limit, log to $DEST/NAME.log
    local name="$1" limit=$(( $2 * SCALE )); shift 2
    echo "== $name (limit ${limit}s)"
    local t0=$SECONDS
    if timeout "$limit" "$@" >"$DEST/$name.log" 2>&1; then
        echo "   ok in $((SECONDS - t0)) s"
    else
        echo "   FAILED (rc=$?) in $((SECONDS - t0)) s; see $DEST/$name.log"; tail -5 "$DEST/$name.log"
        failed=$((failed + 1))
    fi
}

{
    echo "date: $(date -u +%FT%TZ)"; echo "commit: $(git rev-parse --short HEAD 2>/dev/null)"; echo "dry_run: $DRY"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: none"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available())"
    "$PY" -c "import triton; print('triton', triton.__version__)" 2>/dev/null || echo "triton: not installed"
} >"$DEST/env.txt" 2>&1
cat "$DEST/env.txt"

if [ "$DRY" = 1 ]; then  # one case per step at toy sizes: proves the commands, not the numbers
    DEVICE=cpu; SIZES="64x48"; PATCH=32; BATCH=2; TRAIN_PATHS="bf16"; SCALE="${GPU_CHECK_LIMIT_SCALE:-5}"
    ATT="--sizes 256x256 --heads 1 --modes fwd --ops attn --backends reference"
    export BENCH_THREADS="${BENCH_THREADS:-1}"
else
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
        || { echo "no CUDA GPU: run with --dry-run to check the script on a CPU"; exit 1; }
    DEVICE=cuda; SIZES="600x400 1920x1080"; PATCH=128; BATCH=8; TRAIN_PATHS="fp32 bf16"
    ATT="--sizes 1920x1080 --heads 1 4 --modes fwd fwdbwd --ops attn sem --backends reference triton"
    export BENCH_DEVICE=cuda  # the reference backend on the GPU too: triton vs plain PyTorch on one device
fi

# 2. compiled Triton kernels (skipped as a whole without CUDA: the dry run only proves the file imports)
if [ "$DRY" = 1 ]; then  # pytest's status 5 (nothing collected: the module skips without CUDA) is the expected one
    step triton_tests 240 bash -c '"$0" -m pytest -q -p no:cacheprovider tests/kernels/gpu_triton_cases.py; rc=$?; [ $rc -eq 5 ] || exit $rc' "$PY"
else
    step triton_tests 240 "$PY" -m pytest -q -p no:cacheprovider tests/kernels/gpu_triton_cases.py
fi

# 3. kernels: channel attention and a whole SEM block
step bench_attention 200 "$PY" benchmarks/bench_attention.py $ATT --timeout 60 --out "$DEST/attention"

# 4. models: forward fp32/bf16 and a training step fp32/bf16, DeepSPG vs Retinexformer
step bench_models_fwd 150 "$PY" benchmarks/bench_models.py --device "$DEVICE" --models deepspg retinexformer \
    --sizes $SIZES --modes fwd --paths fp32 bf16 --flops --repeats 3 --timeout 120 --out "$DEST/models_fwd"
step bench_models_train 120 "$PY" benchmarks/bench_models.py --device "$DEVICE" --models deepspg retinexformer \
    --modes train --train-paths $TRAIN_PATHS --train-patch "$PATCH" --train-batch "$BATCH" --repeats 3 --timeout 100 \
    --out "$DEST/models_train"

echo "tables in $DEST: $(cd "$DEST" && ls *.md 2>/dev/null | tr '\n' ' ')"
echo "failed steps: $failed"
exit "$failed"
