"""The protection report on a protected model trained for a few iterations."""
import base64
import json
from pathlib import Path

import pytest
import torch

from mmseg_keyprotect.apis import build_test_runner, build_train_runner
from mmseg_keyprotect.attacks.protection_report import evaluate_protection, resolve_sizes
from mmseg_keyprotect.attacks.report_rendering import write_report_files
from mmseg_keyprotect.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PROTECTED = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py'


def tiny_options(data_root, iterations=4):
    options = {'train_cfg.max_iters': iterations, 'train_cfg.val_interval': iterations,
               'default_hooks.checkpoint.interval': iterations, 'train_dataloader.batch_size': 2}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False,
                        f'{loader}.dataset.data_root': str(data_root)})
    return options


@pytest.fixture(scope='module')
def report(tmp_path_factory, shapes_root):
    from mmseg_keyprotect.crypto.key_files import write_random_key
    root = tmp_path_factory.mktemp('protection')
    key_file = str(root / 'model.key')
    write_random_key(key_file)
    build_train_runner(str(PROTECTED), key_file=key_file, work_dir=str(root / 'work'),
                       cfg_options=tiny_options(shapes_root)).train()
    checkpoint = str(root / 'work' / 'iter_4.pth')
    # The config's data root is relative; the report reads the data where the test config says.
    config = root / 'protected.py'
    config.write_text(f"_base_ = '{PROTECTED}'\n" + ''.join(
        f"{loader} = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root='{shapes_root}'))\n"
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')))
    result = evaluate_protection(str(config), checkpoint, key_file, out_dir=root / 'report', num_wrong_keys=3,
                                 attack_sizes=['2', '25%'], attack_iterations=2, attack_draws=1,
                                 unlabelled_counts=[2], climb_budget=6, relaxed_steps=2, unlabelled_draws=1)
    return dict(result=result, root=root, key_file=key_file, checkpoint=checkpoint, config=str(config),
                data_root=shapes_root)


def test_report_files_are_written(report, tmp_path):
    out = report['root'] / 'report'
    written = json.loads((out / 'protection_report.json').read_text())
    assert written['authorized_mIoU'] == report['result']['authorized_mIoU']
    write_report_files(written, out)  # what tools/evaluate_protection.py adds for readers
    markdown = (out / 'protection_report.md').read_text()
    for heading in ('## Wrong keys (3 random keys)', '## Near keys', '## Known plaintext', '## Ciphertext only',
                    '## Weights and unlabelled images (no labels)', '## Learning attacks'):
        assert heading in markdown
    assert 'One draw of k labelled images' in markdown  # and how to get several
    assert {Path(f).name for f in written['figures']} == {'wrong_keys.png', 'near_keys.png', 'learning_attacks.png'}
    assert all(path.is_file() for path in write_report_files(written, tmp_path / 'new' / 'dir'))


def test_authorized_miou_is_what_tools_test_reports(report):
    runner = build_test_runner(report['config'], report['checkpoint'], key_file=report['key_file'],
                               work_dir=str(report['root'] / 'test'))
    metrics = runner.test()
    assert report['result']['authorized_mIoU'] == pytest.approx(metrics['mIoU'], abs=0.006)
    assert report['result']['plain_mIoU'] == pytest.approx(metrics['plain/mIoU'], abs=0.006)


def test_known_answers_inside_the_report(report):
    result = report['result']
    one_pair = result['known_plaintext'][0]
    assert one_pair['pairs'] == 1 and one_pair['agreement']['positions'] == 1.0
    assert one_pair['mIoU'] == pytest.approx(result['authorized_mIoU'])  # the exact key segments as the key does
    fractions = dict(result['near_keys']['sources'])
    assert fractions[1.0] == pytest.approx(result['authorized_mIoU'])
    assert result['wrong_keys']['summary']['count'] == 3
    attacks = {(row['attack'], row['k']): row for row in result['learning_attacks']}
    assert set(attacks) == {(attack, k) for attack in ('adapter', 'fine_tune', 'scratch') for k in (2, 4)}
    # Adapter and fine-tuning start from the stolen model on plain images.
    for attack in ('adapter', 'fine_tune'):
        assert attacks[attack, 2]['curve'][0][1] == pytest.approx(result['plain_mIoU'])
    assert attacks['adapter', 2]['trained_parameters'] == 48 * 48 + 48
    assert 0 <= result['chance']['majority_class'] <= 100


def test_no_key_material_in_the_report(report):
    material = json.loads(Path(report['key_file']).read_text())['material']
    for path in (report['root'] / 'report').iterdir():
        content = path.read_bytes()
        assert material.encode() not in content and base64.b64decode(material) not in content


def test_attack_sizes_are_checked():
    assert resolve_sizes(['10', '100', '10%'], 400) == {'10': 10, '100': 100, '10%': 40}
    assert resolve_sizes(['1000'], 400) == {'1000': 400}
    with pytest.raises(ConfigError, match="attack size 'ten'"):
        resolve_sizes(['ten'], 400)
    with pytest.raises(ConfigError, match='at least 1'):
        resolve_sizes(['0%'], 400)


def test_report_values_are_those_of_each_condition(tmp_path, key_file):
    """With the key oracle as the protected model, the report's numbers are known in advance."""
    from key_oracle import MEAN, STD, expected_miou, write_oracle_dataset
    from mmseg.registry import MODELS

    from mmseg_keyprotect.checkpoint import protection_record
    from mmseg_keyprotect.crypto import load_key
    from mmseg_keyprotect.datasets import CLASSES, PALETTE
    data = write_oracle_dataset(tmp_path / 'data', num_train=4, num_val=4, size=128)
    config = tmp_path / 'oracle.py'
    config.write_text(f'''_base_ = [{str(PROTECTED)!r}]
custom_imports = dict(imports=['mmseg_keyprotect', 'key_oracle'], allow_failed_imports=False)
model = dict(_delete_=True, type='KeyOracleSegmentor', key_file={key_file!r},
             data_preprocessor=dict(type='SegDataPreProcessor', mean={MEAN}, std={STD}, bgr_to_rgb=True))
''')
    truth = load_key(key_file).cipher('shuffle', 4)
    model = MODELS.build(dict(type='KeyOracleSegmentor', key_file=key_file))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(keyprotect=protection_record('shuffle', truth),
                                                             dataset_meta=dict(classes=CLASSES, palette=PALETTE))),
               tmp_path / 'oracle.pth')
    options = {f'{split}_dataloader.dataset.data_root': str(data) for split in ('train', 'test')}
    report = evaluate_protection(str(config), str(tmp_path / 'oracle.pth'), key_file, tmp_path / 'report',
                                 num_wrong_keys=3, attack_sizes=[], unlabelled_counts=[], cfg_options=options)
    assert report['authorized_mIoU'] == pytest.approx(100.0)
    assert report['plain_mIoU'] == pytest.approx(expected_miou(data, truth, None), abs=0.006)
    assert report['wrong_keys']['summary']['max'] < 50
    curve = dict(report['near_keys']['sources'])
    assert curve[1.0] == pytest.approx(100.0) and curve[0.0] < 50
    assert report['known_plaintext'][0]['mIoU'] == pytest.approx(100.0)


def test_learning_attacks_are_averaged_over_draws_of_other_images(report, monkeypatch):
    """Each draw trains on its own labelled images; the row's mIoU is the mean of the draws' final values."""
    from mmseg_keyprotect.attacks import protection_report
    evaluation = protection_report.ProtectionEvaluation(report['config'], report['checkpoint'], report['key_file'])
    trained_on = []

    def fake_attack(attack, model, model_cfg, optim_wrapper, subset, *args, **kwargs):
        trained_on.append(tuple(id(image) for image in subset.images))
        return dict(attack=attack, k=len(subset.images), curve=[[0, 5.0], [2, 10.0 * len(trained_on)]])

    monkeypatch.setattr(protection_report, 'train_attack', fake_attack)
    [row] = evaluation.learning_attacks(['3'], iterations=2, attacks=['adapter'], draws=3)
    assert row['draws'] == [10.0, 20.0, 30.0] and row['mIoU'] == pytest.approx(20.0)
    assert row['curve'] == [[0, 5.0], [2, 10.0]] and row['size'] == '3'
    assert len(set(trained_on)) == 3 and all(len(images) == 3 for images in trained_on)
    with pytest.raises(ConfigError, match='attack draws must be at least 1, got 0'):
        evaluation.learning_attacks(['3'], draws=0)


def test_the_published_model_is_a_folded_copy_that_predicts_the_same(report):
    """as_published: the statistics folded into the weights on a copy; the evaluation's own model keeps them, and
    both score the same with the key."""
    from mmseg_keyprotect.attacks import protection_report
    evaluation = protection_report.ProtectionEvaluation(report['config'], report['checkpoint'], report['key_file'])
    published = evaluation.as_published()
    trained_state, published_state = evaluation.model.state_dict(), published.model.state_dict()
    means = [name for name in trained_state if name.endswith('running_mean')]
    assert means and any(trained_state[name].abs().sum() > 0 for name in means)
    assert all(published_state[name].abs().sum() == 0 for name in means)
    assert published.model is not evaluation.model and published.test_data is evaluation.test_data
    assert published.train_data is evaluation.train_data
    assert published.miou(published.cipher) == pytest.approx(evaluation.miou(evaluation.cipher), abs=1e-6)
