"""Imports flow one way: recipes.core at the bottom, algorithms above it, run assembly above those, the study and the
docs generator (recipes.reference) above them, the entry points (launch/) and benchmarks (bench/) on top; and no
module imports itself through others.

Imports are read from the source (every ``import`` and ``from ... import``, at the top of a file or inside a function
or an ``if TYPE_CHECKING:`` block) and resolved to module names: a relative import against the file's package, and
``from package import module`` to ``package.module`` (``from recipes import study`` is ``recipes.study``).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ('recipes.core',)
ALGORITHMS = ('algorithms',)
ASSEMBLY = ('recipes.config', 'recipes.registry', 'recipes.trainer', 'recipes.presets', 'recipes.cli',
            'recipes.validate', 'recipes.tracking', 'recipes.model', 'recipes.data')
STUDY = ('recipes.study',)
DOCS = ('recipes.reference',)  # generates docs/ from every declaration: nothing it documents imports it
ENTRY_POINTS = ('launch', 'bench')  # script folders: a script's module name is its path, launch.sweep
SOURCES = ('recipes', 'algorithms', *ENTRY_POINTS, 'tests')  # the project's .py files; tests/ as top-level modules


def module_name(path: Path) -> str:
    """``recipes.study.spec`` for recipes/study/spec.py, ``recipes.study`` for its __init__.py; ``conftest`` for a
    file of tests/ (pytest puts tests/ on the path)."""
    parts = path.relative_to(ROOT).with_suffix('').parts
    parts = parts[1:] if parts[0] == 'tests' else parts
    return '.'.join(parts).removesuffix('.__init__')


def all_modules() -> dict[str, Path]:
    """Every project module by name."""
    return {module_name(p): p for folder in SOURCES for p in sorted((ROOT / folder).glob('**/*.py'))}


MODULES = all_modules()


def imports_in(source: str, name: str, package: str) -> set[str]:
    """The modules the source of module ``name`` (in ``package``) imports, resolved: ``from a.b import c`` is ``a.b.c``
    where that is a project module, else ``a.b``; ``from . import x`` and ``from .m import x`` are read against
    ``package``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                anchor = '.'.join(parts[: len(parts) - node.level + 1])
                base = f'{anchor}.{base}' if base else anchor
            for alias in node.names:
                names.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in MODULES else base)
    return names


def imports(path: Path) -> set[str]:
    """The modules the file at ``path`` imports (:func:`imports_in`)."""
    name = module_name(path)
    return imports_in(path.read_text(), name, name if path.name == '__init__.py' else name.rpartition('.')[0])


def module_files(*packages: str) -> list[tuple[str, Path]]:
    """``(name, path)`` of the modules in ``packages`` (a package and everything below it)."""
    return [(name, path) for name, path in sorted(MODULES.items())
            if name in packages or name.startswith(tuple(f'{p}.' for p in packages))]


def _check(layer: tuple[str, ...], forbidden: tuple[str, ...], at_least: int) -> None:
    files = module_files(*layer)
    assert len(files) >= at_least, files
    for name, path in files:
        bad = {m for m in imports(path) if m in forbidden or m.startswith(tuple(f'{f}.' for f in forbidden))}
        assert not bad, f'{name} imports {bad}'


def test_core_imports_neither_algorithms_nor_run_assembly_nor_the_study():
    _check(CORE, (*ALGORITHMS, *ASSEMBLY, *STUDY, *DOCS, *ENTRY_POINTS), at_least=12)


def test_algorithms_import_only_the_core_below_them():
    _check(ALGORITHMS, (*ASSEMBLY, *STUDY, *DOCS, *ENTRY_POINTS), at_least=12)


def test_run_assembly_does_not_import_the_study():
    _check(ASSEMBLY, (*STUDY, *DOCS, *ENTRY_POINTS), at_least=5)


def test_nothing_in_recipes_or_algorithms_imports_the_entry_points_or_benchmarks():
    _check(('recipes', *ALGORITHMS), ENTRY_POINTS, at_least=40)
    _check(STUDY, DOCS, at_least=8)
    assert len(module_files(*ENTRY_POINTS)) >= 10


def test_imports_are_resolved_to_modules():
    def resolved(source: str) -> set[str]:
        return imports_in(source, 'recipes.study.x', 'recipes.study')

    assert resolved('from recipes import study') == {'recipes.study'}
    assert resolved('from recipes.core import storage, errors') == {'recipes.core.storage', 'recipes.core.errors'}
    assert resolved('from recipes.core.errors import UsageError') == {'recipes.core.errors'}
    assert resolved('def f():\n    from . import chain\n') == {'recipes.study.chain'}
    assert resolved('from ..core import storage') == {'recipes.core.storage'}
    assert resolved('from .. import config') == {'recipes.config'}
    assert resolved('from .chain import Step') == {'recipes.study.chain'}
    assert resolved('import numpy as np') == {'numpy'}
    assert imports_in('from . import x', 'recipes.study', 'recipes.study') == {'recipes.study'}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    return {name: {m for m in imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph``, or None (depth-first search, in name order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_the_cycle():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']


def test_no_import_cycle_between_project_modules():
    graph = import_graph()
    assert len(graph) >= 80 and 'recipes.study.spec' in graph and 'launch.sweep' in graph
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_every_module_belongs_to_a_layer():
    layers = (*CORE, *ALGORITHMS, *ASSEMBLY, *STUDY, *DOCS, *ENTRY_POINTS)
    strays = [name for name, _ in module_files('recipes', 'algorithms', *ENTRY_POINTS)
              if name not in ('recipes', 'algorithms') and not name.startswith(layers)]
    assert not strays, f'modules outside every layer: {strays}; add them to a layer in tests/test_layers.py'


def test_each_reuse_idea_is_a_package_with_its_method_card():
    for idea in ('distillation', 'curriculum', 'adversarial_replay'):
        assert (ROOT / 'algorithms' / idea / '__init__.py').is_file(), idea
        assert (ROOT / 'algorithms' / idea / 'README.md').is_file(), f'algorithms/{idea}/README.md is missing'


def _code_strings(source: str) -> list[tuple[int, str]]:
    """The string constants of a module's code (f-string parts included), its docstrings left out."""
    tree = ast.parse(source)
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def test_the_bottom_layers_name_no_entry_point_and_no_recipe():
    """recipes/core and algorithms know no script of launch/ and no recipe of yamls/: the messages that tell the user
    what to run read it from recipes.core.errors.PLACES, which the package above them fills (recipes/__init__.py)."""
    found = [f'{name}:{line}: {text[:60]!r}' for name, path in module_files(*CORE, *ALGORITHMS)
             for line, text in _code_strings(path.read_text()) if 'launch/' in text or 'yamls' in text]
    assert not found, found
    from recipes.core.artifacts import MAKE_PAST_RUN

    assert MAKE_PAST_RUN == 'train one with `python launch/train.py yamls/digits/baseline.yaml` (or yamls/baseline.yaml)'
