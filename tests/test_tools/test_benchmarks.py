from mmseg_keyprotect_experiments.benchmarks import benchmark_batch_encryption, benchmark_ciphers, median_ms


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


def test_training_benchmark_alternates_both_configs(tmp_path, key_file, shapes_root):
    from mmseg_keyprotect_experiments.benchmarks import benchmark_training
    options = {'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
               'train_dataloader.persistent_workers': False, 'train_dataloader.dataset.data_root': str(shapes_root)}
    result = benchmark_training('configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py', key_file,
                                iterations=1, rounds=2, cfg_options=options, work_dir=str(tmp_path))
    assert [len(v) for v in result['times'].values()] == [2, 2]
    assert abs(result['ratio'] - result['medians']['protected'] / result['medians']['unprotected']) < 1e-12


def test_batch_benchmark_times_both_paths():
    rows = benchmark_batch_encryption(batch_size=2, size=32, methods=('shuffle', 'ffx'), repeats=3)
    assert [row['method'] for row in rows] == ['shuffle', 'ffx']
    for row in rows:
        assert row['pipeline_ms'] > 0 and row['on_device_ms'] > 0 and row['device'] == 'cpu'
        assert abs(row['ratio'] - row['on_device_ms'] / row['pipeline_ms']) < 1e-12
