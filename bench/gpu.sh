#!/usr/bin/env bash
# One GPU check in under 10 minutes: resnet_56 on synthetic CIFAR-100-shaped data at batch 1024, bf16 autocast
# (the benches pick it on a GPU), channels-last: training throughput in memory and through the Trainer fed by each
# data path (workers, device augmentation, resident), the real launch/train.py path on yamls/baseline.yaml per data
# path compiled and not with peak memory, each reuse algorithm's and baseline's step-time ratio to the plain step,
# GraNd/EL2N scoring throughput. One JSON per bench in OUT (default bench-gpu/), merged with the device name into gpu.json.
#
#   bash bench/gpu.sh [--dry] [OUT]
#
# --dry: the same sequence at batch 16 with few steps and resnet_20 for the train.py runs, on whatever device
# there is (the CPU included), to check the whole script end to end before a GPU is booked. Each bench has a time
# cap (CAP_* seconds below): a bench that hits it is recorded as failed in gpu.json and the rest still run.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ "${1:-}" == "--dry" ]]; then DRY=1; shift; fi
OUT=${1:-${OUT:-bench-gpu}}
mkdir -p "$OUT"
rm -f "$OUT"/*.json  # a bench that fails must not leave an older run's numbers behind
PY=${PY:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ $DRY == 1 ]]; then
  B=16; TP="--steps 2 --trainer_steps 2 --rounds 1 --loader_batches 4 --workers 2"; KD="--steps 2 --rounds 2"
  ADV="--steps 1 --rounds 1 --pgd_steps 2"; SC="--rounds 1"; TRAIN="--warmup 2 --steps 2 --model resnet_20 --workers 2"
  BL="--steps 2 --rounds 2 --dash_examples 64"
  CAP_TP=300; CAP_KD=300; CAP_ADV=300; CAP_SC=300; CAP_TRAIN=600; CAP_BL=300
else
  # GPU caps add up to 560 s (9.3 minutes) at most; expected well under them.
  B=1024; TP="--steps 20 --trainer_steps 8 --rounds 2 --channels_last"; KD="--steps 8 --rounds 3"
  ADV="--steps 3 --rounds 3"; SC="--rounds 3"; TRAIN="--warmup 3 --steps 10"; BL="--steps 8 --rounds 3 --dash_examples 4096"
  CAP_TP=100; CAP_KD=90; CAP_ADV=60; CAP_SC=50; CAP_TRAIN=170; CAP_BL=90
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: $( [[ $DRY == 1 ]] && echo dry run || echo 'no GPU?')"

FAILED=()
bench() {  # bench NAME CAP COMMAND...
  local name=$1 cap=$2; shift 2
  echo "== $name (cap ${cap}s): $*"
  local start=$SECONDS
  if ! timeout "$cap" "$@"; then FAILED+=("$name"); echo "== $name failed or hit its cap"; fi
  echo "== $name took $((SECONDS - start)) s"
}
bench throughput $CAP_TP $PY bench/throughput.py --batch $B $TP --json "$OUT/throughput.json"
bench train_path $CAP_TRAIN $PY bench/train_path.py --batch $B $TRAIN --json "$OUT/train_path.json"
bench kd_step $CAP_KD $PY bench/kd_step.py --batch $B $KD --json "$OUT/kd_step.json"
bench adv_step $CAP_ADV $PY bench/adv_step.py --batch_size $B $ADV --out "$OUT/adv_step.json"
bench scoring $CAP_SC $PY bench/scoring.py --batch $B $SC --json "$OUT/scoring.json"
bench baselines_step $CAP_BL $PY bench/baselines_step.py --batch $B $BL --json "$OUT/baselines_step.json"

$PY - "$OUT" "$DRY" "${FAILED[@]}" <<'PYEOF'
import json, pathlib, sys
import torch
out, dry, failed = pathlib.Path(sys.argv[1]), sys.argv[2] == '1', sys.argv[3:]
merged = {
    'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu',
    'dry': dry,
    'failed': failed,
    **{p.stem: json.loads(p.read_text()) for p in sorted(out.glob('*.json')) if p.stem != 'gpu'},
}
(out / 'gpu.json').write_text(json.dumps(merged, indent=1))
print(json.dumps(merged))
PYEOF
[[ ${#FAILED[@]} == 0 ]]
