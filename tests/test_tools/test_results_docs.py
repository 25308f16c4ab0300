"""Every table of numbers in the README and docs is what its results file renders."""
import json
import re

import pytest

from mmseg_keyprotect_experiments.results_docs import DOCUMENTS, RENDERERS, REPO, RESULTS_DIR, blocks, render


def test_every_results_block_matches_its_results_file():
    found = [(path, name, body) for path in DOCUMENTS for name, body in blocks(path)]
    assert {name for _, name, _ in found} >= {'demo-headline', 'demo-provenance'}
    for path, name, body in found:
        assert body == render(name), f'{path}: table {name} is stale (python tools/update_results_docs.py)'


@pytest.mark.parametrize('name', sorted({results for results, _ in RENDERERS.values()
                                          if (RESULTS_DIR / f'{results}.json').is_file()}))
def test_results_files_say_how_they_were_measured(name):
    report = json.loads((RESULTS_DIR / f'{name}.json').read_text())
    assert report['command'].startswith('python tools/') and re.fullmatch(r'\d{4}-\d{2}-\d{2}', report['date'])
    assert report['machine']['cores'] >= 1 and report['machine']['cpu']


def test_markdown_numbers_sit_only_in_results_blocks():
    """Outside the generated blocks, the README and results page quote no mIoU figure of their own."""
    for path in [p for p in DOCUMENTS if p.name in ('README.md', 'results.md')]:
        text = re.sub(r'<!-- results:([\w-]+) -->.*?<!-- /results:\1 -->', '', path.read_text(), flags=re.S)
        tables = [line for line in text.splitlines() if line.startswith('|') and re.search(r'\d+\.\d\d', line)]
        assert not tables, f'{path}: table rows with numbers outside results blocks: {tables[:2]}'


def test_the_update_tool_checks_without_writing():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, 'tools/update_results_docs.py', '--check'], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
