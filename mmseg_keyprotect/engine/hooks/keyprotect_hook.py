"""The key-aware hook: protection gap in every validation, fingerprint in checkpoints."""
import copy
import secrets
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

from ...checkpoint.locked import LockedCheckpointError, UnlockedCheckpoint
from ...checkpoint.mmengine_io import LOCKED_BACKEND
from ...checkpoint.record import CHECKPOINT_META_KEY, check_checkpoint_key, protection_record
from ...config.check import check_config
from ...config.pipelines import encrypt_settings
from ...crypto.ciphers import BlockCipher, enumerable_warning
from ...crypto.keys import MATERIAL_BYTES, SecretKey
from ...crypto.run_key import RunKey
from ...datasets.transforms.blockwise_encrypt import transform_settings
from ...errors import ConfigError
from ...models.data_preprocessor import KeyProtectDataPreProcessor


def _map_inputs(inputs, function):
    """Apply ``function`` to every image tensor of a (possibly TTA-nested) batch."""
    if isinstance(inputs, (list, tuple)):
        return [_map_inputs(item, function) for item in inputs]
    return function(inputs)


def _clone_samples(samples):
    if isinstance(samples, (list, tuple)):
        return [_clone_samples(sample) for sample in samples]
    return samples.clone()


@HOOKS.register_module()
class KeyProtectHook(Hook):
    """Report the protection gap and guard checkpoints with the key fingerprint.

    * Before the run: checks that every pipeline (TTA included) encrypts right
      before ``PackSegInputs`` and that slide windows start on block
      boundaries, and refuses the run otherwise.
    * Validation and test: besides the authorized metrics, evaluates the same
      batches as plain images and under ``num_wrong_keys`` random keys and adds
      ``plain/<metric>``, ``wrong_key/<metric>_mean`` and
      ``wrong_key/<metric>_max`` to the logged metrics. The batches are
      decrypted and re-encrypted on their tensors (with
      ``KeyProtectDataPreProcessor``, which receives them plain, the
      preprocessor encrypts with the chosen key instead), so this works with
      any number of dataloader workers, DDP (all ranks share the wrong keys)
      and TTA.
    * Checkpoints: saves the cipher's method, block size and a salted, slow
      verifier of the transform (never the key) under ``meta['keyprotect']``;
      loading a checkpoint with a different key raises a clear error. The
      files are written locked under the key (AES-256-GCM), unless
      ``lock_checkpoints=False``.

    Args:
        num_wrong_keys (int): random wrong keys evaluated. Defaults to 2.
        evaluate_plain (bool): evaluate plain images. Defaults to True.
        lock_checkpoints (bool): write checkpoints locked under the key
            (:mod:`mmseg_keyprotect.checkpoint.locked`); False writes plain
            files. Defaults to True.
    """

    # Before LoggerHook (BELOW_NORMAL), so the metrics this hook adds are logged,
    # and before CheckpointHook (VERY_LOW), so the record is in the saved file.
    priority = 'NORMAL'

    def __init__(self, num_wrong_keys: int = 2, evaluate_plain: bool = True, lock_checkpoints: bool = True):
        if num_wrong_keys < 0:
            raise ConfigError(f'KeyProtectHook.num_wrong_keys must be >= 0, got {num_wrong_keys}')
        self.num_wrong_keys = int(num_wrong_keys)
        self.evaluate_plain = evaluate_plain
        self.lock_checkpoints = lock_checkpoints
        self.settings: Optional[dict] = None
        self.run_key: Optional[RunKey] = None
        self.cipher: Optional[BlockCipher] = None
        self.wrong_ciphers: List = []
        self._evaluators: Dict[str, object] = {}
        self._record: Optional[dict] = None

    # ---------------------------------------------------------------- set-up
    def _take_key(self, runner) -> bool:
        """The run's key and the config's cipher settings; False for a config that encrypts nothing."""
        if self.cipher is None:
            settings = encrypt_settings(runner.cfg)
            if not settings:
                return False
            self.settings = transform_settings(settings[0])
            self.run_key = RunKey.current(self.settings['key_file'])
            self.cipher = self.run_key.cipher(self.settings['method'], self.settings['block_size'])
        return True

    def before_run(self, runner) -> None:
        problems = check_config(runner.cfg)
        if problems:
            raise ConfigError('the config is not block-aligned (tools/protect_config.py writes an aligned one):\n  '
                              + '\n  '.join(problems))
        if not self._take_key(runner):
            raise ConfigError('KeyProtectHook is configured but no pipeline has a BlockwiseEncrypt step')
        method, block_size = self.settings['method'], self.settings['block_size']
        if self.lock_checkpoints:
            self.run_key.require_lockable()
            # CheckpointHook saves through its backend; ours encrypts in memory before anything reaches the disk.
            for hook in runner.hooks:
                if isinstance(hook, CheckpointHook):
                    hook.backend_args = dict(backend=LOCKED_BACKEND)
                    runner.logger.info('KeyProtectHook: checkpoints are written locked under the key')
        materials = [secrets.token_bytes(MATERIAL_BYTES) for _ in range(self.num_wrong_keys)] if get_rank() == 0 else []
        holder = [materials]
        broadcast_object_list(holder)
        self.wrong_ciphers = [SecretKey(m).cipher(method, block_size) for m in holder[0]]
        runner.logger.info(f'KeyProtectHook: {method}, M = {block_size}; evaluating '
                           f'plain images: {self.evaluate_plain}, wrong keys: {self.num_wrong_keys}')
        warning = enumerable_warning(method, block_size)
        if warning:
            runner.logger.warning(f'KeyProtectHook: {warning}')

    # ------------------------------------------------------------ evaluation
    def _conditions(self) -> List[Tuple[str, Optional[BlockCipher]]]:
        """``(name, cipher)`` of each unauthorized condition; ``None`` is plain images."""
        conditions = [('plain', None)] if self.evaluate_plain else []
        return conditions + [(f'wrong_key_{index}', cipher) for index, cipher in enumerate(self.wrong_ciphers)]

    def _reencrypt(self, inputs, cipher: Optional[BlockCipher]):
        """Batch inputs encrypted by the pipeline, decrypted and encrypted with ``cipher`` instead."""
        def convert(image):
            order = self.settings['channel_order']
            plain = self.cipher.decrypt_tensor(image[None], order)
            return (plain if cipher is None else cipher.encrypt_tensor(plain, order))[0]
        return _map_inputs(inputs, convert)

    def _start(self, runner, mode: str) -> None:
        evaluator_cfg = copy.deepcopy(runner.cfg.get(f'{mode}_evaluator'))
        # The unauthorized conditions are scored, never written: --out holds the key holder's predictions only.
        for metric in evaluator_cfg if isinstance(evaluator_cfg, list) else [evaluator_cfg]:
            for setting in ('output_dir', 'keep_results', 'format_only'):
                metric.pop(setting, None)
        dataloader = getattr(runner, f'{mode}_dataloader')
        self._evaluators = {}
        for name, _ in self._conditions():
            evaluator = runner.build_evaluator(evaluator_cfg)
            evaluator.dataset_meta = dataloader.dataset.metainfo
            self._evaluators[name] = evaluator

    def _process(self, runner, data_batch, mode: str) -> None:
        model = runner.model
        step = model.val_step if mode == 'val' else model.test_step
        preprocessor = getattr(model, 'module', model).data_preprocessor
        on_device = isinstance(preprocessor, KeyProtectDataPreProcessor) and preprocessor.encrypts_inputs
        for name, cipher in self._conditions():
            # On the device path the batch is still plain and the preprocessor encrypts with the cipher we choose.
            inputs = data_batch['inputs'] if on_device else self._reencrypt(data_batch['inputs'], cipher)
            batch = dict(inputs=inputs, data_samples=_clone_samples(data_batch['data_samples']))
            with preprocessor.encrypting_with(cipher) if on_device else nullcontext():
                outputs = step(batch)
            self._evaluators[name].process(data_samples=outputs, data_batch=batch)

    def _finish(self, runner, metrics: Optional[dict], mode: str) -> None:
        if metrics is None or not self._evaluators:
            return
        size = len(getattr(runner, f'{mode}_dataloader').dataset)
        results = {name: evaluator.evaluate(size) for name, evaluator in self._evaluators.items()}
        added = {}
        if 'plain' in results:
            added.update({f'plain/{k}': float(v) for k, v in results['plain'].items()})
        wrong = [r for name, r in results.items() if name.startswith('wrong_key')]
        for metric in (wrong[0] if wrong else {}):
            values = np.array([r[metric] for r in wrong], dtype=float)
            added[f'wrong_key/{metric}_mean'] = float(values.mean())
            added[f'wrong_key/{metric}_max'] = float(values.max())
        self._evaluators = {}
        metrics.update(added)
        # RuntimeInfoHook (VERY_HIGH) has already copied the metrics into the message hub,
        # which is what LoggerHook and the visualizer backends read: add ours there too.
        for key, value in added.items():
            runner.message_hub.update_scalar(f'{mode}/{key}', value)
        summary = ', '.join(f'{k}: {float(v):.2f}' for k, v in metrics.items() if k.split('/')[-1].startswith('mIoU'))
        runner.logger.info(f'KeyProtectHook ({mode}) authorized vs unauthorized -- {summary}')

    def before_val_epoch(self, runner) -> None:
        self._start(runner, 'val')

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs: Sequence = None) -> None:
        self._process(runner, data_batch, 'val')

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._finish(runner, metrics, 'val')

    def before_test_epoch(self, runner) -> None:
        self._start(runner, 'test')

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs: Sequence = None) -> None:
        self._process(runner, data_batch, 'test')

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._finish(runner, metrics, 'test')

    # ----------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.cipher is not None:
            if self._record is None:  # one verifier per run: its scrypt runs once, not at every save
                self._record = protection_record(self.settings['method'], self.cipher)
            checkpoint.setdefault('meta', {})[CHECKPOINT_META_KEY] = self._record

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self._take_key(runner):
            return
        if self.lock_checkpoints and getattr(runner, '_resume', False) and \
                not isinstance(checkpoint, UnlockedCheckpoint):
            # The run writes locked files; a plain one in their place may have been put there by anyone.
            raise LockedCheckpointError(
                f'{runner.cfg.get("load_from") or "the latest checkpoint of " + str(runner.work_dir)} is not locked, '
                'but this run writes locked checkpoints: it resumes only from locked files, whose contents the key '
                'authenticates. If you trust the file, lock it first (python tools/lock_checkpoint.py FILE '
                'FILE.locked --key-file KEY) and resume from the locked copy with --resume --cfg-options '
                'load_from=FILE.locked')
        record = checkpoint.get('meta', {}).get(CHECKPOINT_META_KEY)
        if record is None:
            runner.logger.warning(f'KeyProtectHook: {runner.cfg.get("load_from") or "the checkpoint"} has no '
                                  'mmseg-keyprotect record: the key cannot be checked against it, and a wrong key '
                                  'would give poor results without an error')
        check_checkpoint_key(record, self.settings['method'], self.cipher, self.run_key.source,
                             runner.cfg.get('load_from') or 'checkpoint')
