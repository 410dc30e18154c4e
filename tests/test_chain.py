"""make demo and make study: a chain of commands that skips the steps whose output exists and stops at a failure."""

import json

from recipes.study.chain import Step, finished, run_chain


def write(path: str) -> list[str]:
    return ['-c', f'open({path!r}, "a").write("ran\\n")']


def test_a_chain_skips_what_is_done_and_stops_at_the_first_failure(tmp_path, capsys):
    (tmp_path / 'done.txt').write_text('ran\n')
    (tmp_path / 'past').mkdir()
    (tmp_path / 'past' / 'metrics.json').write_text(json.dumps({'eval': [], 'finished': True}))
    (tmp_path / 'died').mkdir()
    (tmp_path / 'died' / 'metrics.json').write_text(json.dumps({'eval': [], 'finished': False}))
    steps = [
        Step('a file that exists', write('done.txt'), 'done.txt'),
        Step('a finished run', write('past.txt'), 'past'),
        Step('a run that died', write('died.txt'), 'died'),
        Step('no output to check', write('always.txt')),
        Step('a failure', ['-c', 'raise SystemExit(3)']),
        Step('never reached', write('after.txt')),
    ]
    assert [finished(s, tmp_path) for s in steps] == [True, True, False, False, False, False]
    assert run_chain(steps, tmp_path, 'the test') == 3
    assert (tmp_path / 'done.txt').read_text() == 'ran\n'  # skipped, not run again
    assert not (tmp_path / 'past.txt').exists() and not (tmp_path / 'after.txt').exists()
    assert (tmp_path / 'died.txt').read_text() == (tmp_path / 'always.txt').read_text() == 'ran\n'
    out = capsys.readouterr()
    assert out.out.count('already done, skipped') == 2
    assert 'step failed with exit status 3: a failure; run the test again to continue' in out.err
