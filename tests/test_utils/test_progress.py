from mmseg_keyprotect.utils.progress import Progress


def test_progress_lines_say_how_far_and_how_long_is_left(monkeypatch):
    clock = iter([0.0, 10.0, 20.0, 25.0])
    monkeypatch.setattr('mmseg_keyprotect.utils.progress.time.perf_counter', lambda: next(clock))
    lines = []
    progress = Progress('climb', 4, lines.append, every=5.0)  # starts at 0 s
    progress.update(1, 'oracle -0.5')  # at 10 s: 10 s a step, 3 steps left
    progress.update(2)  # at 20 s
    progress.update(3)  # at 25 s: 5 s after the last line, which is not yet `every` apart... exactly 5: shown
    assert lines == ['climb: 1/4, oracle -0.5, about 30 s left', 'climb: 2/4, about 20 s left',
                     'climb: 3/4, about 8 s left']


def test_progress_stays_quiet_between_lines_unless_forced():
    lines = []
    progress = Progress('wrong keys', 100, lines.append, every=3600.0)
    progress.update(10)
    progress.update(100)
    progress.update(20, force=True)
    assert len(lines) == 1 and lines[0].startswith('wrong keys: 20/100, about ')
