"""The protection gap: every validation and test also scores plain images and wrong keys."""
import copy
import secrets
from contextlib import nullcontext
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...config.check import check_config
from ...config.pipelines import protection_settings
from ...crypto.ciphers import BlockCipher, enumerable_warning
from ...crypto.conditions import encrypt_batch
from ...crypto.keys import MATERIAL_BYTES, SecretKey
from ...crypto.run_key import RunKey
from ...errors import ConfigError


@HOOKS.register_module()
class KeyProtectHook(Hook):
    """Refuse a misaligned protected config, and report the protection gap in every validation and test.

    * Before the run: every pipeline (TTA included) must encrypt right before
      ``PackSegInputs``, and slide windows must start on block boundaries.
    * Validation and test: besides the key holder's metrics, scores the same
      batches as plain images and under ``num_wrong_keys`` random keys (the
      same on every rank) and adds ``plain/<metric>``,
      ``wrong_key/<metric>_mean`` and ``wrong_key/<metric>_max``; any number
      of workers, DDP and TTA work. Checkpoints are :class:`CheckpointKeyHook`'s.

    Args:
        num_wrong_keys (int): random wrong keys evaluated. Defaults to 2.
        evaluate_plain (bool): evaluate plain images. Defaults to True.
    """

    # Before LoggerHook (BELOW_NORMAL), so the metrics this hook adds are logged.
    priority = 'NORMAL'

    def __init__(self, num_wrong_keys: int = 2, evaluate_plain: bool = True):
        if num_wrong_keys < 0:
            raise ConfigError(f'KeyProtectHook.num_wrong_keys must be >= 0, got {num_wrong_keys}')
        self.num_wrong_keys = int(num_wrong_keys)
        self.evaluate_plain = evaluate_plain
        self.settings: Optional[dict] = None
        self.cipher: Optional[BlockCipher] = None
        self.conditions: List[Tuple[str, Optional[BlockCipher]]] = []
        self._evaluators: Dict[str, object] = {}

    def before_run(self, runner) -> None:
        problems = check_config(runner.cfg)
        if problems:
            raise ConfigError('the config is not block-aligned (tools/protect_config.py writes an aligned one):\n  '
                              + '\n  '.join(problems))
        self.settings = protection_settings(runner.cfg)
        if self.settings is None:
            raise ConfigError('KeyProtectHook is configured but no pipeline has a BlockwiseEncrypt step')
        method, block_size = self.settings['method'], self.settings['block_size']
        self.cipher = RunKey.for_file(self.settings['key_file']).cipher(method, block_size)
        holder = [[secrets.token_bytes(MATERIAL_BYTES) for _ in range(self.num_wrong_keys)] if get_rank() == 0 else []]
        broadcast_object_list(holder)
        # (name, cipher) of each unauthorized condition; None is plain images.
        self.conditions = [('plain', None)] if self.evaluate_plain else []
        self.conditions += [(f'wrong_key_{index}', SecretKey(material).cipher(method, block_size))
                            for index, material in enumerate(holder[0])]
        runner.logger.info(f'KeyProtectHook: {method}, M = {block_size}; evaluating '
                           f'plain images: {self.evaluate_plain}, wrong keys: {self.num_wrong_keys}')
        warning = enumerable_warning(method, block_size)
        if warning:
            runner.logger.warning(f'KeyProtectHook: {warning}')

    def _before_epoch(self, runner, mode: str = 'train') -> None:
        if mode == 'train':
            return
        evaluator_cfg = copy.deepcopy(runner.cfg.get(f'{mode}_evaluator'))
        # The unauthorized conditions are scored, never written: --out holds the key holder's predictions only.
        for metric in evaluator_cfg if isinstance(evaluator_cfg, list) else [evaluator_cfg]:
            for setting in ('output_dir', 'keep_results', 'format_only'):
                metric.pop(setting, None)
        meta = getattr(runner, f'{mode}_dataloader').dataset.metainfo
        self._evaluators = {name: runner.build_evaluator(evaluator_cfg) for name, _ in self.conditions}
        for evaluator in self._evaluators.values():
            evaluator.dataset_meta = meta

    def _after_iter(self, runner, batch_idx: int, data_batch=None, outputs=None, mode: str = 'train') -> None:
        if mode == 'train':
            return
        step = runner.model.val_step if mode == 'val' else runner.model.test_step
        preprocessor = getattr(runner.model, 'module', runner.model).data_preprocessor
        on_device = getattr(preprocessor, 'encrypts_inputs', False)
        for name, cipher in self.conditions:
            # On the device path the batch is still plain and the preprocessor encrypts with the cipher chosen.
            inputs = data_batch['inputs'] if on_device else encrypt_batch(
                data_batch['inputs'], cipher, self.settings['channel_order'], encrypted_with=self.cipher)
            batch = dict(inputs=inputs, data_samples=_cloned(data_batch['data_samples']))
            with preprocessor.encrypting_with(cipher) if on_device else nullcontext():
                outputs = step(batch)
            self._evaluators[name].process(data_samples=outputs, data_batch=batch)

    def _finish(self, runner, metrics: Optional[dict], mode: str) -> None:
        if metrics is None or not self._evaluators:
            return
        size = len(getattr(runner, f'{mode}_dataloader').dataset)
        results = {name: evaluator.evaluate(size) for name, evaluator in self._evaluators.items()}
        self._evaluators = {}
        added = {f'plain/{k}': float(v) for k, v in results.pop('plain', {}).items()}
        for metric in next(iter(results.values()), {}):
            values = np.array([r[metric] for r in results.values()], dtype=float)
            added[f'wrong_key/{metric}_mean'] = float(values.mean())
            added[f'wrong_key/{metric}_max'] = float(values.max())
        metrics.update(added)
        # RuntimeInfoHook (VERY_HIGH) has already copied the metrics into the message hub,
        # which is what LoggerHook and the visualizer backends read: add ours there too.
        for key, value in added.items():
            runner.message_hub.update_scalar(f'{mode}/{key}', value)
        summary = ', '.join(f'{k}: {float(v):.2f}' for k, v in metrics.items() if k.split('/')[-1].startswith('mIoU'))
        runner.logger.info(f'KeyProtectHook ({mode}) authorized vs unauthorized -- {summary}')

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._finish(runner, metrics, 'val')

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._finish(runner, metrics, 'test')


def _cloned(samples):
    """Data samples (TTA-nested or not) that the step may edit without touching the key holder's."""
    return [_cloned(sample) for sample in samples] if isinstance(samples, (list, tuple)) else samples.clone()
