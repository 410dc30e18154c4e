"""launch/inspect_run.py: a past run's checkpoints with their recorded accuracy, loss, compute and verdict."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from conftest import ROOT, run_cli


def inspect_main(*args: str) -> int:
    spec = importlib.util.spec_from_file_location('inspect_run', ROOT / 'launch' / 'inspect_run.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(args))


def test_lists_every_checkpoint_with_its_accuracy_and_draws_the_plot(past_run: str, tmp_path: Path, capsys) -> None:
    plot = tmp_path / 'runs.png'
    assert inspect_main(past_run, '--plot', str(plot)) == 0
    out = capsys.readouterr().out
    evals = json.loads(Path(past_run, 'metrics.json').read_text())['eval']
    compute = json.loads(Path(past_run, 'compute.json').read_text())
    checkpoints = sorted(p.name for p in Path(past_run).glob('ep*-ba*-rank0.pt'))
    assert len(checkpoints) == len(evals) == 2
    for name, row in zip(checkpoints, evals, strict=True):
        [line] = [line for line in out.splitlines() if line.startswith(name)]
        fields = line.split()
        assert fields[1] == str(row['epoch'])
        assert fields[2] == f'{row.get("val_accuracy", row["accuracy"]):.1%}'  # the validation split's, where held out
        assert fields[3] == f'{row["cross_entropy"]:.3g}'
        assert fields[4] == f'{compute["by_epoch"][row["epoch"] - 1]:.3g}'
        assert ' '.join(fields[5:]) in ('usable', 'near chance', 'far below best')
    assert 'model resnet_20, 10 classes; data digits' in out and 'finished after' in out
    assert out.count('usable as teachers or scorers: ') == 1
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_folder_that_is_no_run_is_one_line(tmp_path: Path) -> None:
    result = run_cli('inspect_run.py', str(tmp_path), '--plot', '')
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f'error: no past run at {tmp_path}')
