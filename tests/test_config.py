import pytest

from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.registry import ALGORITHMS, BuildContext, build_one
from recipes.trainer import resolve


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


def test_resolve_fills_machine_and_data_values():
    cfg = resolve(load_config(None, ['data.name=digits', 'run_name=r', 'save_folder=/tmp/x/{run_name}']))
    assert (cfg.precision, cfg.model.num_classes, cfg.save_folder) == ('fp32', 10, '/tmp/x/r')
    with pytest.raises(UsageError, match='precision=amp_bf16 needs a GPU'):
        resolve(load_config(None, ['precision=amp_bf16']))
    with pytest.raises(UsageError, match='model.num_classes=100 but digits has 10'):
        resolve(load_config(None, ['data.name=digits', 'model.num_classes=100']))
    with pytest.raises(UsageError, match='autoresume=true needs run_name and save_folder'):
        resolve(load_config(None, ['autoresume=true']))


def test_algorithm_names_and_arguments_are_checked():
    ctx = BuildContext(num_classes=10, device='cpu', precision='fp32', train_dataset=None, seed=0)
    assert type(build_one('algorithms', ALGORITHMS, 'mixup', {'alpha': 0.3}, ctx)).__name__ == 'MixUp'
    with pytest.raises(UsageError, match="unknown name 'mixpu' \\(did you mean 'mixup'\\?\\)"):
        build_one('algorithms', ALGORITHMS, 'mixpu', {}, ctx)
    with pytest.raises(UsageError, match="algorithms.mixup: unknown argument 'alhpa' \\(did you mean 'alpha'\\?\\)"):
        build_one('algorithms', ALGORITHMS, 'mixup', {'alhpa': 0.3}, ctx)
