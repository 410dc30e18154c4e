"""Property-based tests of the config: every schema key and every registered class's argument, invalid values
refused in one line naming it, valid ones pass.

Generic over the declarations: the keys come from the TrainConfig dataclass (nested), the values from each key's rule
(``recipes.config.RULES``, read off the schema's ``Annotated`` fields); the arguments come from each registered
class's constructor (``recipes.registry``). A key or argument without a rule, or a kind of rule without a generator
here, fails a test. Config values go through ``load_config`` as ``key=value`` overrides, the way a user types them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recipes.config import RULES, TrainConfig, load_config
from recipes.core import rules as validate
from recipes.core.artifacts import (
    Artifact,
    BankFolder,
    CheckpointNames,
    PastRunFolder,
    PastRunFolders,
    ScoresFile,
    TeacherCacheFolder,
)
from recipes.core.data.mds import write_split
from recipes.core.data.rules import ClassIds, MDSRoot
from recipes.core.declare import REQUIRED
from recipes.core.errors import UsageError
from recipes.core.model import ModelName
from recipes.registry import REGISTRIES, Entries, Foreign
from recipes.validate import RUN_TIES

SETTINGS = settings(
    max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# The schema's defaults on digits; no milestones, so any positive max_duration is a valid one.
BASE = ['data.name=digits', 'data.holdout=144', 'scheduler.milestones=[]']  # the digits recipes' holdout, as the past run's


def schema_keys(node: Any = None, prefix: str = '') -> list[str]:
    """Every dotted key of the schema; a nested dataclass is walked, a dict-valued key is one key."""
    node = TrainConfig() if node is None else node
    keys = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            keys += schema_keys(value, f'{prefix}{f.name}.')
        else:
            keys.append(f'{prefix}{f.name}')
    return keys


@pytest.fixture(scope='module')
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths the path rules need: an existing file, a folder, an MDS root, a half MDS root, a missing path."""
    root = tmp_path_factory.mktemp('fuzz')
    with zipfile.ZipFile(root / 'ckpt.pt', 'w') as archive:  # the container torch.save writes
        archive.writestr('ckpt/data.pkl', b'not unpickled by validation')
    (root / 'junk.pt').write_bytes(b'no archive')
    images, labels = np.zeros((4, 32, 32, 3), dtype=np.uint8), np.arange(4)
    for split in ('train', 'test'):
        write_split(str(root / 'mds'), split, images, labels, progress=False)
    write_split(str(root / 'half'), 'train', images, labels, progress=False)
    (root / 'folder').mkdir()
    return {'root': str(root), 'file': str(root / 'ckpt.pt'), 'junk': str(root / 'junk.pt'), 'mds': str(root / 'mds'), 'half': str(root / 'half'),
            'folder': str(root / 'folder')}


JUNK = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + ' _-./:[]{},#!@%&*"\'\\', max_size=20),
    st.sampled_from(['', 'null', '[]', '{}', '[1, 2]', '{a: 1}', 'nan', 'inf', '-inf', 'true', '~', '???x', '1e999']),
)


def _num(x: float, integer: bool) -> str:
    return str(int(x)) if integer else repr(float(x))


def number_values(rule: validate.Number, valid: bool) -> st.SearchStrategy[str]:
    low = -1e6 if rule.low is None else rule.low
    high = 1e6 if rule.high is None else rule.high
    if valid:
        if rule.integer:
            inner = st.integers(int(low) + rule.low_open, min(int(high) - rule.high_open, 2**62))
        else:
            inner = st.floats(low, high, exclude_min=rule.low_open, exclude_max=rule.high_open, allow_nan=False)
        return st.one_of(inner.map(lambda x: _num(x, rule.integer)), *([st.just('null')] if rule.optional else []))
    outside = []
    if rule.low is not None:
        outside += [st.just(_num(rule.low, rule.integer)) if rule.low_open else st.nothing(),
                    st.floats(max_value=rule.low, exclude_max=True, allow_nan=False, allow_infinity=False)
                    .filter(lambda x: not rule.integer or x <= rule.low - 1).map(lambda x: _num(x, rule.integer))]
    if rule.high is not None:
        outside += [st.just(_num(rule.high, rule.integer)) if rule.high_open else st.nothing(),
                    st.floats(min_value=rule.high, exclude_min=True, allow_nan=False, allow_infinity=False)
                    .filter(lambda x: not rule.integer or x >= rule.high + 1).map(lambda x: _num(x, rule.integer))]
    if rule.integer:
        outside.append(st.floats(-100, 100).filter(lambda x: not x.is_integer()).map(repr))
    junk = JUNK.filter(lambda s: not _parses_as_number(s, rule))
    return st.one_of(*outside, st.sampled_from(['nan', 'inf', '-inf', '.nan', 'abc', '[1]', '{}', 'true']), junk)


def _parses_as_number(text: str, rule: validate.Number) -> bool:
    """Whether YAML + OmegaConf could read ``text`` as a valid number (or null) for this rule: not a junk value."""
    if text.strip() in ('null', '~', '') and rule.optional:
        return True
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value)


def choice_values(rule: validate.Choice, valid: bool) -> st.SearchStrategy[str]:
    options = list(rule.options())
    if valid:
        return st.one_of(st.sampled_from(options), *([st.just('null')] if rule.optional else []))
    return st.one_of(JUNK, st.sampled_from([o.upper() + 'x' for o in options])).filter(
        lambda s: s.strip() not in options and not (rule.optional and s.strip() in ('null', '~', '')),
    )


def model_name_values(rule: ModelName, valid: bool) -> st.SearchStrategy[str]:
    names = ['resnet_20', 'resnet_56', 'torchvision/resnet18', 'torchvision/mobilenet_v3_small']
    if valid:
        return st.sampled_from(names)
    from recipes.core.model import model_names

    valid_names = set(model_names())
    return st.one_of(JUNK, st.sampled_from(['resnet_57', 'resnet18', 'torchvision/resnet19', 'torchvision/', 'TORCHVISION/resnet18'])).filter(
        lambda s: s.strip() not in valid_names,
    )


def time_values(rule: validate.TimeString, valid: bool, key: str) -> st.SearchStrategy[str]:
    first = 0 if rule.zero_ok else 1
    end = 160  # the schema's max_duration (160ep): schedule times must lie inside it
    epochs = st.integers(first, end if rule.within_run else 10**6).map(lambda n: f'{n}ep')
    by_unit = {
        'ep': epochs,
        'ba': st.integers(first, 10**6).map(lambda n: f'{n}ba'),
        'dur': st.floats(0 if rule.zero_ok else 0.001, 1).map(lambda x: f'{x:.3f}dur'),
    }
    if valid:
        return st.one_of(*(by_unit[u] for u in rule.units))
    bad = [
        st.sampled_from(['banana', 'ep', '1.5ep', '-3ep', '1e3', '5', '1h', '10sp', '4tok', '2dur', '1.2dur']),
        JUNK.filter(lambda s: not _valid_time(s, rule)),
    ]
    if not rule.zero_ok:
        bad.append(st.sampled_from([f'0{u}' for u in rule.units]))
    if rule.within_run:
        bad.append(st.integers(end + 1, 10**6).map(lambda n: f'{n}ep'))
    return st.one_of(*bad)


def _valid_time(text: str, rule: validate.TimeString) -> bool:
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.from_dotlist([f'k={text}']).k
        rule.check('k', value if value is None else str(value), OmegaConf.create({'max_duration': '160ep',
                        'scheduler': {'name': 'multistep_with_warmup'}}))
        return True
    except Exception:  # noqa: BLE001 - anything the rule refuses, or YAML cannot read, is invalid
        return False


def time_list_values(rule: validate.TimeList, valid: bool, key: str) -> st.SearchStrategy[str]:
    item = time_values(rule.item, True, key)
    if valid:
        return st.lists(item, max_size=5).map(lambda xs: '[' + ', '.join(xs) + ']')
    bad_item = time_values(rule.item, False, key).filter(lambda s: s.strip() not in ('null', '~', '', '[]'))
    return st.one_of(
        st.tuples(st.lists(item, max_size=3), bad_item).map(lambda t: '[' + ', '.join([*t[0], t[1]]) + ']'),
        st.just('[' + ', '.join(['1ep'] * (rule.max_items + 1)) + ']'),
        st.sampled_from(['80ep', 'banana', '{a: 1}', '7']),
    )


def run_name_values(rule: validate.RunName, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        return st.from_regex(r'[a-z][a-z0-9_-]{0,30}', fullmatch=True)
    return st.one_of(
        st.sampled_from(['a/b', 'has space', '-lead', '.hidden', "''", 'x' * 200, '../up', 'a\\b', '"a:b"']),
        st.text(alphabet='/ \\:*?', min_size=1, max_size=5).map(lambda s: f'"a{s}"'),
    )


def _location_junk() -> st.SearchStrategy[str]:
    return st.sampled_from(["''", '"  "', 's3://', 's3:///prefix', '[a]', '{a: 1}', '12'])


def folder_values(rule: validate.Folder, valid: bool, files: dict[str, str]) -> st.SearchStrategy[str]:
    if valid:
        return st.one_of(st.just(files['folder']), st.just('null'), st.just('s3://bucket/prefix'),
                         st.from_regex(r'[a-z]{1,8}', fullmatch=True).map(lambda s: f'{files["root"]}/new-{s}'))
    return st.one_of(st.just(files['file']), st.sampled_from(["''", '"  "', 's3://', 's3:///prefix']))


def existing_file_values(rule: validate.ExistingFile, valid: bool, files: dict[str, str]) -> st.SearchStrategy[str]:
    if valid:
        return st.sampled_from([files['file'], 'null'])
    missing = st.from_regex(r'[a-z]{1,8}(\.pt)?', fullmatch=True).map(lambda s: f'{files["root"]}/missing-{s}')
    return st.one_of(missing, st.sampled_from([files['folder'], files['junk']]), _location_junk())


def mds_values(rule: MDSRoot, valid: bool, files: dict[str, str]) -> st.SearchStrategy[str]:
    if valid:
        return st.sampled_from([files['mds'], 'null'])
    missing = st.from_regex(r'[a-z]{1,8}', fullmatch=True).map(lambda s: f'{files["root"]}/nothing-{s}')
    return st.one_of(missing, st.sampled_from([files['half'], files['folder'], files['file']]), _location_junk())


def filename_values(rule: validate.Filename, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        return st.one_of(
            st.sampled_from(['ep{epoch}-ba{batch}-rank{rank}.pt', 'ckpt-{batch}.pt', 'model.pt', 'rank{rank}.pt']),
            st.from_regex(r'[a-z]{1,8}', fullmatch=True).map(lambda s: f'"{s}-{{epoch}}.pt"'),
        )
    return st.sampled_from(["'{nope}.pt'", "'{epoch'", "'ep}'", "''", "'dir/'", "'{0}'", "'{epoch.x}.pt'", '[a.pt]'])


def micro_values(rule: validate.MicroBatch, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        return st.one_of(st.integers(1, 4096).map(str), st.just('null'))
    return st.one_of(st.integers(-100, 0).map(str), st.sampled_from(['auto', 'abc', '1.5', 'true', '[1]', "''"]))


def flag_values(rule: validate.Flag, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        return st.sampled_from(['true', 'false', 'True', 'False'])
    return st.sampled_from(['maybe', '0.5', '[]', '{}', 'null', 'banana', "'yes please'"])


def _simple_names(registry: Any) -> list[str]:
    """Registered names that need no argument (every argument a recipe gives has a default)."""
    return sorted(name for name in registry
                  if all(a.default is not REQUIRED for a in registry.yaml_arguments(name).values()))


def declared(section: str, kind: type) -> list[tuple[str, str, Any]]:
    """``(name, argument, rule)`` of every registered argument of ``section`` whose rule is a ``kind``."""
    registry = REGISTRIES[section]
    return [(name, arg, a.rule) for name in registry for arg, a in registry.yaml_arguments(name).items()
            if isinstance(a.rule, kind)]


def entries_values(rule: Entries, valid: bool, files: dict[str, str]) -> st.SearchStrategy[str]:
    registry = REGISTRIES[rule.section]
    simple = _simple_names(registry)
    if valid:
        return st.lists(st.sampled_from(simple), max_size=3, unique=True).map(
            lambda names: '{' + ', '.join(f'{n}: {{}}' for n in names) + '}')
    unknown = st.from_regex(r'[a-z_]{1,12}', fullmatch=True).filter(lambda n: n not in registry)
    missing = [f'{{{name}: {{{arg}: {files["root"]}/missing}}}}'  # a single checkpoint name is not a path to check
               for name, arg, kind in declared(rule.section, Artifact)
               if not (isinstance(kind, CheckpointNames) and not kind.many)]
    values = [number_values(bounds, False).map(lambda v, name=name, arg=arg: f'{{{name}: {{{arg}: {v}}}}}')
              for name, arg, bounds in declared(rule.section, validate.Number)]
    return st.one_of(
        *values,
        unknown.map(lambda n: f'{{{n}: {{}}}}'),
        st.sampled_from(simple).map(lambda n: f'{{{n}: {{no_such_argument: 1}}}}'),
        st.sampled_from(simple).map(lambda n: f'{{{n}: 3}}'),
        st.sampled_from(['[a, b]', '7', 'banana'] + missing),
    )


def class_values(rule: ClassIds, valid: bool) -> st.SearchStrategy[str]:
    ids = st.integers(0, 9)  # BASE trains on digits: classes 0..9
    if valid:
        return st.one_of(st.just('null'), st.lists(ids, min_size=rule.min_count, max_size=10, unique=True).map(str))
    return st.one_of(
        st.lists(ids, min_size=1, max_size=4).map(lambda xs: str([*xs, xs[0]])),  # a repeated class
        st.integers(10, 10**6).map(lambda c: f'[0, {c}]'),
        st.integers(-10**6, -1).map(lambda c: f'[{c}]'),
        st.sampled_from(['[]', '3', 'abc', '[a]', '[1.5]', '{a: 1}', '[true]']),
    )


GENERATORS: dict[type, Callable[..., st.SearchStrategy[str]]] = {
    ClassIds: lambda rule, valid, key, files: class_values(rule, valid),
    validate.Number: lambda rule, valid, key, files: number_values(rule, valid),
    validate.Choice: lambda rule, valid, key, files: choice_values(rule, valid),
    ModelName: lambda rule, valid, key, files: model_name_values(rule, valid),
    validate.TimeString: lambda rule, valid, key, files: time_values(rule, valid, key),
    validate.TimeList: lambda rule, valid, key, files: time_list_values(rule, valid, key),
    validate.RunName: lambda rule, valid, key, files: run_name_values(rule, valid),
    validate.Folder: lambda rule, valid, key, files: folder_values(rule, valid, files),
    validate.ExistingFile: lambda rule, valid, key, files: existing_file_values(rule, valid, files),
    MDSRoot: lambda rule, valid, key, files: mds_values(rule, valid, files),
    validate.Filename: lambda rule, valid, key, files: filename_values(rule, valid),
    validate.MicroBatch: lambda rule, valid, key, files: micro_values(rule, valid),
    validate.Flag: lambda rule, valid, key, files: flag_values(rule, valid),
    Entries: lambda rule, valid, key, files: entries_values(rule, valid, files),
}

KEYS = schema_keys()


def test_every_schema_key_has_a_rule_and_every_rule_a_key():
    assert len(KEYS) >= 36
    assert sorted(set(KEYS) - set(RULES)) == [], 'add a rule to the schema field of these keys'
    assert sorted(set(RULES) - set(KEYS)) == [], 'these rules name no schema key'


def test_every_kind_of_rule_has_a_generator():
    kinds = {type(rule) for rule in RULES.values()}
    assert kinds <= set(GENERATORS), f'add generators to tests/test_fuzz_config.py for {kinds - set(GENERATORS)}'


def _override(key: str, value: str) -> list[str]:
    return [*BASE, f'{key}={value}']


@pytest.mark.parametrize('key', KEYS)
def test_invalid_values_are_one_line_naming_the_key(key, files):
    rule = RULES[key]

    @SETTINGS
    @given(value=GENERATORS[type(rule)](rule, False, key, files))
    def check(value: str) -> None:
        with pytest.raises(UsageError) as info:
            load_config(None, _override(key, value))
        message = str(info.value)
        assert '\n' not in message, message
        assert key in message, (value, message)
        assert 'Traceback' not in message

    check()


@pytest.mark.parametrize('key', KEYS)
def test_valid_values_pass(key, files):
    rule = RULES[key]

    @SETTINGS
    @given(value=GENERATORS[type(rule)](rule, True, key, files))
    def check(value: str) -> None:
        try:
            load_config(None, _override(key, value), machine=False)  # the GPU's tie: where the run trains
        except UsageError as e:  # a value its own rule accepts is refused only by a tie of its key, naming it
            assert any(key in tie.keys for tie in RUN_TIES) and f'{key}=' in str(e) and '\n' not in str(e), str(e)

    check()


def test_the_issue_examples_are_refused_with_one_line():
    """The values of issue 15, each one that used to reach a traceback or a whole epoch of training."""
    cases = {
        'max_duration=banana': "max_duration='banana' is not a time string",
        'eval_interval=banana': "eval_interval='banana' is not a time string",
        'save_interval=abc': "save_interval='abc' is not a time string",
        'scheduler.t_warmup=zz': "scheduler.t_warmup='zz' is not a time string",
        'scheduler.milestones=[foo]': "scheduler.milestones[0]='foo' is not a time string",
        'load_path=/no/such/ckpt.pt': 'load_path: /no/such/ckpt.pt does not exist',
        'optimizer.lr=-1': 'optimizer.lr=-1 is out of range: use a number in [0, 1000]',
        'data.num_workers=-1': 'data.num_workers=-1 is out of range: use a whole number in [0, 256]',
        'max_duration=0ep': 'max_duration=0ep must be more than 0',
        'model.name=resnet_21': "model.name='resnet_21' is unknown (did you mean 'resnet_32'?)",
        'scheduler.milestones=[200ep]': 'scheduler.milestones[0]=200ep lies after the end of training (max_duration=160ep)',
        'optimizer.nesterov=true': None,
    }
    for override, message in cases.items():
        if message is None:
            load_config(None, [*BASE, override])  # nesterov with the default momentum 0.9 is fine
            continue
        with pytest.raises(UsageError) as info:
            load_config(None, [*BASE, override])
        assert message in str(info.value), (override, str(info.value))


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        (['optimizer.nesterov=true', 'optimizer.momentum=0'], 'optimizer.nesterov=true needs optimizer.momentum > 0'),
        (['scheduler.name=constant', 'scheduler.milestones=[999ep]'], None),  # constant reads no milestones
        (['max_duration=20ba', 'scheduler.milestones=[5ep]'], None),  # other units: placed by Composer at run time
        (['scheduler.t_warmup=1.5dur'], 'lies after the end of training'),
        (['max_duration=10ep', 'scale_schedule_ratio=2.0', 'scheduler.t_warmup=15ep'], None),  # warmup is not scaled
        (['max_duration=10ep', 'scale_schedule_ratio=0.5', 'scheduler.t_warmup=6ep'], 'scheduler.t_warmup=6ep lies after'),
        (['save_filename={nope}.pt'], "override 'save_filename={nope}.pt' is not valid YAML"),
    ],
)
def test_rules_that_tie_keys_together(overrides, message):
    if message is None:
        load_config(None, [*BASE, *overrides])
        return
    with pytest.raises(UsageError, match=message.replace('[', r'\[').replace('(', r'\(').replace('.', r'\.')):
        load_config(None, [*BASE, *overrides])


def test_values_composer_algorithms_would_fail_on_mid_training_are_refused():
    for override, message in {
        'algorithms.mixup.alpha=-1': 'algorithms.mixup.alpha=-1 is out of range: use a number in (0, 1000]',
        'algorithms.cutmix.alpha=0': 'algorithms.cutmix.alpha=0 is out of range',
        'algorithms.label_smoothing.smoothing=2': 'algorithms.label_smoothing.smoothing=2 is out of range',
    }.items():
        with pytest.raises(UsageError, match=re.escape(message)):
            load_config(None, [*BASE, override])
    load_config(None, [*BASE, 'algorithms.mixup.alpha=0.2', 'algorithms.label_smoothing.smoothing=0.1'])


def test_every_rank_gets_a_seed_numpy_accepts(monkeypatch):
    load_config(None, [*BASE, 'seed=4294967295'])
    monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(UsageError, match='seed=4294967295 gives rank 1 the seed 4294967296, above 2\\^32 - 1'):
        load_config(None, [*BASE, 'seed=4294967295'])


def test_artifact_arguments_of_the_algorithms_must_exist(tmp_path: Path):
    cases = {
        'past_run_distillation': ('run', 'algorithms.past_run_distillation.run: no past run at'),
        'checkpoint_mixup_teacher': ('run', 'algorithms.checkpoint_mixup_teacher.run: no past run at'),
        'random_teacher_distillation': ('run', 'algorithms.random_teacher_distillation.run: no past run at'),
        'grand_curriculum': ('scores', 'algorithms.grand_curriculum.scores:'),
        'adversarial_replay': ('bank', 'algorithms.adversarial_replay.bank:'),
    }
    for name, (arg, message) in cases.items():
        with pytest.raises(UsageError, match=message):
            load_config(None, [*BASE, f'algorithms.{name}.{arg}={tmp_path}/missing'])
    pool = 'algorithms.checkpoint_mixup_teacher'
    with pytest.raises(UsageError, match=f'{pool}.runs\\[0\\]: no past run at {tmp_path}/a'):
        load_config(None, [*BASE, f'{pool}.runs=[{tmp_path}/a, {tmp_path}/b]', f'{pool}.checkpoints=[ep1, ep2]'])
    with pytest.raises(UsageError, match=f'{pool}.checkpoints\\[0\\] \\({tmp_path}/a\\): no past run at {tmp_path}/a'):
        load_config(None, [*BASE, f'{pool}.checkpoints=[{tmp_path}/a:ep1, {tmp_path}/b:ep2]'])


def test_an_s3_path_that_is_missing_names_the_endpoint(s3_bucket: str, s3_server: str):
    with pytest.raises(UsageError) as info:
        load_config(None, [*BASE, f'load_path={s3_bucket}/runs/ep1.pt'])
    assert f'does not exist at {s3_server}' in str(info.value)
    with pytest.raises(UsageError, match=f'no MDS split at {s3_bucket}/data/train'):
        load_config(None, [*BASE, f'data.remote={s3_bucket}/data'])


# ----- every registered class's arguments, as the YAML under algorithms:, callbacks: and loggers: gives them


def pixel_values(rule: validate.PixelValue, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        return st.one_of(st.integers(1, 255).map(lambda k: f'{k}/255'), st.floats(0.001, 1).map(repr),
                         *([st.just('null')] if rule.optional else []))
    return st.one_of(st.sampled_from(['0', '-1/255', '2', '256/255', 'abc', '1/0', 'nan', 'inf']),
                     st.floats(1.0001, 1e6).map(repr))


def artifact_values(rule: Artifact, valid: bool, made: dict[str, str]) -> st.SearchStrategy[str]:
    missing = f'{made["root"]}/missing'
    if isinstance(rule, CheckpointNames):
        if valid:
            return st.sampled_from(['[ep1, ep2]', f'[ep1, {made["past_run"]}:ep2]'] if rule.many else ['ep1', 'latest'])
        return st.sampled_from([f'[ep1, {missing}:ep2]', 'ep1', '7'] if rule.many else ["''", '[]'])
    if isinstance(rule, PastRunFolders):
        return st.just(f'[{made["past_run"]}]') if valid else st.sampled_from([f'[{missing}]', made['past_run'], '7'])
    if isinstance(rule, TeacherCacheFolder):  # a real cache must match its teacher: tests/test_teacher_cache.py
        return st.just('null') if valid else st.sampled_from([missing, made['past_run'], "''", 's3://'])
    kind = {PastRunFolder: 'past_run', ScoresFile: 'scores', BankFolder: 'bank'}[type(rule)]
    return st.just(made[kind]) if valid else st.sampled_from([missing, "''", 's3://'])


ARGUMENT_GENERATORS: dict[type, Callable[..., st.SearchStrategy[str]]] = {
    validate.Number: lambda rule, valid, made: number_values(rule, valid),
    validate.Choice: lambda rule, valid, made: choice_values(rule, valid),
    validate.TimeString: lambda rule, valid, made: time_values(rule, valid, ''),
    validate.Flag: lambda rule, valid, made: flag_values(rule, valid),
    validate.PixelValue: lambda rule, valid, made: pixel_values(rule, valid),
    PastRunFolder: artifact_values,
    PastRunFolders: artifact_values,
    CheckpointNames: artifact_values,
    ScoresFile: artifact_values,
    BankFolder: artifact_values,
    TeacherCacheFolder: artifact_values,
}
ARGUMENTS = [(section, name, arg) for section, registry in REGISTRIES.items() for name in registry
             for arg, a in registry.yaml_arguments(name).items() if a.rule is not None]


@pytest.fixture(scope='module')
def made(artifacts: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Artifacts that exist (the generic tests' past run, scores and bank) and a folder where nothing does."""
    return {**vars(artifacts), 'root': str(tmp_path_factory.mktemp('nothing'))}


def required(section: str, name: str, made: dict[str, str]) -> list[str]:
    """Valid overrides for the arguments of ``name`` that have no default."""
    kinds = {PastRunFolder: 'past_run', ScoresFile: 'scores', BankFolder: 'bank'}
    return [f'{section}.{name}.{arg}={made[kinds[type(a.rule)]]}'
            for arg, a in REGISTRIES[section].yaml_arguments(name).items() if a.default is REQUIRED]


def test_every_argument_of_the_projects_classes_has_a_rule():
    ours = 0
    for section, registry in REGISTRIES.items():
        for name in registry:
            if isinstance(registry._entries[name], Foreign):
                continue
            for arg, argument in registry.yaml_arguments(name).items():
                ours += 1
                assert argument.rule is not None, f'{section}.{name}.{arg} declares no rule: give it Annotated[type, Rule]'
                assert type(argument.rule) in ARGUMENT_GENERATORS, f'add a generator for {type(argument.rule).__name__}'
    assert ours >= 45


@pytest.mark.parametrize(('section', 'name', 'arg'), ARGUMENTS, ids=['.'.join(a) for a in ARGUMENTS])
def test_invalid_arguments_are_one_line_naming_them(section, name, arg, made):
    rule = REGISTRIES[section].yaml_arguments(name)[arg].rule
    if type(rule) not in ARGUMENT_GENERATORS:
        pytest.skip(f'{type(rule).__name__}: a rule of the config keys, fuzzed above')
    key = f'{section}.{name}.{arg}'

    @SETTINGS
    @given(value=ARGUMENT_GENERATORS[type(rule)](rule, False, made))
    def check(value: str) -> None:
        with pytest.raises(UsageError) as info:
            load_config(None, [*BASE, f'{key}={value}'])
        message = str(info.value)
        assert '\n' not in message and key in message, (value, message)

    check()


@pytest.mark.parametrize(('section', 'name', 'arg'), ARGUMENTS, ids=['.'.join(a) for a in ARGUMENTS])
def test_valid_arguments_pass(section, name, arg, made):
    rule = REGISTRIES[section].yaml_arguments(name)[arg].rule
    if type(rule) not in ARGUMENT_GENERATORS:
        pytest.skip(f'{type(rule).__name__}: a rule of the config keys, fuzzed above')

    @SETTINGS
    @given(value=ARGUMENT_GENERATORS[type(rule)](rule, True, made))
    def check(value: str) -> None:
        load_config(None, [*BASE, *required(section, name, made), f'{section}.{name}.{arg}={value}'])

    check()
