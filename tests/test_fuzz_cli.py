"""Property-based tests of every entry point's arguments, and a handful of real command lines.

Generic over ``launch/``: each script's argparse parser is captured (its ``parse_args`` is intercepted before the
script does anything), every argument must declare its rule (an argparse ``type`` from
:func:`recipes.cli.arg_type`, which carries ``.rule``; ``choices``; or a ``store_true`` flag), and values
generated from the rule must be refused by parsing with one line naming the argument (invalid ones) or accepted
(valid ones), in-process. The checks that tie arguments together run in the script after parsing: tested below
through its ``main``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import string
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import ROOT, TINY, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algorithms.past_run import CHECKPOINT_POLICIES
from recipes.core.artifacts import CheckpointList, NoBank, PastRunFolder
from recipes.core.errors import UsageError
from recipes.core.rules import Choice, LocalFile, Location, Number, Overrides, PixelValue, Rule

SETTINGS = settings(
    max_examples=15, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SCRIPTS = sorted(p.stem for p in (ROOT / 'launch').glob('*.py'))


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def load_script(script: str) -> ModuleType:
    """``launch/{script}.py`` imported in this process (no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location(f'launch_{script}', ROOT / 'launch' / f'{script}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def parser_of(script: str) -> argparse.ArgumentParser:
    """The parser ``launch/{script}.py`` builds, taken at its ``parse_args`` call: nothing after it runs."""
    module = load_script(script)

    def intercept(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Captured(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, 'parse_args', intercept)
        patch.setattr(sys, 'argv', [f'{script}.py'])
        try:
            module.main(*([] if script in ('demo', 'study') else [[]]))
        except _Captured as captured:
            return captured.parser
    raise AssertionError(f'launch/{script}.py never parsed its arguments')


def dests(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest != 'help'}


def rule_of(action: argparse.Action) -> Rule | None:
    """The rule an argument's argparse type carries (``arg_type``), or None."""
    rule = getattr(action.type, 'rule', None)
    return rule if isinstance(rule, Rule) else None


def name_of(action: argparse.Action) -> str:
    return max(action.option_strings, key=len) if action.option_strings else action.dest


def test_every_entry_point_argument_has_a_rule():
    assert len(SCRIPTS) >= 9
    covered = 0
    for script in SCRIPTS:
        source = (ROOT / 'launch' / f'{script}.py').read_text()
        assert 'check_arguments' not in source and 'recipes.arguments' not in source, script  # one declaration
        for dest, action in dests(parser_of(script)).items():
            declared = rule_of(action) is not None or action.choices or isinstance(action, argparse._StoreTrueAction)
            assert declared, (f'launch/{script}.py: argument {dest} declares no rule: give it type=arg_type(Rule(...)), '
                              'choices or action="store_true"')
            covered += 1
    assert covered >= 40


def test_auto_checkpoints_name_a_policy():
    policies = {script: rule_of(dests(parser_of(script))['checkpoints']) for script in ('score', 'build_adv_bank')}
    assert policies == {'score': CheckpointList(policy='earliest'),
                        'build_adv_bank': CheckpointList(policy='earliest_and_best')}
    assert set(CHECKPOINT_POLICIES) == {'earliest', 'earliest_and_best'}


# ----- generators of argument values (strings, as typed on a command line)

JUNK = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + ' _./:[]{},', max_size=12),
    st.sampled_from(['', ' ', 'nan', 'inf', '-inf', '[1]', '{}', 'true', '1e999', '0x10']),
)


def _float_like(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def number_values(rule: Number, valid: bool) -> st.SearchStrategy[str]:
    low = -1e6 if rule.low is None else rule.low
    high = 1e6 if rule.high is None else rule.high
    if valid:
        if rule.integer:
            return st.integers(int(low) + rule.low_open, int(high) - rule.high_open).map(str)
        return st.floats(low, high, exclude_min=rule.low_open, exclude_max=rule.high_open).map(repr)
    fmt = (lambda x: str(int(x))) if rule.integer else repr
    outside = [st.floats(max_value=low, exclude_max=not rule.low_open, allow_nan=False, allow_infinity=False)
               .filter(lambda x: not rule.integer or x <= low - 1 or (rule.low_open and x == low)).map(fmt),
               st.floats(min_value=high, exclude_min=not rule.high_open, allow_nan=False, allow_infinity=False)
               .filter(lambda x: not rule.integer or x >= high + 1 or (rule.high_open and x == high)).map(fmt)]
    if rule.integer:
        outside.append(st.floats(-50, 50).filter(lambda x: not x.is_integer()).map(repr))
    return st.one_of(*outside, JUNK.filter(lambda s: not _float_like(s)))


def generator(action: argparse.Action, valid: bool, env: dict[str, str]) -> st.SearchStrategy[Any]:
    """Values for one argument, from its rule; a list of strings for ``nargs='*'``."""
    rule = rule_of(action)
    if rule is None:  # argparse itself allows only valid values
        if action.choices:
            return st.sampled_from(list(action.choices)) if valid else JUNK.filter(lambda s: s not in action.choices)
        return st.just(True) if valid else st.sampled_from(['x', 'yes', '1'])
    if isinstance(rule, Number):
        return number_values(rule, valid)
    if isinstance(rule, Location):
        if valid:
            return st.sampled_from([env['new'], 's3://bucket/prefix'] + ([None] if rule.optional else [])
                                   + ([''] if rule.empty_is_none else []))
        return st.sampled_from(['   ', 's3://', 's3:///prefix'] + ([] if rule.empty_is_none else ['']))
    if isinstance(rule, LocalFile):
        if valid:
            return st.just(rule.example)
        return st.sampled_from(['', 'yamls', 'yamls/none.yaml', env['new'] + '.yaml', 's3://bucket/x.yaml'])
    if isinstance(rule, PastRunFolder):
        runs = st.sampled_from([env['past'], env['past'] + '/']) if valid else st.sampled_from(
            [env['new'], env['not_a_run'], env['file'], '', 's3://'])
        return st.lists(runs, min_size=1, max_size=2) if action.nargs == '*' else runs
    if isinstance(rule, CheckpointList):  # names only: whether the run holds them is the script's check (below)
        if valid:
            return st.sampled_from(['ep1', 'latest', 'ep9'] + ([] if rule.single else ['ep1,ep2', 'ep2, ep1'])
                                   + (['auto'] if rule.policy else []))
        return st.sampled_from(['', ' ', '  '] + ([] if rule.single else [',', ' , ', ',,']))
    if isinstance(rule, PixelValue):
        if valid:
            return st.one_of(st.integers(1, 255).map(lambda k: f'{k}/255'), st.floats(0.001, 1).map(repr),
                             *([st.none()] if rule.optional else []))
        return st.one_of(st.sampled_from(['0', '-1/255', '2', '256/255', 'abc', '1/0', 'nan', 'inf', '']),
                         st.floats(1.0001, 1e6).map(repr))
    if isinstance(rule, NoBank):
        return st.just(env['new']) if valid else st.sampled_from([env['bank'], '', 's3://'])
    if isinstance(rule, Choice):
        options = list(rule.options())
        return st.sampled_from(options) if valid else JUNK.filter(lambda s: s not in options)
    if isinstance(rule, Overrides):
        if valid:
            return st.lists(st.sampled_from(['seed=3', 'max_duration=4ep', 'optimizer.lr=0.05']), max_size=2)
        return st.lists(st.sampled_from(['seed3', '=3', ' =x', 'nothing']), min_size=1, max_size=2)
    raise AssertionError(f'add a generator to tests/test_fuzz_cli.py for {type(rule).__name__}')


@pytest.fixture(scope='module')
def env(past_run: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp('fuzz-cli')
    (root / 'not-a-run').mkdir()
    (root / 'not-a-run' / 'ep1-ba8-rank0.pt').write_bytes(b'a checkpoint without its config.yaml')
    (root / 'file').write_text('x')
    (root / 'bank').mkdir()
    (root / 'bank' / 'bank.json').write_text('{}')
    return {'past': past_run, 'new': str(root / 'new'), 'not_a_run': str(root / 'not-a-run'),
            'file': str(root / 'file'), 'bank': str(root / 'bank')}


def base_argv(script: str, env: dict[str, str]) -> dict[str, Any]:
    """A valid value for each required argument of ``script``."""
    past = env['past']
    return {
        'train': {'recipe': 'yamls/digits/baseline.yaml'},
        'score': {'run': past, 'checkpoints': 'ep1', 'method': 'el2n', 'out': f'{env["new"]}/s.npy'},
        'build_adv_bank': {'run': past, 'checkpoints': 'ep1', 'out': env['new']},
        'cache_teacher': {'run': past, 'checkpoint': 'ep1', 'top_k': '4', 'out': env['new']},
        'eval_robustness': {'run': past},
        'inspect_run': {'run': past},
        'sweep': {'sweep': 'yamls/sweeps/digits.yaml'},
        'report': {'results': env['new']},
        'convert_cifar100': {'in_root': env['new'], 'out_root': env['new']},
        'convert_images': {'in_root': env['new'], 'out_root': env['new']},
    }.get(script, {})


def argv_of(parser: argparse.ArgumentParser, values: dict[str, Any]) -> list[str]:
    positional, options = [], []
    for dest, action in dests(parser).items():
        if dest not in values or values[dest] is None:
            continue
        value = values[dest]
        if not action.option_strings:
            positional += value if isinstance(value, list) else [value]
        elif action.nargs == 0:
            options += [action.option_strings[0]] if value is True else [f'{action.option_strings[0]}={value}']
        elif isinstance(value, list):
            options += [action.option_strings[0], *value]
        else:
            options.append(f'{action.option_strings[0]}={value}')
    return [*positional, *options]


# demo.py and study.py take only flags and report through argparse itself (usage line, exit 2): not fuzzed here.
BOUNDARY = [s for s in SCRIPTS if 'run_cli(main)' in (ROOT / 'launch' / f'{s}.py').read_text()]
CASES = [(script, dest) for script in BOUNDARY for dest in dests(parser_of(script))]


@pytest.mark.parametrize(('script', 'dest'), CASES, ids=[f'{s}:{d}' for s, d in CASES])
def test_invalid_arguments_are_one_line_naming_them(script, dest, env):
    parser = parser_of(script)
    action = dests(parser)[dest]
    name = name_of(action)

    @SETTINGS
    @given(value=generator(action, False, env))
    def check(value: Any) -> None:
        argv = argv_of(parser, {**base_argv(script, env), dest: value})
        with pytest.raises(UsageError) as info:
            parser.parse_args(argv)
        message = str(info.value)
        assert '\n' not in message and name in message, (argv, message)

    check()


@pytest.mark.parametrize(('script', 'dest'), CASES, ids=[f'{s}:{d}' for s, d in CASES])
def test_valid_arguments_pass_their_rule(script, dest, env):
    parser = parser_of(script)
    action = dests(parser)[dest]
    rule = rule_of(action)

    @SETTINGS
    @given(value=generator(action, True, env))
    def check(value: Any) -> None:
        args = parser.parse_args(argv_of(parser, {**base_argv(script, env), dest: value}))
        if rule is not None and value is not None:  # the argument arrives as the value its rule returns
            texts, parsed = (value, getattr(args, dest)) if isinstance(value, list) else ([value], [getattr(args, dest)])
            assert parsed == [rule.check(name_of(action), rule.from_text(text)) for text in texts], (value, parsed)

    check()


def test_attack_arguments_are_checked_together(env):
    main = load_script('build_adv_bank').main
    argv = argv_of(parser_of('build_adv_bank'), {**base_argv('build_adv_bank', env), 'eps': '2/255', 'step_size': '4/255'})
    with pytest.raises(UsageError, match='--step_size=0.01569 \\(4/255\\) is out of range: use a step in \\(0, eps='):
        main(argv)
    assert not Path(env['new']).exists()


@pytest.mark.parametrize(('script', 'dest'), [('score', 'checkpoints'), ('build_adv_bank', 'checkpoints'),
                                              ('eval_robustness', 'checkpoint'), ('cache_teacher', 'checkpoint')])
def test_checkpoints_the_run_lacks_are_refused_naming_the_argument(script, dest, env):
    argv = argv_of(parser_of(script), {**base_argv(script, env), dest: 'ep9'})
    with pytest.raises(UsageError, match=f"^--{dest}: no checkpoint 'ep9' in .* \\(available: ep1, ep2\\)"):
        load_script(script).main(argv)
    assert not Path(env['new']).exists()


def test_a_teacher_cache_names_one_teacher_or_the_mixups_and_no_more_classes_than_the_run_has(env):
    main = load_script('cache_teacher').main
    for values, message in (({'checkpoints': 'ep1,ep2'}, 'give --checkpoint .* or --checkpoints .*, one of the two'),
                            ({'checkpoint': None}, 'give --checkpoint .* or --checkpoints .*, one of the two'),
                            ({'top_k': '11'}, '--top_k=11 must lie in 1..10')):
        with pytest.raises(UsageError, match=message):
            main(argv_of(parser_of('cache_teacher'), {**base_argv('cache_teacher', env), **values}))
    assert not Path(env['new']).exists()


# ----- real command lines: exit 2, one line, nothing written


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ('script', 'args', 'message'),
    [
        ('train.py', ['yamls/digits/baseline.yaml', 'scheduler.milestones=[foo]'], "scheduler.milestones[0]='foo'"),
        ('train.py', ['yamls/digits/baseline.yaml', '--nope'], 'unrecognized arguments: --nope'),
        ('score.py', ['--run', 'runs/none', '--checkpoints', 'ep1', '--method', 'el2n', '--out', 'x.npy'],
         '--run: no past run at runs/none'),
        ('build_adv_bank.py', ['--run', 'runs/none', '--checkpoints', 'ep1', '--out', 'x', '--steps', 'many'],
         "argument --steps: invalid int value: 'many'"),
        ('report.py', ['s3://'], "results: 's3://' is not an S3 URI with a bucket"),
    ],
)
def test_real_command_lines_end_in_one_line(tmp_path, script, args, message):
    folder = tmp_path / 'run'
    extra = [f'save_folder={folder}'] if script == 'train.py' else []
    result = run_cli(script, *args, *extra, timeout=120)
    assert message in _one_line_error(result)
    assert not folder.exists()  # nothing started: no run folder


def test_a_sweep_with_a_bad_value_starts_no_run(tmp_path):
    sweep = tmp_path / 'study.yaml'
    results = tmp_path / 'results'
    sweep.write_text(f'results: {results}\nseeds: [1]\nbaseline: b\nrecipes:\n  b: {{yaml: yamls/digits/baseline.yaml}}\n')
    result = run_cli('sweep.py', str(sweep), 'optimizer.lr=-1', timeout=120)
    assert "recipe 'b' at budget 1: optimizer.lr=-1 is out of range" in _one_line_error(result)
    assert not results.exists()  # no sweep.yaml written, no run launched


def test_debug_keeps_the_traceback(tmp_path):
    result = run_cli('train.py', 'yamls/digits/baseline.yaml', 'max_duration=0ep', '--debug', timeout=120)
    assert result.returncode != 0 and 'Traceback' in result.stderr and 'UsageError' in result.stderr


def test_a_file_that_is_no_checkpoint_is_refused_before_training(tmp_path):
    bad = tmp_path / 'ckpt.pt'
    bad.write_bytes(b'not a checkpoint')
    folder = tmp_path / 'run'
    result = run_cli('train.py', 'yamls/digits/baseline.yaml', *TINY, f'load_path={bad}', f'save_folder={folder}',
                     timeout=120)
    assert f'load_path={bad} is not a checkpoint written by torch.save' in _one_line_error(result)
    assert not folder.exists()


def test_a_checkpoint_of_another_model_is_refused_with_the_config(past_run):
    from recipes.config import load_config

    checkpoint = f'{past_run}/{sorted(p.name for p in Path(past_run).glob("ep*.pt"))[0]}'
    load_config(None, ['data.name=digits', 'model.name=resnet_20', f'load_path={checkpoint}'])
    with pytest.raises(UsageError, match=f'load_path={checkpoint} holds a resnet_20 with 10 classes .* but this run '
                                         'builds a resnet_32 with 10: set model.name=resnet_20'):
        load_config(None, ['data.name=digits', 'model.name=resnet_32', f'load_path={checkpoint}'])
