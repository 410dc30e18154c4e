"""Imports flow one way: model and data at the bottom, algorithms above them, run assembly above those."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOTTOM = ('recipes.model', 'recipes.data', 'recipes.storage', 'recipes.errors', 'recipes.run_files')
ASSEMBLY = ('recipes.config', 'recipes.registry', 'recipes.trainer', 'recipes.presets', 'recipes.cli', 'recipes.history')


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
        if name.startswith(packages):
            files.append((name, path))
    return files


def test_bottom_layer_imports_neither_algorithms_nor_run_assembly():
    bottom = module_files(*BOTTOM)
    assert len(bottom) >= 8
    for name, path in bottom:
        bad = {m for m in imports(path) if m.startswith(('algorithms', *ASSEMBLY))}
        assert not bad, f'{name} imports {bad}'


def test_algorithms_do_not_import_run_assembly():
    algorithms = module_files('algorithms')
    assert algorithms
    for name, path in algorithms:
        bad = {m for m in imports(path) if m.startswith(ASSEMBLY)}
        assert not bad, f'{name} imports {bad}'
