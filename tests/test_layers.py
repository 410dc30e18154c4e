"""Imports flow one way: recipes.core at the bottom, algorithms above it, run assembly above those, the study on top."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ('recipes.core',)
ALGORITHMS = ('algorithms',)
ASSEMBLY = ('recipes.config', 'recipes.registry', 'recipes.trainer', 'recipes.presets', 'recipes.cli',
            'recipes.validate', 'recipes.arguments', 'recipes.tracking', 'recipes.model', 'recipes.data')
STUDY = ('recipes.study',)


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def module_files(*packages: str) -> list[tuple[str, Path]]:
    files = []
    for path in sorted([*ROOT.glob('recipes/**/*.py'), *ROOT.glob('algorithms/**/*.py')]):
        name = '.'.join(path.relative_to(ROOT).with_suffix('').parts).removesuffix('.__init__')
        if name == packages[0] or name.startswith(tuple(f'{p}.' for p in packages) + packages):
            files.append((name, path))
    return files


def _check(layer: tuple[str, ...], forbidden: tuple[str, ...], at_least: int) -> None:
    files = module_files(*layer)
    assert len(files) >= at_least, files
    for name, path in files:
        bad = {m for m in imports(path) if m.startswith(forbidden)}
        assert not bad, f'{name} imports {bad}'


def test_core_imports_neither_algorithms_nor_run_assembly_nor_the_study():
    _check(CORE, (*ALGORITHMS, *ASSEMBLY, *STUDY), at_least=12)


def test_algorithms_import_only_the_core_below_them():
    _check(ALGORITHMS, (*ASSEMBLY, *STUDY), at_least=12)


def test_run_assembly_does_not_import_the_study():
    _check(ASSEMBLY, STUDY, at_least=5)


def test_every_module_belongs_to_a_layer():
    layers = (*CORE, *ALGORITHMS, *ASSEMBLY, *STUDY)
    strays = [name for name, _ in module_files('recipes', 'algorithms')
              if name not in ('recipes', 'algorithms') and not name.startswith(layers)]
    assert not strays, f'modules outside every layer: {strays}; add them to a layer in tests/test_layers.py'


def test_each_reuse_idea_is_a_package_with_its_method_card():
    for idea in ('distillation', 'curriculum', 'adversarial_replay'):
        assert (ROOT / 'algorithms' / idea / '__init__.py').is_file(), idea
        assert (ROOT / 'algorithms' / idea / 'README.md').is_file(), f'algorithms/{idea}/README.md is missing'
