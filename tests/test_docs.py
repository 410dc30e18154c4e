"""The README, the docs and the method cards say what the code does: their generated tables match the declarations,
and every code block in them runs (Python), validates against the config schema and the registry (YAML), or names
an entry point's real options and a real make target (shell).

The Python blocks run as written, in a folder whose ``runs/`` holds what they name: a digits past run trained with
``yamls/digits/baseline.yaml`` (8 epochs on a tenth of the training split, to be quick), copies of it as ``runs/seed1`` ... ``runs/seed5``
and ``runs/digits-half-past``, its EL2N scores, the half past run's losses and a small adversarial bank.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from recipes.reference import stale_pages
from recipes.study.results_page import DATA, STUDIES

DOCS = sorted([ROOT / 'README.md', ROOT / 'bench' / 'README.md', *(ROOT / 'docs').glob('*.md'),
               *(ROOT / 'algorithms').glob('*/README.md')])
BLOCK = re.compile(r'^```(\w*)\n(.*?)^```', re.S | re.M)


def blocks(language: str) -> list[tuple[str, int, str]]:
    """``(file, block number, code)`` of every fenced block in ``language`` across the docs."""
    found = []
    for path in DOCS:
        for number, match in enumerate(m for m in BLOCK.finditer(path.read_text()) if m.group(1) == language):
            found.append((str(path.relative_to(ROOT)), number, match.group(2)))
    return found


def ids(cases: list[tuple[str, int, str]]) -> list[str]:
    return [f'{path}#{number}' for path, number, _ in cases]


def test_the_generated_tables_match_the_code() -> None:
    assert stale_pages() == [], 'run python -m recipes.reference and commit the pages it rewrites'


def test_the_transfer_table_is_the_one_the_published_tables_give() -> None:
    from recipes.study.transfer import TRANSFER_FILE, transfer_text

    assert (DATA / TRANSFER_FILE).read_text() == transfer_text(DATA), (
        'run python -m recipes.study.transfer (publishing does) and commit docs/results/transfer.csv')


def test_the_readme_is_a_ten_minute_read() -> None:
    lines = (ROOT / 'README.md').read_text().splitlines()
    assert len(lines) <= 250, len(lines)
    for path in DOCS:  # every relative link resolves
        for target in re.findall(r'\]\(([^)#:]+)(?:#[^)]*)?\)', path.read_text()):
            assert (path.parent / target).exists(), f'{path.relative_to(ROOT)} links to {target}, which does not exist'


def published_figures() -> tuple[set[str], set[str]]:
    """Every multiplier (x.xx: each accounting's M, its intervals and its median-run M) and every accuracy
    (mean ± sd%) of the tables `make study` published (docs/results/*.csv), as the results page prints them."""
    import csv

    multipliers, accuracies = set(), set()
    for table in [DATA / f'{name}.csv' for name in STUDIES if (DATA / f'{name}.csv').exists()]:  # not runs, transfer
        for row in csv.DictReader(table.open()):
            multipliers |= {f'{float(row[f"multiplier_{a}{end}"]):.2f}' for a in ('sunk', 'fresh', 'total')
                            for end in ('', '_lo', '_hi', '_adj_lo', '_adj_hi', '_median')
                            if row.get(f'multiplier_{a}{end}') not in (None, '', 'inf', 'nan')}
            accuracies.add(f'{100 * float(row["final_mean"]):.1f} ± {100 * float(row["final_std"]):.1f}%')
    return multipliers, accuracies


ACCURACY = re.compile(r'\d+\.\d ± \d+\.\d%')


def test_the_readmes_results_are_the_published_ones() -> None:
    """Every multiplier (x.xx) and every accuracy (mean ± sd%) the README's results section quotes is a published
    one: none copied by hand."""
    multipliers, accuracies = published_figures()
    readme = (ROOT / 'README.md').read_text()
    section = readme[readme.index('## What the studies show'):readme.index('## Real use')]
    quoted = set(re.findall(r'(?<![\d.])\d\.\d\d(?![\d%])', section))
    assert quoted and quoted <= multipliers, sorted(quoted - multipliers)
    quoted = set(ACCURACY.findall(section))
    assert quoted and quoted <= accuracies, sorted(quoted - accuracies)


RESULTS_SECTION = '## What it did in the studies'
CARDS = sorted(path for path in (ROOT / 'algorithms').glob('*/README.md')
               if f'\n{RESULTS_SECTION}\n' in path.read_text())


@pytest.mark.parametrize('card', CARDS, ids=[card.parent.name for card in CARDS])
def test_the_cards_results_are_the_published_ones(card: Path) -> None:
    """A method card's "What it did in the studies" quotes the published tables: each M named as one ("M sunk 1.97",
    "M 0.67") or opening a table cell ("| 1.65: beats"), each interval ("[1.81, 2.91]") and each accuracy (mean ±
    sd%). Its other numbers are settings."""
    multipliers, accuracies = published_figures()
    text = card.read_text()
    section = text[text.index(RESULTS_SECTION):]
    section = section[:section.index('\n## ', 1)]
    named = re.findall(r'\bM (?:sunk |fresh |total )?(\d\.\d\d)\b', section)
    named += [bound for pair in re.findall(r'\[(\d\.\d\d), (\d\.\d\d)\]', section) for bound in pair]
    named += re.findall(r'\btotal (\d\.\d\d)\b', section)
    named += re.findall(r'\| (?:< )?(\d\.\d\d)(?= \[|:)', section)  # a table cell's M: "| 2.18 [2.01, 2.35]: beats"
    assert named and set(named) <= multipliers, sorted(set(named) - multipliers)
    quoted = set(ACCURACY.findall(section))
    assert quoted <= accuracies, sorted(quoted - accuracies)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose runs/ holds what the docs' examples name."""
    from algorithms.adversarial_replay.bank import build_bank
    from algorithms.curriculum.scoring import score_runs
    from algorithms.past_run import PastRun
    from recipes.config import load_config
    from recipes.trainer import build_trainer

    root = tmp_path_factory.mktemp('docs')
    past = root / 'runs' / 'digits-baseline'
    trainer = build_trainer(load_config('yamls/digits/baseline.yaml', [  # 8 epochs of 2 batches: the checkpoints named
        'data.num_workers=0', 'data.subset_fraction=0.1', 'callbacks={}', f'save_folder={past}']))
    trainer.fit()
    trainer.close()
    for copy in [f'seed{seed}' for seed in range(1, 6)] + ['digits-half-past']:
        shutil.copytree(past, root / 'runs' / copy)
    score_runs([PastRun(str(past))], ['ep4', 'ep8'], 'el2n', str(root / 'runs' / 'digits-scores' / 'el2n.npy'))
    score_runs([PastRun(str(root / 'runs' / 'digits-half-past'))], ['ep8'], 'loss',
               str(root / 'runs' / 'digits-scores' / 'half-past-loss.npy'))
    build_bank(str(past), ['ep4', 'ep8'], str(root / 'runs' / 'digits-advbank'), eps=8 / 255, step_size=2 / 255,
               steps=1, fraction=0.02, batch_size=64, num_workers=0, progress=False)
    return root


PYTHON = blocks('python')


@pytest.mark.parametrize(('path', 'number', 'code'), PYTHON, ids=ids(PYTHON))
def test_python_blocks_run(path: str, number: int, code: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    exec(compile(code, f'{path}#python{number}', 'exec'), {'__name__': '__docs__'})  # noqa: S102 - the docs' own code


YAML = blocks('yaml')


@pytest.mark.parametrize(('path', 'number', 'code'), YAML, ids=ids(YAML))
def test_yaml_blocks_validate(path: str, number: int, code: str, workdir: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from recipes.config import load_config

    content = yaml.safe_load(code)
    assert isinstance(content, dict), f'{path}: a YAML block must be a mapping of config keys'
    recipe = tmp_path / 'block.yaml'
    recipe.write_text(yaml.safe_dump({'data': {'name': 'digits', 'holdout': 144}, **content}))  # the digits recipes'
    monkeypatch.chdir(workdir)
    load_config(str(recipe), ['scheduler.milestones=[]'] if 'scheduler' not in content else [])


def _parser(script: str) -> argparse.ArgumentParser:
    """The parser ``launch/{script}`` builds, captured at its parse_args call (nothing after it runs)."""

    class Captured(Exception):
        pass

    spec = importlib.util.spec_from_file_location(f'docs_{script}', ROOT / 'launch' / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: list[argparse.ArgumentParser] = []

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        found.append(self)
        raise Captured

    saved, argv = argparse.ArgumentParser.parse_args, sys.argv
    argparse.ArgumentParser.parse_args, sys.argv = capture, [script]
    try:
        module.main(*([] if 'argv' not in module.main.__code__.co_varnames else [[]]))
    except Captured:
        pass
    finally:
        argparse.ArgumentParser.parse_args, sys.argv = saved, argv
    return found[0]


def commands() -> list[tuple[str, str]]:
    """``(where, command)`` of each shell command in the docs that names an entry point or a make target."""
    found = []
    for path, number, code in blocks('bash'):
        for line in code.replace('\\\n', ' ').splitlines():
            line = line.split('  #')[0].split(' # ')[0].strip()
            line = re.sub(r'^\[?composer -n \w+\]?\s*', 'python ', line)
            line = re.sub(r'^composer (--\S+ \S+ )*-n \w+ ', 'python ', line)
            if line.startswith(('python launch/', 'make ')):
                found.append((f'{path}#{number}', line))
    return found


COMMANDS = commands()


@pytest.mark.parametrize(('where', 'command'), COMMANDS, ids=[f'{w}: {c[:60]}' for w, c in COMMANDS])
def test_shell_commands_name_real_options(where: str, command: str) -> None:
    words = shlex.split(re.sub(r'\[(--\w+)[^\]]*\]', r'\1 X', command).replace('...', ''))
    if words[0] == 'make':
        targets = re.findall(r'^([\w-]+):', (ROOT / 'Makefile').read_text(), re.M)
        assert words[1] in targets, f'{where}: make {words[1]} is not a target of the Makefile'
        return
    script = words[1].removeprefix('launch/')
    assert (ROOT / 'launch' / script).is_file(), f'{where}: launch/{script} does not exist'
    options = {o for action in _parser(script)._actions for o in action.option_strings}
    used = {w.split('=')[0] for w in words[2:] if w.startswith('--')}
    assert used <= options, f'{where}: {sorted(used - options)} are not options of launch/{script}'


def test_the_docs_have_code_to_check() -> None:
    assert len(PYTHON) >= 6 and len(YAML) >= 8 and len(COMMANDS) >= 15, (len(PYTHON), len(YAML), len(COMMANDS))
