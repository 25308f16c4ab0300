"""The stack's notices that no user can act on stay out of the output, unless Python is asked for warnings."""
import subprocess
import sys

SCRIPT = 'import mmseg_keyprotect; from mmseg.models.builder import build_loss; ' \
         "build_loss(dict(type='CrossEntropyLoss'))"


def run(*options):
    return subprocess.run([sys.executable, *options, '-c', SCRIPT], capture_output=True, text=True, timeout=300)


def test_the_stacks_notices_are_filtered():
    result = run()
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'Warning' not in result.stderr, result.stderr


def test_warning_options_of_the_process_see_everything():
    result = run('-W', 'default')
    assert result.returncode == 0, result.stderr[-2000:]
    for notice in ('``build_loss`` would be deprecated', '``avg_non_ignore``'):
        assert notice in result.stderr
