"""An artifact builder is declared like an algorithm: a function whose arguments carry their rules (``Annotated``) and
whose ``ties`` hold the rules that tie them together. Its ``launch/`` script's command line, its docs table and the
study file's check read that declaration; adding one is its function in its package and one line of
``recipes.registry.BUILDERS``."""

from __future__ import annotations

import argparse
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_cli import SETTINGS, dests, parser_of, rule_of

from recipes import reference
from recipes.cli import builder_main, builder_parser
from recipes.core.declare import REQUIRED, declared
from recipes.core.errors import UsageError
from recipes.core.rules import Flag, Location, Number
from recipes.core.ties import Ties, Values
from recipes.registry import BUILDERS

TOY_TIES = Ties('the toy builder')


@TOY_TIES.tie('low', 'high')
def _low_below_high(args: Values) -> None:
    """``low`` is at most ``high``."""
    if args.low > args.high:
        raise UsageError(f'{args.key("low")}={args.low} is above {args.key("high")}={args.high}: swap them')


def toy(
    out: Annotated[str, Location(), 'where it writes'],
    low: Annotated[int, Number(0, 10, integer=True), 'the lower end'] = 0,
    high: Annotated[int, Number(0, 10, integer=True), 'the upper end'] = 10,
    loud: Annotated[bool, 'say it louder'] = False,
) -> str:
    """A toy artifact builder."""
    return f'{out}: {low}..{high}' + ('!' if loud else '')


toy.ties = TOY_TIES  # type: ignore[attr-defined]


@pytest.mark.parametrize('name', sorted(BUILDERS))
def test_each_builder_script_is_generated_from_its_declaration(name: str) -> None:
    builder = BUILDERS[name]
    actions = dests(parser_of(builder.__name__))  # launch/{function name}.py
    arguments = declared(builder)
    assert list(actions) == list(arguments)
    for arg, argument in arguments.items():
        action = actions[arg]
        if isinstance(argument.rule, Flag):
            assert isinstance(action, argparse._StoreTrueAction), arg
        else:
            assert rule_of(action) == argument.rule, arg
            assert action.required == (argument.default is REQUIRED), arg
            assert action.help == argument.doc, arg


def test_a_toy_builder_gets_its_command_line_its_ties_and_its_docs_table(capsys: pytest.CaptureFixture,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    main = builder_main(toy)
    assert main(['--out', 'x', '--low', '3', '--loud']) == 0
    assert capsys.readouterr().out == 'x: 3..10!\n'
    for argv, message in (
        (['--out', 'x', '--low', '11'], '--low=11 is out of range: use a whole number in [0, 10]'),
        (['--low', '1'], 'the following arguments are required: --out'),
        (['--out', 'x', '--low', '5', '--high', '2'], '--low=5 is above --high=2: swap them'),
    ):
        with pytest.raises(UsageError) as info:
            main(argv)
        assert message in str(info.value) and '\n' not in str(info.value), str(info.value)
    monkeypatch.setitem(BUILDERS, 'toy', toy)  # the one registry line
    table = reference.builder_table('toy')
    assert table.splitlines()[0] == '**builder `toy`**: `launch/toy.py`, `test_builders.toy`'
    assert '| `--low` | `0` | a whole number in [0, 10] | the lower end |' in table
    assert table.splitlines()[-1] == 'Checked together: `low`, `high`: `low` is at most `high`.'
    assert 'builder `toy`' in reference.builders_page()


@SETTINGS
@given(low=st.integers(0, 10), high=st.integers(0, 10))
def test_the_ties_refuse_exactly_the_values_they_tie(low: int, high: int) -> None:
    args = vars(builder_parser(toy).parse_args(['--out', 'x', '--low', str(low), '--high', str(high)]))
    if low <= high:
        TOY_TIES.check(Values(args))
        return
    with pytest.raises(UsageError) as info:
        TOY_TIES.check(Values(args))
    assert str(info.value) == f'--low={low} is above --high={high}: swap them'


@SETTINGS
@given(eps=st.integers(1, 255), step=st.integers(1, 255))
def test_a_pgd_step_beyond_its_radius_is_refused_wherever_it_is_given(eps: int, step: int) -> None:
    from algorithms.adversarial_replay.build import build_adv_bank
    from algorithms.adversarial_replay.pgd import ATTACK_TIES

    arguments = declared(build_adv_bank)  # each value as its rule reads it from the command line
    args = {name: arguments[name].rule.check(f'--{name}', f'{k}/255') for name, k in (('eps', eps), ('step_size', step))}
    for prefix in ('--', 'callbacks.eval_robustness.'):
        if step <= eps:
            ATTACK_TIES.check(Values(args, prefix))
            continue
        with pytest.raises(UsageError, match=f'^{prefix}step_size=.* is out of range: use a step in \\(0, eps='):
            ATTACK_TIES.check(Values(args, prefix))


def test_a_study_files_artifact_entry_is_read_off_the_same_declaration() -> None:
    from recipes.study.builders import BUILDERS as ENTRIES
    from recipes.study.builders import builder_argv, check_builder_args

    assert list(ENTRIES) == list(BUILDERS)
    bank = ENTRIES['adv_bank']
    assert (bank.script, bank.suffix, bank.required, bank.flags) == ('launch/build_adv_bank.py', '', ('checkpoints',),
                                                                    ('strict',))
    assert ENTRIES['score'].suffix == '.npy'
    for args, message in (
        ({'checkpoints': 'auto', 'eps': '2/255', 'step_size': '4/255'},
         'artifacts.bank.args.step_size=0.01569 (4/255) is out of range: use a step in (0, eps=0.007843 (2/255)], '
         'e.g. eps/4 (2/255 for 8/255)'),
        ({'checkpoints': 'auto', 'steps': 0}, 'artifacts.bank.args.steps=0 is out of range: use a whole number in [1, 10000]'),
    ):
        with pytest.raises(UsageError) as info:
            check_builder_args('artifacts.bank.args', 'adv_bank', args)
        assert str(info.value) == message
    for args in ({'top_k': 4}, {'top_k': 4, 'checkpoint': 'latest', 'checkpoints': 'ep1,ep2'}):
        with pytest.raises(UsageError) as info:
            check_builder_args('artifacts.cache.args', 'teacher_cache', args)
        assert str(info.value) == (
            'give artifacts.cache.args.checkpoint (the teacher of past_run_distillation) or artifacts.cache.args.'
            'checkpoints (the teachers of checkpoint_mixup_teacher), one of the two')
    check_builder_args('artifacts.cache.args', 'teacher_cache', {'top_k': 4, 'checkpoint': 'latest'})
    assert builder_argv('adv_bank', 'RUN', 'OUT', {'checkpoints': 'auto', 'seed': '{past}', 'strict': True}, '17') == [
        'launch/build_adv_bank.py', '--run', 'RUN', '--checkpoints', 'auto', '--seed', '17', '--strict', '--out', 'OUT']
