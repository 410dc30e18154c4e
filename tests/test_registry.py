"""A class's constructor is the one declaration of its interface: an argument it gains is reachable from YAML and from
``presets.preset`` with no other file changing, checked by its rule on both paths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import yaml
from composer.core import Algorithm, Event, State
from composer.loggers import Logger
from conftest import TINY

from recipes import presets
from recipes.config import load_config
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError
from recipes.core.rules import Number, OneOf
from recipes.registry import ALGORITHMS
from recipes.trainer import build_trainer


@checked
class Toy(Algorithm):
    """Does nothing; remembers its arguments and the classes the run supplied."""

    def __init__(self, strength: Annotated[float, Number(0, 1)] = 0.5,
                 num_classes: Annotated[int | None, FromRun('num_classes')] = None) -> None:
        self.strength = strength
        self.num_classes = num_classes

    def match(self, event: Event, state: State) -> bool:
        return False

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        raise AssertionError('never matched')


@checked
class ToyWithMode(Toy):
    """Toy after it gained an argument, declared in its constructor and nowhere else."""

    def __init__(self, strength: Annotated[float, Number(0, 1)] = 0.5,
                 mode: Annotated[str, OneOf('soft', 'hard')] = 'soft',
                 num_classes: Annotated[int | None, FromRun('num_classes')] = None) -> None:
        super().__init__(strength, num_classes)
        self.mode = mode


def test_the_repr_is_spelled_from_the_declaration() -> None:
    """Every argument the YAML may give, in declared order, defaults included, the run's own values left out: the
    same arguments give the same repr (Composer keeps it in every checkpoint), a subclass's its own."""
    assert repr(Toy(0.25, num_classes=10)) == 'Toy(strength=0.25)'
    assert repr(ToyWithMode(mode='hard')) == "ToyWithMode(strength=0.5, mode='hard')"
    assert Toy(0.25).state_dict() == {'repr': 'Toy(strength=0.25)'}


@pytest.fixture
def recipe(tmp_path: Path) -> str:
    """A digits recipe whose only algorithm is the toy."""
    path = tmp_path / 'toy.yaml'
    path.write_text(yaml.safe_dump({'data': {'name': 'digits'}, 'model': {'name': 'resnet_20'},
                                    'algorithms': {'toy': {'strength': 0.25}}}))
    return str(path)


def from_yaml(recipe: str, *overrides: str) -> Algorithm:
    trainer = build_trainer(load_config(recipe, [*TINY, 'save_folder=null', *overrides]))
    (algorithm,) = trainer.state.algorithms
    trainer.close()
    return algorithm


def test_a_registered_class_is_reachable_from_yaml_and_preset(recipe: str) -> None:
    with ALGORITHMS.registered('toy', Toy):
        built = from_yaml(recipe)
        assert (type(built), built.strength, built.num_classes) == (Toy, 0.25, 10)
        (preset,) = presets.preset(recipe, toy={'strength': 0.75}).algorithms
        assert (preset.strength, preset.num_classes) == (0.75, 10)
        with pytest.raises(UsageError, match=r"algorithms.toy: unknown argument 'mode'"):
            load_config(recipe, ['algorithms.toy.mode=hard'])
    assert 'toy' not in ALGORITHMS


def test_an_argument_the_class_gains_is_reachable_from_both_and_checked_by_its_rule(recipe: str) -> None:
    with ALGORITHMS.registered('toy', ToyWithMode):
        assert from_yaml(recipe, 'algorithms.toy.mode=hard').mode == 'hard'
        assert presets.preset(recipe, toy={'mode': 'hard'}).algorithms[0].mode == 'hard'
        assert presets.preset(recipe).algorithms[0].mode == 'soft'
        for refuse in (lambda: load_config(recipe, ['algorithms.toy.mode=medium']),
                       lambda: presets.preset(recipe, toy={'mode': 'medium'})):
            with pytest.raises(UsageError, match=r"algorithms.toy.mode='medium' is unknown: choose one of soft, hard"):
                refuse()
        with pytest.raises(UsageError, match=r'algorithms.toy.num_classes is set by the run \(num_classes\): remove it'):
            presets.preset(recipe, toy={'num_classes': 3})


def test_plain_python_construction_applies_the_same_rules() -> None:
    with pytest.raises(UsageError, match=r'strength=2 is out of range: use a number in \[0, 1\]'):
        Toy(strength=2)
    assert ToyWithMode(mode='hard').mode == 'hard'
