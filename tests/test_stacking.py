"""Reuse ideas stacked on a warm start: each stack's digits recipe trains, and its compute ledger books the past run
once, however many of its algorithms reuse it and however they spell its folder; the CIFAR-100 recipes of the
baselines and stacks hold the same algorithms and arguments as their digits twins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, train_in_process

from algorithms.past_run import PastRun, source_key
from recipes import presets
from recipes.config import read_yaml

STACKS = {  # recipe: the algorithms it holds, in order
    'warm_start_kd': ['warm_start', 'past_run_distillation'],
    'warm_start_curriculum': ['warm_start', 'grand_curriculum'],
    'dash_kd': ['dash_warm_start', 'past_run_distillation'],
    'dash_curriculum': ['dash_warm_start', 'grand_curriculum'],
}
NEW_RECIPES = ['warm_start_finetune', 'dash_warm_start', *STACKS, 'selective_backprop', 'reducible_loss_selection']


def pointed_at(recipe: str, past_run: str, scores: str) -> list[str]:
    """Overrides that point the recipe's past-run and scores arguments at the test's artifacts."""
    paths = {'run': past_run, 'scores': scores}
    algorithms = read_yaml(str(ROOT / 'yamls' / 'digits' / f'{recipe}.yaml'))['algorithms']
    return [f'algorithms.{name}.{arg}={paths[arg]}' for name, args in algorithms.items() for arg in args if arg in paths]


@pytest.mark.parametrize('recipe', sorted(STACKS))
def test_each_stack_trains_and_books_the_past_run_once(recipe: str, artifacts, tmp_path: Path) -> None:
    path = f'yamls/digits/{recipe}.yaml'
    assert list(read_yaml(path)['algorithms']) == STACKS[recipe]
    trainer = train_in_process(*pointed_at(recipe, artifacts.past_run, artifacts.scores), 'max_duration=2ba',
                               'eval_interval=2ba', f'save_folder={tmp_path}', 'callbacks={}', recipe=path)
    assert int(trainer.state.timestamp.batch) == 2
    reused = json.loads((tmp_path / 'compute.json').read_text())['reused']
    past = {source: flops for source, flops in reused.items() if source.startswith('past run ')}
    # the newest checkpoint reused is the warm start's (latest, ep2), newer than the scores' ep1
    assert past == {source_key(artifacts.past_run): PastRun(artifacts.past_run).compute_until('ep2')}


def test_a_past_run_spelled_two_ways_is_booked_once(artifacts, tmp_path: Path) -> None:
    run = artifacts.past_run
    train_in_process(f'algorithms.warm_start.run={run}/', f'algorithms.past_run_distillation.run={run}/../{Path(run).name}',
                     f'save_folder={tmp_path}', 'max_duration=1ba', 'eval_interval=1ba', 'callbacks={}')
    reused = json.loads((tmp_path / 'compute.json').read_text())['reused']
    assert list(reused) == [source_key(run)]


@pytest.mark.parametrize('recipe', NEW_RECIPES)
def test_the_cifar100_recipe_holds_the_algorithms_and_arguments_of_its_digits_twin(recipe: str) -> None:
    def algorithms(path: Path) -> dict:
        found = read_yaml(str(path))['algorithms']
        return {name: {k: v for k, v in args.items() if k not in ('run', 'scores')} for name, args in found.items()}

    assert algorithms(ROOT / 'yamls' / f'{recipe}.yaml') == algorithms(ROOT / 'yamls' / 'digits' / f'{recipe}.yaml')


def test_the_fine_tuning_warm_start_changes_only_the_schedule_of_the_warm_start(past_run: str) -> None:
    """A tenth of the peak learning rate, no warm-up; everything else as the re-warming warm start."""
    for folder in ('yamls', 'yamls/digits'):
        finetune = read_yaml(str(ROOT / folder / 'warm_start_finetune.yaml'))
        rewarm = read_yaml(str(ROOT / folder / 'warm_start.yaml'))
        assert finetune['optimizer']['lr'] == pytest.approx(rewarm['optimizer']['lr'] / 10)
        assert finetune['scheduler']['t_warmup'] == '0ep' != rewarm['scheduler']['t_warmup']
        for key in ('algorithms', 'max_duration', 'model', 'data'):
            assert finetune[key] == rewarm[key], (folder, key)
        assert {k: v for k, v in finetune['scheduler'].items() if k != 't_warmup'} == {
            k: v for k, v in rewarm['scheduler'].items() if k != 't_warmup'}
    assert presets.preset('digits/warm_start_finetune', warm_start={'run': past_run}).hyperparameters == {
        'optimizer.lr': 0.01, 'scheduler.t_warmup': '0ep'}
