"""The rules that tie keys together run before anything heavy: a sweep checks every run it will train, each recipe at
each budget with the sweep's overrides, before its first run, so a budget that scales a recipe's schedule to nothing
is refused before any run folder exists."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def test_a_budget_that_leaves_nothing_to_train_stops_the_sweep_before_any_run(tmp_path: Path) -> None:
    results = tmp_path / 'results'
    sweep = tmp_path / 'sweep.yaml'
    sweep.write_text(f'results: {results}\nseeds: [1]\nbudgets: [0.5, 0.05]\nbaseline: baseline\n'
                     'recipes:\n  baseline: {yaml: yamls/digits/baseline.yaml}\n')  # 8 epochs: 0.05 of it is 0.4
    done = run_cli('sweep.py', str(sweep))
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: {sweep}: recipe 'baseline' at budget 0.05: scale_schedule_ratio=0.05 scales max_duration=8ep to 0: "
        "use a ratio (a sweep's budget) of at least 1/8, or give max_duration in a finer unit (ba)\n")
    assert not results.exists()


def test_every_rule_that_ties_sweep_keys_names_keys_of_the_sweep_file() -> None:
    import dataclasses

    from recipes.study.spec import SWEEP_TIES, SweepSpec

    keys = {f.name for f in dataclasses.fields(SweepSpec)}
    assert len(SWEEP_TIES) >= 15
    for tie in SWEEP_TIES:
        assert set(tie.keys) <= keys, (tie.check.__name__, set(tie.keys) - keys)
