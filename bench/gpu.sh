#!/usr/bin/env bash
# One GPU check in under 5 minutes: resnet_56 on synthetic CIFAR-100-shaped data at batch 1024, bf16 autocast
# (the benches pick it on a GPU): training and loader throughput (channels-last), each reuse algorithm's step-time
# ratio to the plain step, GraNd/EL2N scoring throughput. JSON per bench in $OUT (default bench-gpu/), merged into
# gpu.json.   bash bench/gpu.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-bench-gpu}}
mkdir -p "$OUT"
PY=${PY:-python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$PY bench/throughput.py --batch 1024 --steps 20 --channels_last --json "$OUT/throughput.json"
$PY bench/kd_step.py --batch 1024 --steps 8 --rounds 3 --json "$OUT/kd_step.json"
$PY bench/adv_step.py --batch_size 1024 --steps 3 --rounds 3 --out "$OUT/adv_step.json"
$PY bench/scoring.py --batch 1024 --rounds 3 --json "$OUT/scoring.json"
$PY - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
merged = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob('*.json')) if p.stem != 'gpu'}
(out / 'gpu.json').write_text(json.dumps(merged, indent=1))
print(json.dumps(merged))
PYEOF
