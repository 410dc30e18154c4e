import json

import pytest
import torch

from recipes.config import RULES, load_config, read_yaml, to_yaml
from recipes.core.errors import UsageError
from recipes.registry import ALGORITHMS, BuildContext, build_one
from recipes.trainer import resolve
from recipes.validate import RUN_TIES, check_config, recipe_saving_to


def test_yaml_then_overrides(tmp_path):
    recipe = tmp_path / 'r.yaml'
    recipe.write_text('seed: 3\ndata:\n  name: digits\n  global_batch_size: 32\n')
    cfg = load_config(str(recipe), ['data.global_batch_size=64', 'model.name=resnet_20'])
    assert (cfg.seed, cfg.data.name, cfg.data.global_batch_size, cfg.model.name) == (3, 'digits', 64, 'resnet_20')
    assert cfg.optimizer.momentum == 0.9  # schema default


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        (['data.global_batch_sise=64'], "unknown config key 'data.global_batch_sise' (did you mean 'data.global_batch_size'?)"),
        (['sead=3'], "unknown config key 'sead' (did you mean 'seed'?)"),
        (['seed=three'], "config key 'seed': Value 'three' of type 'str' could not be converted to Integer"),
        (['data.augment=maybe'], "config key 'data.augment'"),
        (['seed'], "override 'seed' is not key=value"),
        (['run_name=???'], "config key 'run_name' needs a value"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(overrides, message):
    with pytest.raises(UsageError) as info:
        load_config(None, overrides)
    assert message in str(info.value)
    assert '\n' not in str(info.value)


def test_yaml_cannot_construct_python_objects(tmp_path):
    recipe = tmp_path / 'evil.yaml'
    recipe.write_text('seed: !!python/object/apply:os.system ["echo pwned"]\n')
    with pytest.raises(UsageError, match='is not valid YAML'):
        load_config(str(recipe))


def test_missing_recipe_file_is_named(tmp_path):
    with pytest.raises(UsageError, match='nope.yaml does not exist'):
        load_config(str(tmp_path / 'nope.yaml'))


def test_a_recipe_says_its_base_and_only_what_differs(tmp_path):
    (tmp_path / 'base').mkdir()
    (tmp_path / 'base' / 'root.yaml').write_text(
        'seed: 3\nmax_duration: 8ep\ndata: {name: digits, global_batch_size: 32, num_workers: 2}\n'
        'callbacks: {lr_monitor: {}, record_scores: {}}\n')
    (tmp_path / 'base' / 'mid.yaml').write_text('base: root.yaml\nseed: 4\ndata: {global_batch_size: 64}\n')
    child = tmp_path / 'child.yaml'  # base: relative to the child's folder, itself resolved through its own base
    child.write_text('base: base/mid.yaml\nunset: [callbacks.record_scores]\nrun_name: c\n'
                     'algorithms: {mixup: {alpha: 0.3}}\n')
    assert read_yaml(str(child)) == {
        'seed': 4, 'max_duration': '8ep', 'data': {'name': 'digits', 'global_batch_size': 64, 'num_workers': 2},
        'callbacks': {'lr_monitor': {}}, 'run_name': 'c', 'algorithms': {'mixup': {'alpha': 0.3}}}
    cfg = load_config(str(child), ['data.num_workers=0', 'scheduler.milestones=[4ep]'])
    assert (cfg.seed, cfg.data.global_batch_size, cfg.data.num_workers, list(cfg.callbacks)) == (4, 64, 0, ['lr_monitor'])
    assert 'base' not in to_yaml(cfg) and 'unset' not in to_yaml(cfg)  # the run's config.yaml: fully resolved


@pytest.mark.parametrize(
    ('files', 'message'),
    [
        ({'a.yaml': 'base: b.yaml\n', 'b.yaml': 'base: a.yaml\n'},
         '{d}/a.yaml: the base: chain is a cycle ({d}/a.yaml -> {d}/b.yaml -> {d}/a.yaml): a recipe cannot be its '
         'own base'),
        ({'a.yaml': 'base: a.yaml\n'},
         '{d}/a.yaml: the base: chain is a cycle ({d}/a.yaml -> {d}/a.yaml): a recipe cannot be its own base'),
        ({'a.yaml': 'base: gone.yaml\n'},
         '{d}/a.yaml: base {d}/gone.yaml does not exist: give base: a YAML path relative to the folder of {d}/a.yaml'),
        ({'a.yaml': 'base: [b.yaml]\n'},
         "{d}/a.yaml: base: must be a YAML path relative to its folder, such as baseline.yaml, not ['b.yaml']"),
        ({'a.yaml': 'base: b.yaml\nunset: [callbacks.lr_monitor]\n', 'b.yaml': 'seed: 1\n'},
         "{d}/a.yaml: unset: 'callbacks.lr_monitor' is not a key of {d}/b.yaml: list only keys its base sets"),
        ({'a.yaml': 'unset: [seed]\n'}, '{d}/a.yaml: unset: drops keys of a base, and the recipe has no base:'),
    ],
)
def test_a_bad_base_is_one_line(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UsageError) as info:
        load_config(str(tmp_path / 'a.yaml'))
    assert str(info.value) == message.format(d=tmp_path)


def test_converted_recipes_resolve_to_their_bases_keys():
    """A recipe written as ``base:`` plus what differs resolves to the keys its base chain sets."""
    kd = read_yaml('yamls/digits/kd.yaml')
    baseline = read_yaml('yamls/digits/baseline.yaml')
    assert {k: kd[k] for k in ('model', 'data', 'optimizer', 'scheduler', 'max_duration', 'seed')} == \
        {k: baseline[k] for k in ('model', 'data', 'optimizer', 'scheduler', 'max_duration', 'seed')}
    assert (kd['run_name'], kd['save_folder'], kd['callbacks']) == ('digits-kd', 'runs/digits-kd', {'lr_monitor': {}})


def test_resolve_fills_machine_and_data_values():
    cfg = resolve(load_config(None, ['data.name=digits', 'run_name=r', 'save_folder=/tmp/x/{run_name}']))
    assert (cfg.precision, cfg.model.num_classes, cfg.save_folder) == ('fp32', 10, '/tmp/x/r')


@pytest.mark.skipif(torch.cuda.is_available(), reason='the precision tie refuses amp_bf16 only without a GPU')
def test_the_ties_refuse_when_the_config_is_loaded():
    """What resolve used to refuse, load_config refuses now: a sweep's check sees it before its first run."""
    with pytest.raises(UsageError, match='^precision=amp_bf16 needs a GPU: on the CPU Composer runs only precision=fp32$'):
        load_config(None, ['precision=amp_bf16'])
    with pytest.raises(UsageError, match='^model.num_classes=100 but digits has 10 classes$'):
        load_config(None, ['data.name=digits', 'model.num_classes=100'])
    with pytest.raises(UsageError, match='^autoresume=true needs run_name and save_folder: set both so the run can '
                                         'find its checkpoints$'):
        load_config(None, ['autoresume=true'])
    with pytest.raises(UsageError, match='^save_folder=/x/{run_name} uses {run_name}: set run_name$'):
        load_config(None, ['save_folder=/x/{run_name}'])
    # a check of runs other machines train (a Ray sweep's head) leaves the machine's tie out
    assert load_config(None, ['precision=amp_bf16'], machine=False).precision == 'amp_bf16'
    cfg = load_config(None, ['scheduler.milestones=[]'])
    cfg.precision = 'amp_bf16'
    check_config(cfg, RULES, machine=False)
    with pytest.raises(UsageError, match='^precision=amp_bf16 needs a GPU'):
        check_config(cfg, RULES)


def test_every_tie_names_keys_of_the_schema_and_says_what_it_requires():
    sections = {'algorithms', 'callbacks', 'loggers'}
    assert len(RUN_TIES) >= 12
    for tie in RUN_TIES:
        assert set(tie.keys) <= set(RULES) | sections, (tie.check.__name__, tie.keys)
        assert tie.doc and '\n' not in tie.doc, tie.check.__name__


def test_algorithm_names_and_arguments_are_checked():
    ctx = BuildContext(num_classes=10, device='cpu', precision='fp32', train_dataset=None, seed=0)
    assert type(build_one('algorithms', ALGORITHMS, 'mixup', {'alpha': 0.3}, ctx)).__name__ == 'MixUp'
    with pytest.raises(UsageError, match="unknown name 'mixpu' \\(did you mean 'mixup'\\?\\)"):
        build_one('algorithms', ALGORITHMS, 'mixpu', {}, ctx)
    with pytest.raises(UsageError, match="algorithms.mixup: unknown argument 'alhpa' \\(did you mean 'alpha'\\?\\)"):
        build_one('algorithms', ALGORITHMS, 'mixup', {'alhpa': 0.3}, ctx)


# ----- the one boundary of the entry points


def _exit_of(main, capsys, argv=()):
    from recipes.cli import run_cli

    with pytest.raises(SystemExit) as info:
        run_cli(main, list(argv))
    return info.value.code, capsys.readouterr().err


def test_the_boundary_turns_the_users_errors_into_one_line(capsys, tmp_path):
    from botocore.exceptions import NoCredentialsError

    def missing(argv):
        open(tmp_path / 'nope.yaml')

    code, err = _exit_of(missing, capsys)
    assert (code, err) == (2, f'error: {tmp_path}/nope.yaml: No such file or directory: check the path\n')

    def full_disk(argv):
        raise OSError(28, 'No space left on device', str(tmp_path / 'ckpt.pt'))

    code, err = _exit_of(full_disk, capsys)
    assert (code, err) == (2, f'error: {tmp_path}/ckpt.pt: No space left on device: free disk space or write elsewhere\n')

    def no_credentials(argv):
        raise NoCredentialsError()

    code, err = _exit_of(no_credentials, capsys)
    assert code == 2 and err.startswith('error: S3 at ') and 'set AWS_ACCESS_KEY_ID' in err and err.count('\n') == 1


def test_genuine_bugs_and_debug_keep_the_traceback(capsys):
    def bug(argv):
        return {}['missing']

    def user(argv):
        raise UsageError('seed=-1 is out of range')

    from recipes.cli import run_cli

    with pytest.raises(KeyError):
        run_cli(bug, [])
    with pytest.raises(UsageError):
        run_cli(user, ['--debug'])
    assert _exit_of(user, capsys) == (2, 'error: seed=-1 is out of range\n')


def test_argument_mistakes_are_one_line():
    from recipes.cli import ArgumentParser

    parser = ArgumentParser(prog='score.py')
    parser.add_argument('--steps', type=int, default=1)
    with pytest.raises(UsageError, match=r"^score.py: argument --steps: invalid int value: 'many' \(see score.py --help\)$"):
        parser.parse_args(['--steps', 'many'])
    with pytest.raises(UsageError, match='unrecognized arguments: --stesp'):
        parser.parse_args(['--stesp', '3'])


# ----- damaged artifacts: one line naming the file, nothing overwritten


@pytest.fixture
def mds_root(tmp_path):
    import numpy as np

    from recipes.core.data.mds import write_split

    images = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    for split in ('train', 'test'):
        write_split(str(tmp_path / 'data'), split, images, np.arange(6) % 3, progress=False)
    return tmp_path / 'data'


def _refused(root, message):
    before = {p: p.read_bytes() for p in root.rglob('*') if p.is_file()}
    with pytest.raises(UsageError) as info:
        load_config(None, ['data.name=digits', f'data.remote={root}'])
    assert message in str(info.value) and '\n' not in str(info.value)
    assert {p: p.read_bytes() for p in root.rglob('*') if p.is_file()} == before  # nothing overwritten


def test_a_truncated_shard_is_named(mds_root):
    load_config(None, ['data.name=digits', f'data.remote={mds_root}'])
    shard = mds_root / 'train' / 'shard.00000.mds'
    shard.write_bytes(shard.read_bytes()[:1000])
    _refused(mds_root, f'{shard} has 1000 bytes but {mds_root}/train/index.json says')


def test_a_tampered_index_is_named(mds_root):
    index = mds_root / 'test' / 'index.json'
    body = json.loads(index.read_text())
    body['shards'][0]['samples'] = 7
    body['shards'][0]['raw_data']['bytes'] = (mds_root / 'test' / 'shard.00000.mds').stat().st_size
    index.write_text(json.dumps(body))
    _refused(mds_root, 'does not hold the 7 samples')
    index.write_text('{"shards": [')
    _refused(mds_root, f'{index} is not an MDS index (JSONDecodeError')


def test_score_metadata_that_disagrees_with_its_scores_is_named(tmp_path):
    import numpy as np

    from algorithms.curriculum.scores import read_scores, write_scores

    uri = str(tmp_path / 'el2n.npy')
    write_scores(uri, np.ones(5, dtype=np.float32), {'method': 'el2n', 'dataset': {'size': 5}})
    meta = tmp_path / 'el2n.json'
    meta.write_text(json.dumps({'method': 'el2n', 'dataset': {'size': 6}}))
    with pytest.raises(UsageError, match=f'{meta} says 6 examples but {tmp_path}/el2n.npy holds 5'):
        read_scores(uri)
    assert json.loads(meta.read_text())['dataset']['size'] == 6


def test_a_bank_whose_metadata_disagrees_with_its_data_is_named(tmp_path):
    import torch

    from algorithms.adversarial_replay.bank import AdversarialBank, BankPart, finish_bank

    out = str(tmp_path / 'bank')
    with BankPart(out, 0, (3, 32, 32)) as part:
        part.write(torch.rand(4, 3, 32, 32), torch.arange(4), torch.arange(4), 0)
    finish_bank(out, 1, {'num_classes': 10})
    meta = tmp_path / 'bank' / 'bank.json'
    body = json.loads(meta.read_text())
    meta.write_text(json.dumps({**body, 'size': 5}))
    with pytest.raises(UsageError, match='holds 4 examples but bank.json says 5'):
        AdversarialBank(out)
    shard = next((tmp_path / 'bank').rglob('*.mds'))
    shard.write_bytes(shard.read_bytes()[:100])
    meta.write_text(json.dumps(body))
    with pytest.raises(UsageError, match=f'{shard} has 100 bytes'):
        AdversarialBank(out)


def test_a_run_folder_without_its_config_is_named(tmp_path):
    (tmp_path / 'ep1-ba8-rank0.pt').write_bytes(b'x')
    with pytest.raises(UsageError, match=f'algorithms.past_run_distillation.run: no past run at {tmp_path} \\(config.yaml is missing'):
        load_config(None, ['data.name=digits', f'algorithms.past_run_distillation.run={tmp_path}'])
    assert [p.name for p in tmp_path.iterdir()] == ['ep1-ba8-rank0.pt']


def test_a_missing_past_run_is_answered_with_the_recipe_that_trains_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing under runs/ here
    with pytest.raises(UsageError, match=(
            r'algorithms.warm_start.run: no past run at runs/digits-half-past \(config.yaml is missing\): train it with '
            r'`python launch/train.py yamls/scenarios/digits_new_data_past.yaml`$')):
        load_config(None, ['data.name=digits', 'algorithms.warm_start.run=runs/digits-half-past'])
    # A folder no recipe saves to keeps the general hint.
    with pytest.raises(UsageError, match=r'no past run at runs/elsewhere .* train one with `python launch/train.py yamls/digits/baseline.yaml`'):
        load_config(None, ['data.name=digits', 'algorithms.warm_start.run=runs/elsewhere'])
    assert recipe_saving_to('runs/digits-baseline/') == 'yamls/digits/baseline.yaml'
    assert recipe_saving_to(str(tmp_path / 'runs' / 'digits-baseline')) == 'yamls/digits/baseline.yaml'
    assert recipe_saving_to('runs/elsewhere') is None
