"""A sweep's tuned frontier (``tune``), its past runs spread over the seeds (``past``) and its primary comparison
(``primary``): a real digits sweep that tunes and resumes, the choice and ``tuned.yaml`` timed by a stand-in for
train.py, and the keys' one-line refusals."""

import json

import pytest
import yaml
from conftest import ROOT, TINY, run_cli

from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.core.run_files import read_history
from recipes.study.runner import run_sweep
from recipes.study.spec import grid_edges, grid_points, load_sweep, parse_sweep, plan, tuned_pairs, tuning_plan
from recipes.study.tracking import run_tags
from recipes.study.tuning import read_tuned

RECIPE = 'yamls/digits/baseline.yaml'
SMOOTHING = 'algorithms.label_smoothing.smoothing=0.1'
LRS = [0.05, 0.5]


def test_a_tuned_digits_sweep_trains_with_the_best_setting_per_budget_and_a_resumed_one_reuses_it(tmp_path):
    grid = {'optimizer.lr': LRS, 'scheduler.t_warmup': ['0.25dur']}
    body = {
        'results': str(tmp_path / 'results'), 'seeds': [1], 'budgets': [0.5, 1], 'baseline': 'baseline',
        'parallel': 2, 'tune': {'seeds': [7], 'grid': grid}, 'overrides': [*TINY, 'data.holdout=100'],
        'recipes': {'baseline': {'yaml': RECIPE}, 'smoothing': {'yaml': RECIPE, 'overrides': [SMOOTHING], 'budgets': [1]}},
    }
    sweep = tmp_path / 'sweep.yaml'
    sweep.write_text(yaml.safe_dump(body))
    result = run_cli('sweep.py', str(sweep), timeout=1200)  # 4 tuning runs, then 3 evaluation runs
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / 'results'

    chosen = {}
    for budget in ('0.5', '1'):
        lasts = [read_history(str(results / 'tuning' / 'baseline' / f'b{budget}' / f'p{n}' / 'seed7'))['eval'][-1]
                  for n in (1, 2)]
        finals, tests = [last['val_accuracy'] for last in lasts], [last['accuracy'] for last in lasts]
        best = 0 if finals[0] >= finals[1] else 1  # one tuning seed: its val accuracy is the mean; a tie goes to p1
        chosen[budget] = LRS[best]
        tuned = yaml.safe_load((results / 'tuned.yaml').read_text())
        entry = tuned['recipes']['baseline']['budgets'][budget]
        assert tuned['split'] == 'val' and entry['overrides'] == [f'optimizer.lr={LRS[best]}', 'scheduler.t_warmup=0.25dur']
        assert entry['point'] == f'p{best + 1}' and entry['mean_val_accuracy'] == pytest.approx(finals[best], abs=1e-12)
        assert entry['mean_accuracy'] == pytest.approx(tests[best], abs=1e-12)  # the test split's, shown beside it
        assert [p['val_accuracy'] for p in entry['points'].values()] == [{7: pytest.approx(a, abs=1e-12)} for a in finals]
        assert [p['accuracy'] for p in entry['points'].values()] == [{7: pytest.approx(a, abs=1e-12)} for a in tests]
        assert bool(entry['tie']) == (finals[0] == finals[1])
        assert entry['runs'] == str(results / 'tuning' / 'baseline' / f'b{budget}') and entry['seeds'] == [7]
        assert f'tuned baseline budget {budget}: optimizer.lr={LRS[best]} scheduler.t_warmup=0.25dur (p{best + 1} of 2' in result.stdout
    assert read_tuned(str(results)).uses == {'baseline': 'baseline', 'smoothing': 'baseline'}

    for recipe, budget in (('baseline', '0.5'), ('baseline', '1'), ('smoothing', '1')):
        cfg = load_config(str(results / recipe / f'b{budget}' / 'seed1' / 'config.yaml'))
        assert (cfg.optimizer.lr, cfg.scheduler.t_warmup, cfg.seed) == (chosen[budget], '0.25dur', 1)
        assert ('label_smoothing' in cfg.algorithms) == (recipe == 'smoothing')
    with open(results / 'report' / 'results.csv') as f:  # the report reads the evaluation runs only
        assert [line.split(',')[:3] for line in f.read().splitlines()[1:]] == [
            ['baseline', '0.5', '1'], ['baseline', '1', '1'], ['smoothing', '1', '1']]

    kept = {path: path.stat().st_mtime_ns for path in (results / 'tuning').rglob('*') if path.is_file()}
    tuned = (results / 'tuned.yaml').read_text()
    again = run_cli('sweep.py', str(sweep), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f'tuning: {results}/tuned.yaml holds every choice; no tuning run trains' in again.stdout
    assert again.stdout.count('\n$ ') == 0 and 'sweep: 3 runs, 3 already finished, 0 trained' in again.stdout
    fingerprint = json.loads((results / 'baseline' / 'b1' / 'seed1' / 'fingerprint.json').read_text())
    assert fingerprint['config']['data']['holdout'] == 100 and fingerprint['config']['seed'] == 1

    # A run trained with another config than the sweep gives it now is stale: one line, nothing trained
    (results / 'registration.json').unlink()  # other comparisons in this folder re-register it (test_registration.py)
    stale = run_cli('sweep.py', str(sweep), 'optimizer.momentum=0.8', timeout=600)
    assert stale.returncode == 2 and stale.stdout.count('\n$ ') == 0
    assert [line for line in stale.stderr.splitlines() if line.startswith('error: ')] == [
        f'error: run tune-baseline-b0.5-p1-s7 ({results}/tuning/baseline/b0.5/p1/seed7) is stale: it was trained with '
        f'another config: first differing key optimizer.momentum (trained with: 0.9, now: 0.8); {results}/tuned.yaml '
        'chose from it: start the sweep with '
        '--rerun_stale to train it again from nothing, or give the sweep another results folder (or past_root)']
    assert (results / 'tuned.yaml').read_text() == tuned
    assert {path: path.stat().st_mtime_ns for path in (results / 'tuning').rglob('*') if path.is_file()} == kept


# A stand-in for train.py: it records its overrides and finishes its run at once with the final accuracy that
# ACCURACY (an expression of lr, budget and seed) gives.
STAND_IN = """
import json, os, sys
args = dict(a.split('=', 1) for a in sys.argv[2:])
lr, budget, seed = float(args.get('optimizer.lr', 0.1)), float(args['scale_schedule_ratio']), int(args['seed'])
with open(os.environ['STAND_IN_LOG'], 'a') as f:
    f.write(json.dumps(sys.argv[2:]) + '\\n')
os.makedirs(args['save_folder'], exist_ok=True)
with open(os.path.join(args['save_folder'], 'metrics.json'), 'w') as f:
    accuracy = eval(os.environ['ACCURACY'])
    # the validation split's accuracy is ACCURACY's; the test split's the reverse order: tuning must not read it
    json.dump({'eval': [{'epoch': 1, 'batch': 1, 'val_accuracy': accuracy, 'accuracy': 1 - accuracy}], 'finished': True,
               'wall_seconds': 0.1}, f)
"""

# At budget 0.5 the mean over the two tuning seeds decides (0.4, 0.45, 0.4: p2, though p1 leads on seed 101 and p3
# on seed 102); at budget 1, p2 and p3 tie at 0.5 and p2, the first in grid order, is chosen.
ACCURACY = ('{(0.05, 101): .6, (0.05, 102): .2, (0.1, 101): .45, (0.1, 102): .45, (0.2, 101): .1, (0.2, 102): .7}'
            '.get((lr, seed), .9) if budget == 0.5 else {0.05: .3, 0.1: .5, 0.2: .5}.get(lr, .9)')
GOOD = {'results': 'r', 'seeds': [1], 'baseline': 'b', 'recipes': {'b': {'yaml': RECIPE}}}
TUNE = {'seeds': [101, 102], 'grid': {'optimizer.lr': [0.05, 0.1, 0.2]}}


def stand_in(tmp_path, monkeypatch, accuracy: str = ACCURACY):
    """A function that runs a sweep (a mapping) with the stand-in and returns its exit status and each run's
    overrides as a dict, in the order they ran."""
    script, record = tmp_path / 'train.py', tmp_path / 'record.jsonl'
    script.write_text(STAND_IN)
    monkeypatch.setenv('STAND_IN_LOG', str(record))
    monkeypatch.setenv('ACCURACY', accuracy)
    monkeypatch.chdir(ROOT)

    def sweep(content: dict, dry_run: bool = False) -> tuple[int, list[dict[str, str]]]:
        record.write_text('')
        # these tests change a sweep in place, which its registration refuses (test_registration.py): each call
        # registers the folder anew, so the checks behind it (tuned.yaml's, the fingerprints') are what they meet
        (tmp_path / 'results' / 'registration.json').unlink(missing_ok=True)
        code = run_sweep(parse_sweep({**content, 'results': str(tmp_path / 'results')}, 's.yaml'), str(script), dry_run)
        runs = [json.loads(line) for line in record.read_text().splitlines()]
        return code, [dict(a.split('=', 1) for a in argv) for argv in runs]

    return sweep


def test_tuning_chooses_the_best_mean_over_the_tuning_seeds_and_the_first_point_of_a_tie(tmp_path, monkeypatch, capsys):
    sweep = stand_in(tmp_path, monkeypatch)
    code, runs = sweep({**GOOD, 'seeds': [1, 2], 'budgets': [0.5, 1], 'tune': TUNE})
    assert code == 0
    tuning, evaluation = runs[:12], runs[12:]  # 3 points x 2 budgets x 2 tuning seeds, then the evaluation runs
    assert [r['run_name'] for r in tuning[:6]] == [
        'tune-b-b0.5-p1-s101', 'tune-b-b0.5-p2-s101', 'tune-b-b0.5-p3-s101',
        'tune-b-b1-p1-s101', 'tune-b-b1-p2-s101', 'tune-b-b1-p3-s101',
    ]
    assert tuning[4]['save_folder'] == str(tmp_path / 'results' / 'tuning' / 'b' / 'b1' / 'p2' / 'seed101')
    assert [(r['run_name'], r['optimizer.lr']) for r in evaluation] == [
        ('b-b0.5-s1', '0.1'), ('b-b1-s1', '0.1'), ('b-b0.5-s2', '0.1'), ('b-b1-s2', '0.1')]

    written = yaml.safe_load((tmp_path / 'results' / 'tuned.yaml').read_text())
    assert written['tune'] == TUNE and written['uses'] == {'b': 'b'}
    half, whole = (written['recipes']['b']['budgets'][label] for label in ('0.5', '1'))
    assert written['split'] == 'val'
    assert (half['overrides'], half['point'], half['mean_val_accuracy'], half['tie']) == (['optimizer.lr=0.1'], 'p2', 0.45, '')
    assert half['mean_accuracy'] == pytest.approx(0.55)  # the test split's, beside it: p1 and p3 lead there (0.6)
    assert [p['mean_val_accuracy'] for p in half['points'].values()] == pytest.approx([0.4, 0.45, 0.4])
    assert [p['mean_accuracy'] for p in half['points'].values()] == pytest.approx([0.6, 0.55, 0.6])
    assert half['points']['p3'] == {'overrides': ['optimizer.lr=0.2'], 'mean_val_accuracy': pytest.approx(0.4),
                                    'val_accuracy': {101: 0.1, 102: 0.7}, 'mean_accuracy': pytest.approx(0.6),
                                    'accuracy': {101: pytest.approx(0.9), 102: pytest.approx(0.3)}}
    assert (whole['point'], whole['tie']) == ('p2', 'p2 and p3 tie at 50.00%: the first in grid order was chosen')
    assert half['edges'] == [] and whole['edges'] == []  # p2: inside the grid of three
    out = capsys.readouterr().out
    assert ('tuned b budget 1: optimizer.lr=0.1 (p2 of 3, chosen on val: mean final val accuracy 50.00%, test 50.00%, '
            'on tuning seeds 101, 102); '
            'p2 and p3 tie at 50.00%: the first in grid order was chosen') in out
    assert 'tuning: 12 runs, 0 already finished, 12 trained' in out


def test_a_grid_axis_of_tied_settings_sets_each_key_and_edges_are_named_on_ordered_axes():
    grid = {'algorithms.reducible_loss_selection.keep': [0.1, 0.25, 0.5],
            'optimizer': [{'name': 'sgd', 'lr': 0.1}, {'name': 'sgd', 'lr': 0.05}, {'name': 'adamw', 'lr': 0.001}]}
    points = grid_points(grid)
    assert len(points) == 9
    assert points['p3'] == ('algorithms.reducible_loss_selection.keep=0.1', 'optimizer.name=adamw', 'optimizer.lr=0.001')
    # the keep axis is ordered (its ends are edges); the optimizer axis holds tied settings, which have no edge
    assert [grid_edges(grid, label) for label in points] == [
        ('algorithms.reducible_loss_selection.keep',)] * 3 + [()] * 3 + [('algorithms.reducible_loss_selection.keep',)] * 3
    two = {'optimizer.lr': [0.05, 0.1, 0.2], 'scheduler.t_warmup': ['0dur', '0.1dur', '0.25dur'], 'x.pacing': ['a', 'b']}
    assert grid_edges(two, 'p1') == ('optimizer.lr', 'scheduler.t_warmup')
    assert grid_edges(two, 'p9') == ()  # lr 0.1, warm-up 0.1dur: inside both; pacing has two names, no edge
    assert grid_edges(two, 'p18') == ('optimizer.lr', 'scheduler.t_warmup')
    with pytest.raises(UsageError, match=r"optimizer=\[\{'name': None\}\] must be a non-empty list of values.*tied"):
        parse_sweep({**GOOD, 'tune': {'seeds': [101], 'grid': {'optimizer': [{'name': None}]}}}, 'x.yaml')


def test_recipes_train_with_the_baselines_settings_unless_they_declare_their_own_tune(tmp_path, monkeypatch):
    sweep = stand_in(tmp_path, monkeypatch, accuracy='lr if lr < 1 else 3 - lr')  # best: 0.2 on the sweep's grid, 1
    recipes = {'b': {'yaml': RECIPE}, 'follows': {'yaml': RECIPE}, 'same': {'yaml': RECIPE, 'tune': True},
               'own': {'yaml': RECIPE, 'tune': {'seeds': [102, 101], 'grid': {'optimizer.lr': [1, 2, 3]}}}}
    code, runs = sweep({**GOOD, 'tune': TUNE, 'recipes': recipes})
    assert code == 0
    assert [r['run_name'] for r in runs if r['run_name'].startswith('tune-') and r['seed'] == '101'] == [
        *(f'tune-{name}-b1-p{n}-s101' for name in ('b', 'same', 'own') for n in (1, 2, 3))]
    assert {r['run_name']: r['optimizer.lr'] for r in runs if not r['run_name'].startswith('tune-')} == {
        'b-b1-s1': '0.2', 'follows-b1-s1': '0.2', 'same-b1-s1': '0.2', 'own-b1-s1': '1'}
    tuned = read_tuned(str(tmp_path / 'results'))
    assert tuned.uses == {'b': 'b', 'follows': 'b', 'same': 'same', 'own': 'own'}
    assert tuned.grids['own'] == {'optimizer.lr': [1, 2, 3]}
    assert tuned.choice('follows', 1.0) is tuned.choices['b', 1.0]


def test_fixed_schedules_give_every_recipe_its_budgets_settings_without_tuning(tmp_path, monkeypatch):
    sweep = stand_in(tmp_path, monkeypatch)
    schedules = {0.5: ['optimizer.lr=0.2', 'scheduler.t_warmup=0.25dur'], 1: ['optimizer.lr=0.05']}
    code, runs = sweep({**GOOD, 'budgets': [0.5, 1], 'schedules': schedules,
                        'recipes': {'b': {'yaml': RECIPE}, 'k': {'yaml': RECIPE, 'budgets': [0.5]}}})
    assert code == 0
    assert {r['run_name']: (r['optimizer.lr'], r.get('scheduler.t_warmup')) for r in runs} == {
        'b-b0.5-s1': ('0.2', '0.25dur'), 'k-b0.5-s1': ('0.2', '0.25dur'), 'b-b1-s1': ('0.05', None)}
    assert not (tmp_path / 'results' / 'tuning').exists() and read_tuned(str(tmp_path / 'results')) is None


def test_a_schedule_with_an_unknown_key_is_refused_before_any_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = tmp_path / 'sweep.yaml'
    path.write_text(yaml.safe_dump({**GOOD, 'results': str(tmp_path / 'r'), 'budgets': [0.5, 1],
                                    'schedules': {0.5: ['optimizer.lr=0.1'], 1: ['optimizer.lrr=0.1']}}))
    with pytest.raises(UsageError) as e:
        load_sweep(str(path))
    assert str(e.value) == f"{path}: recipe 'b' at budget 1: unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"
    assert not (tmp_path / 'r').exists()


def test_a_resumed_sweep_reuses_tuned_yaml_tunes_only_new_budgets_and_refuses_another_tune_spec(tmp_path, monkeypatch):
    sweep = stand_in(tmp_path, monkeypatch, accuracy='lr * budget')
    recipes = {'b': {'yaml': RECIPE}, 'k': {'yaml': RECIPE, 'budgets': [1]}}
    assert sweep({**GOOD, 'tune': TUNE, 'recipes': recipes})[0] == 0
    code, runs = sweep({**GOOD, 'tune': TUNE, 'recipes': recipes})
    assert (code, runs) == (0, [])  # every run finished: nothing trains, tuned.yaml is read back
    code, runs = sweep({**GOOD, 'budgets': [1, 2], 'tune': TUNE, 'recipes': recipes})
    assert code == 0 and [r['run_name'] for r in runs] == [
        'tune-b-b2-p1-s101', 'tune-b-b2-p2-s101', 'tune-b-b2-p3-s101',
        'tune-b-b2-p1-s102', 'tune-b-b2-p2-s102', 'tune-b-b2-p3-s102', 'b-b2-s1']
    assert sorted(read_tuned(str(tmp_path / 'results')).choices) == [('b', 1.0), ('b', 2.0)]

    results = tmp_path / 'results'
    how = (f'to retune, give the sweep a new results folder, or delete {results}/tuned.yaml, {results}/tuning and the '
           'evaluation runs trained with its settings')
    with pytest.raises(UsageError) as e:
        sweep({**GOOD, 'tune': {**TUNE, 'grid': {'optimizer.lr': [0.05, 0.1]}}})
    assert str(e.value) == (
        f"{results}/tuned.yaml was tuned with tune: {{seeds: [101, 102], grid: {{optimizer.lr: [0.05, 0.1, 0.2]}}}}, not "
        f"this sweep's {{seeds: [101, 102], grid: {{optimizer.lr: [0.05, 0.1]}}}}: {how}"
    )
    with pytest.raises(UsageError) as e:  # k's runs trained with the baseline's settings
        sweep({**GOOD, 'tune': TUNE, 'recipes': {'b': {'yaml': RECIPE}, 'k': {'yaml': RECIPE, 'tune': True}}})
    assert str(e.value) == (
        f'{results}/tuned.yaml has k train with the settings tuned for b, not for k as this sweep says: {how}')


def test_a_dry_run_shows_the_tuning_runs_and_says_the_evaluation_runs_wait_on_them(tmp_path, monkeypatch, capsys):
    sweep = stand_in(tmp_path, monkeypatch)
    assert sweep({**GOOD, 'seeds': [1, 2], 'tune': {'seeds': [101], 'grid': {'optimizer.lr': [0.05, 0.1]}}},
                 dry_run=True) == (0, [])
    out = capsys.readouterr().out
    folder = tmp_path / 'results' / 'tuning' / 'b' / 'b1'
    assert [line for line in out.splitlines() if line.startswith('===')] == [
        f'=== tuning [1/2] b budget 1 p1 seed 101: start  {folder}/p1/seed101',
        f'=== tuning [2/2] b budget 1 p2 seed 101: start  {folder}/p2/seed101',
        f'=== [1/2] b budget 1 seed 1: waits on tuning  {tmp_path}/results/b/b1/seed1',
        f'=== [2/2] b budget 1 seed 2: waits on tuning  {tmp_path}/results/b/b1/seed2',
    ]
    assert out.count('\n$ ') == 4 and 'tuning: 2 runs, 0 already finished, 2 to train' in out
    assert out.count(' + the settings tuned for b at budget 1\n') == 2
    assert (f'sweep: 2 evaluation runs wait on tuning: they train with the settings chosen from the tuning runs '
            f'above ({tmp_path}/results/tuned.yaml)') in out
    assert not (tmp_path / 'results').exists()


def test_past_values_spread_over_the_evaluation_and_tuning_seeds(tmp_path):
    past = [17, 'b', 19.5]
    sweep = parse_sweep({
        **GOOD, 'seeds': [1, 2, 3, 4, 5], 'past': past, 'tune': {'seeds': [6, 7], 'grid': {'optimizer.lr': [0.1]}},
        'overrides': ['algorithms.warm_start.run=runs/past-{past}'],
        'recipes': {'b': {'yaml': RECIPE}, 'k': {'yaml': RECIPE, 'overrides': ['run_tag={past}-{past}']}},
    }, 's.yaml')
    shown = {17: '17', 'b': 'b', 19.5: '19.5'}
    for run in plan(sweep) + tuning_plan(sweep, tuned_pairs(sweep)):
        value = shown[past[run.seed % 3]]
        expected = [f'algorithms.warm_start.run=runs/past-{value}'] + ([f'run_tag={value}-{value}'] if run.recipe == 'k' else [])
        assert list(run.overrides[:len(expected)]) == expected
    assert [r.overrides[0] for r in plan(sweep) if r.recipe == 'b'] == [
        f'algorithms.warm_start.run=runs/past-{shown[past[s % 3]]}' for s in (1, 2, 3, 4, 5)]
    assert parse_sweep(yaml.safe_load(sweep.to_yaml()), 'sweep.yaml') == sweep  # sweep.yaml keeps the placeholder


def test_tuning_runs_are_named_and_tagged_apart_from_evaluation_runs():
    sweep = parse_sweep({**GOOD, 'budgets': [0.5], 'tune': TUNE}, 's.yaml')
    [evaluation], tuning = plan(sweep), tuning_plan(sweep, tuned_pairs(sweep))
    assert [r.name for r in tuning[:3]] == ['tune-b-b0.5-p1-s101', 'tune-b-b0.5-p2-s101', 'tune-b-b0.5-p3-s101']
    assert run_tags(sweep, tuning[1])['tuning'] == 'p2' and 'tuning' not in run_tags(sweep, evaluation)


def test_primary_names_a_compared_recipe_at_one_of_its_budgets():
    recipes = {'b': {'yaml': RECIPE}, 'kd': {'yaml': RECIPE, 'budgets': [0.5]}}
    sweep = parse_sweep({**GOOD, 'budgets': [0.5, 1], 'recipes': recipes, 'primary': {'recipe': 'kd', 'budget': 0.5}}, 's')
    assert (sweep.primary.recipe, sweep.primary.budget) == ('kd', 0.5)
    assert yaml.safe_load(sweep.to_yaml())['primary'] == {'recipe': 'kd', 'budget': 0.5}
    assert parse_sweep(yaml.safe_load(sweep.to_yaml()), 'sweep.yaml') == sweep


def test_every_tuning_point_is_checked_before_any_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = tmp_path / 'sweep.yaml'
    path.write_text(yaml.safe_dump({**GOOD, 'tune': {'seeds': [101], 'grid': {'optimizer.lr': [0.1, -1]}},
                                    'overrides': ['data.holdout=144']}))
    with pytest.raises(UsageError) as e:
        load_sweep(str(path))
    assert str(e.value).endswith(
        "at tuning point p2 (optimizer.lr=-1): optimizer.lr=-1 is out of range: use a number in [0, 1000]")


def test_a_sweep_that_tunes_without_a_validation_split_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = tmp_path / 'sweep.yaml'
    path.write_text(yaml.safe_dump({**GOOD, 'tune': {'seeds': [101], 'grid': {'optimizer.lr': [0.1, 0.2]}},
                                    'overrides': ['data.holdout=0']}))
    with pytest.raises(UsageError) as e:
        load_sweep(str(path))
    assert str(e.value).startswith(f"{path}: recipe 'b'") and str(e.value).endswith(
        ': tune chooses by the final accuracy on a validation split, never the test split, and these runs hold out '
        'none (data.holdout 0): set it for every run, e.g. overrides: [data.holdout=144]')
    path.write_text(yaml.safe_dump({**GOOD, 'tune': {'seeds': [101], 'grid': {'optimizer.lr': [0.1, 0.2]}},
                                    'overrides': ['data.holdout=144']}))
    assert load_sweep(str(path)).tune is not None


def test_a_tuned_yaml_chosen_on_the_test_split_is_refused(tmp_path, monkeypatch):
    sweep = stand_in(tmp_path, monkeypatch)
    content = {**GOOD, 'tune': {'seeds': [101], 'grid': {'optimizer.lr': [0.05, 0.1]}}}
    assert sweep(content)[0] == 0
    tuned = tmp_path / 'results' / 'tuned.yaml'
    old = yaml.safe_load(tuned.read_text())
    del old['split']  # as tuned.yaml was written before tuning chose on the validation split
    tuned.write_text(yaml.safe_dump(old))
    with pytest.raises(UsageError) as e:
        sweep(content)
    assert str(e.value).startswith(f'{tuned} chose its settings on the test split (made before tuning chose on the '
                                   'validation split): to retune, give the sweep a new results folder, or delete')


RECIPES = {'b': {'yaml': RECIPE}, 'k': {'yaml': RECIPE, 'budgets': [0.5]}}
TWO = {**GOOD, 'budgets': [0.5, 1], 'recipes': RECIPES}


@pytest.mark.parametrize(('changes', 'message'), [
    ({'seeds': [1, 2, 3], 'tune': {'seeds': [3, 9], 'grid': {'optimizer.lr': [0.1]}}},
     'tune.seeds [3, 9] share 3 with seeds [1, 2, 3]: tune on seeds no evaluation run uses, e.g. [4, 5]'),
    ({'tune': {'grid': {'optimizer.lr': [0.1]}}},
     'tune.seeds needs a value: list the tuning seeds, none of them in seeds, e.g. [2, 3, 4]'),
    ({'tune': {'seeds': [2]}}, 'tune.grid needs a value (see the sweep YAML format in the README)'),
    ({'tune': 'lr'}, "tune='lr' must be a mapping {seeds: [...], grid: {KEY: [VALUES]}}"),
    ({'tune': {'seeds': [2], 'grid': {'optimizer.lr': []}}},
     'tune.grid.optimizer.lr=[] must be a non-empty list of values, e.g. [0.05, 0.1, 0.2], or of tied settings under '
     'it, e.g. optimizer: [{name: sgd, lr: 0.1}, {name: adamw, lr: 0.001}]'),
    ({'tune': {'seeds': [2], 'grid': {'optimizer.lr': [0.1, 0.1]}}},
     'tune.grid.optimizer.lr=[0.1, 0.1] repeats a value: each value is tried once'),
    ({'tune': {'seeds': [2], 'grid': {'seed': [1, 2]}}},
     'tune.grid.seed: the sweep sets seed for every run (seed, scale_schedule_ratio, run_name, save_folder, '
     'autoresume, threads): tune another key'),
    ({'tune': {'seeds': [2], 'grid': {'optimizer lr': [1]}}},
     "tune.grid key 'optimizer lr' is not a config key such as optimizer.lr"),
    ({'tune': {'seeds': [2], 'grid': {'optimizer.lr': [0.1]}}, 'recipes': {'b': {'yaml': RECIPE}, 'tuning': {'yaml': RECIPE}}},
     "recipe 'tuning' would share its folder with the tuning runs: rename it"),
    ({'recipes': {**RECIPES, 'k': {'yaml': RECIPE, 'tune': True}}},
     "recipes.k.tune needs the sweep's tune (tuning seeds and grid): add tune: {seeds: [...], grid: {...}}, or remove "
     'recipes.k.tune'),
    ({'tune': {'seeds': [2], 'grid': {'optimizer.lr': [0.1]}}, 'recipes': {'b': {'yaml': RECIPE, 'tune': True}}},
     "recipes.b.tune: the baseline is tuned by the sweep's tune: remove recipes.b.tune"),
    ({'tune': {'seeds': [2, 3], 'grid': {'optimizer.lr': [0.1, 0.2]}},
      'recipes': {**RECIPES, 'k': {'yaml': RECIPE, 'tune': {'grid': {'optimizer.lr': [0.1, 0.2, 0.3]}}}}},
     'recipes.k.tune.grid has 3 points and tune.grid 2: equal tuning effort needs as many, so give it 2 (or write '
     "tune: true for the sweep's grid)"),
    ({'tune': {'seeds': [2, 3], 'grid': {'optimizer.lr': [0.1, 0.2]}},
      'recipes': {**RECIPES, 'k': {'yaml': RECIPE, 'tune': {'seeds': [2], 'grid': {'optimizer.momentum': [0.8, 0.9]}}}}},
     "recipes.k.tune.seeds [2] are not tune.seeds [2, 3]: every tuned recipe tunes on the sweep's tuning seeds (equal "
     'tuning effort), so remove recipes.k.tune.seeds'),
    ({'recipes': {**RECIPES, 'k': {'yaml': RECIPE, 'tune': False}}},
     "recipes.k.tune=False must be a mapping {grid: {KEY: [VALUES]}}, or true (the sweep's grid)"),
    ({'overrides': ['algorithms.warm_start.run=runs/s{past}']},
     'overrides holds {past} but the sweep has no past: list what it stands for, one value per past run, e.g. '
     'past: [17, 18, 19] (seed s gets past[s mod 3])'),
    ({'past': [17, 18]},
     'past [17, 18] fills no override: write {past} where an override names a past run, e.g. '
     'algorithms.past_run_distillation.run=runs/digits-baseline-s{past}'),
    ({'past': [17, '17'], 'overrides': ['a.b={past}']}, "past=[17, '17'] repeats a value: each one names a different past run"),
    ({'past': [], 'overrides': ['a.b={past}']}, 'past=[] must be a list of values, one per past run, e.g. [17, 18, 19]'),
    ({'past': [None], 'overrides': ['a.b={past}']}, 'past=[None] must be a list of values, one per past run, e.g. [17, 18, 19]'),
    ({'primary': {'recipe': 'b', 'budget': 1}}, "primary.recipe 'b' must be one of the recipes compared with the baseline (k)"),
    ({'primary': {'recipe': 'kd', 'budget': 1}}, "primary.recipe 'kd' must be one of the recipes compared with the baseline (k)"),
    ({'primary': {'recipe': 'k', 'budget': 1}}, 'primary.budget 1 is not a budget of k (0.5): name one of them'),
    ({'primary': {'recipe': 'k'}}, 'primary.budget needs a value (see the sweep YAML format in the README)'),
    ({'primary': 'k'}, "primary='k' must be a mapping {recipe: NAME, budget: B}"),
    ({'schedules': {0.5: ['optimizer.lr=0.1'], 1: ['optimizer.lr=0.1']}, 'tune': TUNE},
     'give tune (choose the settings per budget) or schedules (fixed settings per budget), not both'),
    ({'schedules': {0.5: ['optimizer.lr=0.1']}},
     "schedules lacks budget 1: give every budget its settings, so none trains with the recipes' defaults by omission"),
    ({'schedules': {0.5: ['optimizer.lr=0.1'], 1: [], 2: []}}, 'schedules has budget 2, which no recipe trains at: remove it'),
    ({'schedules': {'half': ['optimizer.lr=0.1']}}, "schedules key 'half' is not a budget: use ratios of max_duration such as 0.5"),
    ({'schedules': {0.5: ['lr'], 1: []}}, "schedules.0.5 entry 'lr' is not key=value (for example seed=3)"),
    ({'schedules': {0.5: ['seed=3'], 1: []}},
     "schedules.0.5 sets 'seed', which the sweep sets for every run (seed, scale_schedule_ratio, run_name, save_folder, "
     'autoresume, threads): remove it (seeds go in seeds:, folders under results:)'),
])
def test_tune_past_and_primary_mistakes_are_one_line_errors(changes, message):
    with pytest.raises(UsageError) as e:
        parse_sweep({**TWO, **changes}, 'study.yaml')
    assert str(e.value) == f'study.yaml: {message}'


def test_checkpoint_quality_reads_the_validation_accuracy_where_the_run_has_one():
    from algorithms.past_run import checkpoint_quality

    # the test split would call ep1 usable (80% of a best of 90%); the validation split puts it near chance
    evals = [{'epoch': 1, 'batch': 10, 'accuracy': 0.8, 'val_accuracy': 0.12},
             {'epoch': 2, 'batch': 20, 'accuracy': 0.9, 'val_accuracy': 0.85}]
    first = checkpoint_quality(evals, 'ep1-ba10-rank0.pt', 10)
    assert (first.split, first.accuracy, first.best, first.verdict) == ('val', 0.12, 0.85, 'near chance')
    assert first.describe() == ('checkpoint ep1-ba10-rank0.pt (epoch 1): val accuracy 12.0%, run best 85.0%, chance '
                                '10.0%: near chance')
    test_only = [{k: v for k, v in row.items() if not k.startswith('val_')} for row in evals]
    assert checkpoint_quality(test_only, 'ep1-ba10-rank0.pt', 10).verdict == 'usable'  # no holdout: the test split's
    assert checkpoint_quality(test_only, 'ep1-ba10-rank0.pt', 10).split == 'test'


def test_a_stale_run_stops_the_sweep_in_one_line_or_trains_again_with_rerun_stale(tmp_path, monkeypatch):
    sweep = stand_in(tmp_path, monkeypatch)
    content = {**GOOD, 'seeds': [1, 2]}
    code, runs = sweep(content)
    assert code == 0 and [r['run_name'] for r in runs] == ['b-b1-s1', 'b-b1-s2']
    assert sweep(content) == (0, [])  # finished with the same config: skipped
    folder = tmp_path / 'results' / 'b' / 'b1' / 'seed1'
    recorded = json.loads((folder / 'fingerprint.json').read_text())
    assert recorded['config']['seed'] == 1 and recorded['config']['optimizer']['lr'] == 0.1
    changed = {**content, 'overrides': ['optimizer.lr=0.2']}
    with pytest.raises(UsageError) as e:
        sweep(changed)
    assert str(e.value) == (
        f'run b-b1-s1 ({folder}) is stale: it was trained with another config: first differing key optimizer.lr '
        '(trained with: 0.1, now: 0.2): start the sweep with --rerun_stale to train it again from nothing, or give the '
        'sweep another results folder (or past_root)')
    (folder / 'stale-checkpoint.pt').write_text('old')  # what the stale run left: gone when it trains again
    (tmp_path / 'results' / 'registration.json').unlink()
    code = run_sweep(parse_sweep({**changed, 'results': str(tmp_path / 'results')}, 's.yaml'),
                     str(tmp_path / 'train.py'), rerun_stale=True)
    assert code == 0 and not (folder / 'stale-checkpoint.pt').exists()
    assert json.loads((folder / 'fingerprint.json').read_text())['config']['optimizer']['lr'] == 0.2
    assert sweep(changed) == (0, [])  # now current: nothing trains
