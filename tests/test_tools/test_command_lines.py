"""End to end: the real command lines on tiny generated data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmseg_keyprotect.checkpoint import CHECKPOINT_META_KEY, is_locked, load_locked_checkpoint
from mmseg_keyprotect.crypto.key_files import write_random_key

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
PROTECTED = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py'


def run(*args, env=None, check=True, cwd=REPO):
    command = [sys.executable, *map(str, args)]
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f'{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


def tiny_options(data_root, iterations=4):
    return ['--cfg-options', f'train_cfg.max_iters={iterations}', f'train_cfg.val_interval={iterations}',
            f'default_hooks.checkpoint.interval={iterations}', 'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}', f'test_dataloader.dataset.data_root={data_root}']


@pytest.fixture(scope='module')
def trained(tmp_path_factory, shapes_root):
    """A protected model trained for a few iterations with tools/train.py."""
    root = tmp_path_factory.mktemp('trained')
    key = root / 'keys' / 'model.key'
    write_random_key(key)
    work_dir = root / 'work'
    result = run('tools/train.py', PROTECTED, '--key-file', key, '--work-dir', work_dir, *tiny_options(shapes_root))
    return dict(key=key, work_dir=work_dir, checkpoint=work_dir / 'iter_4.pth', log=result.stdout + result.stderr,
                data_root=shapes_root)


def test_checkpoint_records_a_salted_verifier_not_the_key(trained):
    from mmseg_keyprotect.crypto.key_files import load_key
    from mmseg_keyprotect.crypto.verifier import matches
    checkpoint = load_locked_checkpoint(trained['checkpoint'], load_key(trained['key']), 'cpu')
    record = checkpoint['meta'][CHECKPOINT_META_KEY]
    assert set(record) == {'method', 'block_size', 'verifier'} and record['method'] == 'shuffle'
    cipher = load_key(trained['key']).cipher('shuffle', 4)
    assert matches(record['verifier'], cipher, 'checkpoint') and cipher.fingerprint not in json.dumps(record)


def test_no_key_material_anywhere_in_the_work_dir(trained):
    document = json.loads(trained['key'].read_text())
    import base64
    material = base64.b64decode(document['material'])
    encodings = [document['material'].encode(), material, material.hex().encode(),
                 base64.urlsafe_b64encode(material)]
    files = [p for p in trained['work_dir'].rglob('*') if p.is_file()]
    assert any(p.suffix == '.pth' for p in files) and any(p.suffix == '.py' for p in files)
    for path in files:
        content = path.read_bytes()
        for encoding in encodings:
            assert encoding not in content, f'key material found in {path}'


def test_test_tool_with_the_key(trained, tmp_path):
    result = run('tools/test.py', PROTECTED, trained['checkpoint'], '--key-file', trained['key'], '--work-dir',
                 tmp_path / 'test', '--show-dir', tmp_path / 'show', *tiny_options(trained['data_root']))
    output = result.stdout + result.stderr
    assert 'mIoU' in output and 'plain/mIoU' in output
    assert list((tmp_path / 'test').rglob('*.png')) or list((tmp_path / 'show').rglob('*.png'))


def test_test_tool_refuses_a_wrong_key(trained, tmp_path, other_key_file):
    result = run('tools/test.py', PROTECTED, trained['checkpoint'], '--key-file', other_key_file, '--work-dir',
                 tmp_path, *tiny_options(trained['data_root']), check=False)
    assert result.returncode != 0
    assert 'wrong key' in result.stderr and 'use the key file the model was trained with' in result.stderr
    assert 'Traceback' not in result.stderr


def test_resume(trained, tmp_path):
    import shutil
    work_dir = tmp_path / 'resume'
    shutil.copytree(trained['work_dir'], work_dir)
    result = run('tools/train.py', PROTECTED, '--key-file', trained['key'], '--work-dir', work_dir, '--resume',
                 *tiny_options(trained['data_root'], iterations=6))
    assert 'resumed' in (result.stdout + result.stderr).lower()
    assert (work_dir / 'iter_6.pth').is_file()


def test_a_locked_run_does_not_resume_from_a_plain_checkpoint_put_in_its_place(trained, tmp_path):
    """Anyone who can write to the work dir could plant a plain file (with a record copied from anywhere): the run
    refuses it, writes nothing, and resumes once the key holder has locked the file."""
    import shutil
    work_dir = tmp_path / 'planted'
    shutil.copytree(trained['work_dir'], work_dir)
    planted = work_dir / 'iter_4.pth'
    run('tools/lock_checkpoint.py', planted, tmp_path / 'plain.pth', '--key-file', trained['key'], '--unlock')
    shutil.copyfile(tmp_path / 'plain.pth', planted)
    (work_dir / 'last_checkpoint').write_text(str(planted))  # MMEngine resumes from the file this names
    result = run('tools/train.py', PROTECTED, '--key-file', trained['key'], '--work-dir', work_dir, '--resume',
                 *tiny_options(trained['data_root'], iterations=6), check=False)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'is not locked, but this run writes locked checkpoints' in result.stderr
    assert not (work_dir / 'iter_6.pth').exists()
    run('tools/lock_checkpoint.py', tmp_path / 'plain.pth', planted, '--key-file', trained['key'], '--force')
    run('tools/train.py', PROTECTED, '--key-file', trained['key'], '--work-dir', work_dir, '--resume',
        *tiny_options(trained['data_root'], iterations=6))
    assert (work_dir / 'iter_6.pth').is_file()


def test_infer_tool_and_client_side_encryption(trained, tmp_path):
    from mmseg_keyprotect.datasets import generate_shapes
    # Images at the model's input size (128x128): the client encrypts exactly what the server's
    # key-holding pipeline would, so both routes must give identical masks.
    images = generate_shapes(tmp_path / 'shapes', num_train=1, num_val=3, size=128, seed=2) / 'img_dir' / 'val'
    result = run('tools/infer.py', PROTECTED, trained['checkpoint'], images, '--key-file', trained['key'],
                 '--out-dir', tmp_path / 'plain_mode', '--device', 'cpu', '--opacity', '0.3', '--batch-size', '2')
    # Nothing the user cannot act on: the stack's own notices are filtered, unless Python is asked for them.
    assert 'Warning' not in result.stderr and 'WARNING' not in result.stderr + result.stdout, result.stderr
    masks = sorted((tmp_path / 'plain_mode' / 'pred').glob('*_pred.png'))
    assert [m.name for m in masks] == ['00000_pred.png', '00001_pred.png', '00002_pred.png']
    overlays = sorted(p.name for p in (tmp_path / 'plain_mode' / 'vis').iterdir())
    assert overlays == ['00000.png', '00001.png', '00002.png']
    import cv2
    assert cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED).shape == (128, 128)
    run('tools/encrypt_images.py', images, tmp_path / 'encrypted', '--key-file', trained['key'], '--method', 'shuffle')
    # The server holds no key: it gets an unlocked export of the checkpoint.
    run('tools/lock_checkpoint.py', trained['checkpoint'], tmp_path / 'server.pth', '--key-file', trained['key'],
        '--unlock')
    run('tools/infer.py', PROTECTED, tmp_path / 'server.pth', tmp_path / 'encrypted', '--encrypted-input', '--out-dir',
        tmp_path / 'server')
    assert not (tmp_path / 'server' / 'vis').exists()  # nothing plain to draw on
    for mask in masks:
        server = cv2.imread(str(tmp_path / 'server' / 'pred' / mask.name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(server, cv2.imread(str(mask), cv2.IMREAD_UNCHANGED))


def test_infer_refuses_a_wrong_key(trained, tmp_path, other_key_file):
    result = run('tools/infer.py', PROTECTED, trained['checkpoint'], trained['data_root'] / 'img_dir' / 'val',
                 '--key-file', other_key_file, '--out-dir', tmp_path, check=False)
    assert result.returncode != 0 and 'wrong key' in result.stderr and 'Traceback' not in result.stderr


def test_keygen_cli(tmp_path):
    result = run('tools/keygen.py', tmp_path / 'a.key')
    assert 'fingerprint' in result.stdout and oct((tmp_path / 'a.key').stat().st_mode)[-3:] == '600'
    exported = json.loads(run('tools/keygen.py', '--export', tmp_path / 'a.key', '--method', 'ffx',
                              '--block-size', '2').stdout)
    assert len(exported['mask']) == 12 and len(exported['ffx_table']) == 256
    password = run('tools/keygen.py', tmp_path / 'p.key', '--password', env={'KEYPROTECT_PASSWORD': 'hunter2 hunter2'})
    assert 'hunter2' not in (tmp_path / 'p.key').read_text() and 'fingerprint' in password.stdout
    again = run('tools/keygen.py', tmp_path / 'a.key', check=False)
    assert again.returncode != 0 and 'refusing to overwrite' in again.stderr and 'Traceback' not in again.stderr
    run('tools/keygen.py', tmp_path / 'a.key', '--legacy-seed', '42', '--legacy-ffx-password', 'published', '--force')
    legacy = json.loads((tmp_path / 'a.key').read_text())
    assert legacy['kind'] == 'legacy' and legacy['password'] == 'published'


def test_encrypt_images_cli_round_trip_and_errors(tmp_path, key_file):
    import cv2
    source = tmp_path / 'in'
    source.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        cv2.imwrite(str(source / f'{index}.png'), rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    for method in ('shuffle+np', 'ffx'):
        run('tools/encrypt_images.py', source, tmp_path / method, '--key-file', key_file, '--method', method)
        encrypted = cv2.imread(str(tmp_path / method / '0.png'), cv2.IMREAD_UNCHANGED)
        assert encrypted.dtype == (np.uint16 if method == 'ffx' else np.uint8)
        run('tools/encrypt_images.py', tmp_path / method, tmp_path / f'{method}-back', '--key-file', key_file,
            '--method', method, '--decrypt')
        for index in range(3):
            assert np.array_equal(cv2.imread(str(tmp_path / f'{method}-back' / f'{index}.png')),
                                  cv2.imread(str(source / f'{index}.png')))
    cv2.imwrite(str(tmp_path / 'gray.png'), np.zeros((8, 8), np.uint8))
    result = run('tools/encrypt_images.py', tmp_path / 'gray.png', tmp_path / 'out', '--key-file', key_file,
                 check=False)
    assert result.returncode != 0 and 'gray.png' in result.stderr and 'grayscale' in result.stderr
    assert 'Traceback' not in result.stderr
    cv2.imwrite(str(tmp_path / 'odd.png'), np.zeros((10, 8, 3), np.uint8))
    result = run('tools/encrypt_images.py', tmp_path / 'odd.png', tmp_path / 'out', '--key-file', key_file,
                 check=False)
    assert 'not a multiple of the block size 4' in result.stderr and '--pad' in result.stderr
    run('tools/encrypt_images.py', tmp_path / 'odd.png', tmp_path / 'padded', '--key-file', key_file, '--pad')
    assert cv2.imread(str(tmp_path / 'padded' / 'odd.png')).shape == (12, 8, 3)
    # --keep-going writes the good images and lists the bad one; --overwrite replaces earlier outputs.
    cv2.imwrite(str(source / 'gray.png'), np.zeros((8, 8), np.uint8))
    result = run('tools/encrypt_images.py', source, tmp_path / 'shuffle+np', '--key-file', key_file, '--method',
                 'shuffle+np', '--keep-going', '--overwrite', check=False)
    assert result.returncode == 1 and 'encrypted 3 of 4' in result.stdout and 'gray.png' in result.stderr


def test_protect_config_cli(tmp_path):
    output = tmp_path / 'pspnet_shuffle-m4.py'
    result = run('tools/protect_config.py', 'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py',
                 '-o', output)
    assert 'crop_size' in result.stdout and output.is_file()
    refused = run('tools/protect_config.py', 'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py', '-o',
                  output, check=False)
    assert refused.returncode != 0 and 'exists' in refused.stderr
    run('tools/protect_config.py', 'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py', '-o', output,
        '--method', 'shuffle', '--force')
    assert "method='shuffle'" in output.read_text()
    from mmengine.config import Config

    from mmseg_keyprotect.config import check_config
    assert check_config(Config.fromfile(str(output))) == []


@pytest.mark.parametrize('stock,extra', [
    ('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py', []),
    ('mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py', ['--on-device']),
    ('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py', ['--no-key-contrastive']),
    (str(BASELINE), [])])
def test_protect_config_cli_names_a_checked_key_file(tmp_path, key_file, stock, extra):
    """--key-file writes the path (never the key) into every encrypting setting, after checking the key."""
    from mmengine.config import Config

    from mmseg_keyprotect.config.pipelines import encrypt_settings
    output = tmp_path / 'leaf.py'
    run('tools/protect_config.py', stock, '--key-file', key_file, *extra, '-o', output)
    cfg = Config.fromfile(str(output))
    assert {s['key_file'] for s in encrypt_settings(cfg)} == {key_file}
    if cfg.model.data_preprocessor.type != 'SegDataPreProcessor':
        assert cfg.model.data_preprocessor.key_file == key_file
    assert json.loads(Path(key_file).read_text())['material'] not in output.read_text()
    (tmp_path / 'bad.key').write_text('{}')
    result = run('tools/protect_config.py', stock, '--key-file', tmp_path / 'bad.key', '-o', tmp_path / 'no.py',
                 check=False)
    assert result.returncode != 0 and 'bad.key' in result.stderr and not (tmp_path / 'no.py').exists()


def test_mmseg_own_train_and_test_tools_run_protected_configs(tmp_path, shapes_root, key_file):
    """`mim train mmseg CONFIG` runs mmseg's shipped tools/train.py: the plugin loads through
    custom_imports and the key through $KEYPROTECT_KEY_FILE, with no tool of ours involved."""
    import mmseg
    tools = Path(mmseg.__file__).parent / '.mim' / 'tools'
    env = {'KEYPROTECT_KEY_FILE': key_file}
    run(tools / 'train.py', PROTECTED, '--work-dir', tmp_path, *tiny_options(shapes_root, iterations=2), env=env)
    # mmseg's own test tool loads the checkpoint under torch >= 2.6 thanks to the plugin's allowlist.
    result = run(tools / 'test.py', PROTECTED, tmp_path / 'iter_2.pth', '--work-dir', tmp_path / 'test',
                 *tiny_options(shapes_root), env=env)
    assert 'plain/mIoU' in result.stdout + result.stderr


def test_evaluate_protection_tool(trained, tmp_path):
    root = trained['data_root']
    result = run('tools/evaluate_protection.py', PROTECTED, trained['checkpoint'], '--key-file', trained['key'],
                 '--out-dir', tmp_path / 'report', '--num-wrong-keys', 2, '--attack-sizes', 2,
                 '--attack-iterations', 1, '--attack-draws', 2, '--attacks', 'adapter', '--weights-search-budget',
                 20, '--unlabelled-images', 2, 3, '--unlabelled-draws', 2, '--climb-budget', 12, '--relaxed-steps', 2,
                 '--public-weights',
                 trained['checkpoint'], '--cfg-options', f'train_dataloader.dataset.data_root={root}',
                 f'test_dataloader.dataset.data_root={root}')
    assert '# Protection report: shuffle, M = 4' in result.stdout and '| adapter | 2 | 1 |' in result.stdout
    assert '## Weights and unlabelled images (no labels)' in result.stdout
    assert 'public weights the model was trained from' in result.stdout
    assert 'wrong keys: 2/2' in result.stdout and 'trained on 2 draws of k labelled images' in result.stdout
    report = json.loads((tmp_path / 'report' / 'protection_report.json').read_text())
    assert report['known_plaintext'][0]['agreement']['positions'] == 1.0
    assert [len(row['draws']) for row in report['learning_attacks']] == [2]
    thieves = report['unlabelled_images']
    assert [t['images'] for t in thieves] == [2, 3] and all(t['budget'] == 12 for t in thieves)
    assert all(t['oracle'] == 'normalisation statistics' and t['public_weights'] for t in thieves)
    # Each climb keeps to its budget: the start and at most 11 moves, twice, then the held-out pick of 3; per draw.
    assert all(t['evaluations'] <= 2 * (2 * 12 + 1 + 3 + 2) for t in thieves)
    assert all(t['chosen'] in t['candidates'] and t['draws'][0] == t['candidates'][t['chosen']]['mIoU']
               and len(t['draws']) == 2 and t['mIoU'] == pytest.approx(sum(t['draws']) / 2) for t in thieves)
    assert 'mean of 2 draws of the images' in result.stdout
    bad = run('tools/evaluate_protection.py', PROTECTED, trained['checkpoint'], '--key-file', trained['key'],
              '--attack-sizes', 'ten', '--cfg-options', f'train_dataloader.dataset.data_root={root}',
              f'test_dataloader.dataset.data_root={root}', check=False)
    assert bad.returncode != 0 and "attack size 'ten'" in bad.stderr
    no_draws = run('tools/evaluate_protection.py', PROTECTED, trained['checkpoint'], '--key-file', trained['key'],
                   '--attack-draws', 0, check=False)
    assert no_draws.returncode != 0 and 'attack draws must be at least 1, got 0' in no_draws.stderr
    no_images = run('tools/evaluate_protection.py', PROTECTED, trained['checkpoint'], '--key-file', trained['key'],
                    '--unlabelled-images', 0, check=False)
    assert no_images.returncode != 0 and 'unlabelled image counts must be at least 1, got [0]' in no_images.stderr
    no_image_draws = run('tools/evaluate_protection.py', PROTECTED, trained['checkpoint'], '--key-file',
                         trained['key'], '--unlabelled-draws', 0, check=False)
    assert no_image_draws.returncode != 0
    assert 'unlabelled image draws must be at least 1, got 0' in no_image_draws.stderr


def test_a_protected_run_leaves_only_locked_checkpoints(trained):
    from mmseg_keyprotect.crypto.key_files import load_key
    checkpoints = sorted(trained['work_dir'].glob('*.pth'))
    assert checkpoints and all(is_locked(path) for path in checkpoints)
    state = load_locked_checkpoint(checkpoints[-1], load_key(trained['key']), 'cpu')['state_dict']
    weights = [tensor for tensor in state.values() if tensor.numel() >= 64]
    for path in checkpoints:
        with pytest.raises(Exception):
            torch.load(path, weights_only=True)
        data = path.read_bytes()
        assert not any(tensor.flatten()[:16].numpy().tobytes() in data for tensor in weights[:20])


def test_locked_checkpoints_refuse_another_key_a_flipped_byte_and_a_cut(trained, tmp_path, other_key_file):
    data = trained['checkpoint'].read_bytes()
    (tmp_path / 'flipped.pth').write_bytes(data[:-50] + bytes([data[-50] ^ 1]) + data[-49:])
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    for checkpoint, key, message in ((trained['checkpoint'], other_key_file, 'wrong key for'),
                                     (tmp_path / 'flipped.pth', trained['key'], 'damaged or was tampered with'),
                                     (tmp_path / 'cut.pth', trained['key'], 'is truncated')):
        result = run('tools/test.py', PROTECTED, checkpoint, '--key-file', key, '--work-dir', tmp_path / 'test',
                     *tiny_options(trained['data_root']), check=False)
        assert result.returncode != 0 and message in result.stderr and 'Traceback' not in result.stderr, message


def test_lock_tool_round_trip_and_refusals(trained, tmp_path):
    key = trained['key']
    run('tools/lock_checkpoint.py', trained['checkpoint'], tmp_path / 'plain.pth', '--key-file', key, '--unlock')
    assert not is_locked(tmp_path / 'plain.pth') and torch.load(tmp_path / 'plain.pth', weights_only=True)
    run('tools/lock_checkpoint.py', tmp_path / 'plain.pth', tmp_path / 'again.pth', '--key-file', key)
    assert is_locked(tmp_path / 'again.pth')
    result = run('tools/lock_checkpoint.py', tmp_path / 'plain.pth', tmp_path / 'again.pth', '--key-file', key,
                 check=False)
    assert result.returncode != 0 and 'exists; nothing was written' in result.stderr
    run('tools/lock_checkpoint.py', tmp_path / 'plain.pth', tmp_path / 'again.pth', '--key-file', key, '--force')
    assert is_locked(tmp_path / 'again.pth')


def test_evaluate_protection_quick_run_with_a_baseline(trained, tmp_path):
    root = trained['data_root']
    run('tools/evaluate_protection.py', PROTECTED, trained['checkpoint'], '--key-file', trained['key'],
        '--baseline', BASELINE, trained['checkpoint'], '--out-dir', tmp_path / 'report', '--quick', '--attacks',
        'adapter', '--num-images', 3, '--device', 'cpu', '--seed', 1, '--results-file', tmp_path / 'report.json',
        '--cfg-options', f'train_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}')
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['test_images'] == 3 and report['seed'] == 1 and report['wrong_keys']['summary']['count'] == 20
    assert 'mIoU' in report['baseline'] and report['command'].startswith('python tools/evaluate_protection.py')
    assert report['weights_only']['agreement']['positions'] >= 0


def test_train_and_test_flags_that_need_hardware_say_so(trained, tmp_path):
    """--amp needs a GPU and --show a display; without them both tools stop at once, saying so."""
    result = run('tools/train.py', PROTECTED, '--key-file', trained['key'], '--amp', '--work-dir', tmp_path,
                 '--local-rank', '0', check=False, env={'CUDA_VISIBLE_DEVICES': ''})
    assert result.returncode != 0 and '--amp needs a GPU' in result.stderr and 'Traceback' not in result.stderr
    environment = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    shown = subprocess.run([sys.executable, 'tools/test.py', str(PROTECTED), str(trained['checkpoint']), '--key-file',
                            str(trained['key']), '--show', '--wait-time', '0.1', '--local_rank', '0'], cwd=REPO,
                           env=environment, capture_output=True, text=True, timeout=600)
    assert shown.returncode != 0 and 'use --show-dir' in shown.stderr and 'Traceback' not in shown.stderr


def test_publish_and_zoo_tools_with_a_local_metafile(trained, tmp_path):
    published_dir = tmp_path / 'published'
    result = run('tools/publish_model.py', trained['checkpoint'], PROTECTED, '--out-dir', published_dir,
                 '--key-file', trained['key'])
    [published] = published_dir.glob('*.pth')
    assert is_locked(published) and 'sha256 ' in result.stdout
    from mmseg_keyprotect.crypto.key_files import load_key
    key = load_key(trained['key'])
    trained_state = load_locked_checkpoint(trained['checkpoint'], key)['state_dict']
    folded_state = load_locked_checkpoint(published, key)['state_dict']
    statistics = [name for name in trained_state if name.endswith('running_mean')]
    assert statistics and all(not folded_state[name].any() and trained_state[name].any() for name in statistics)
    kept = run('tools/publish_model.py', trained['checkpoint'], PROTECTED, '--out-dir', tmp_path / 'kept',
               '--key-file', trained['key'], '--keep-norm-statistics')
    [kept_file] = (tmp_path / 'kept').glob('*.pth')
    kept_state = load_locked_checkpoint(kept_file, key)['state_dict']
    assert 'sha256 ' in kept.stdout and all(torch.equal(kept_state[n], trained_state[n]) for n in trained_state)
    from mmseg_keyprotect.zoo import sha256_of, write_metafile
    metafile = write_metafile(tmp_path / 'local' / 'metafile.yaml', 'local', [dict(
        Name='local-model', Config=str(PROTECTED), Weights=published.name,
        Metadata={'SHA256': sha256_of(published), 'Method': 'shuffle', 'Block Size': 4},
        Results=[dict(Task='Semantic Segmentation', Dataset='Shapes', Metrics={'mIoU': 1.0})])])
    listed = run('tools/zoo.py', 'list', '--metafile', metafile)
    assert 'local-model' in listed.stdout
    assert 'local-model' not in run('tools/zoo.py', 'list', '--metafile', tmp_path / 'none.yaml').stdout
    verified = run('tools/zoo.py', 'verify', 'local-model', '--metafile', metafile, '--search-dir', published_dir)
    assert 'matches the zoo entry' in verified.stdout
    missing = run('tools/zoo.py', 'verify', 'local-model', '--metafile', metafile, check=False)
    assert missing.returncode != 0 and 'not found' in missing.stderr
