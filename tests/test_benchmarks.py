from mmseg_keyprotect.benchmarks import benchmark_ciphers, median_ms


def test_benchmark_rows_and_ratios_are_measured():
    rows = benchmark_ciphers(size=32, block_sizes=(4,), methods=('shuffle', 'ffx'), repeats=3)
    assert [(r['method'], r['block_size']) for r in rows] == [('shuffle', 4), ('ffx', 4)]
    for row in rows:
        assert row['encrypt_ms'] > 0 and row['published_ms'] > 0
        assert abs(row['speedup'] - row['published_ms'] / row['encrypt_ms']) < 1e-9


def test_median_ms_calls_the_function():
    calls = []
    assert median_ms(lambda: calls.append(1), repeats=5, warmup=2) >= 0
    assert len(calls) == 7
