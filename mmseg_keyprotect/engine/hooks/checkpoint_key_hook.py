"""The key's record in every checkpoint, and the key checked against each checkpoint loaded."""
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...checkpoint.locked import LockedCheckpointError, UnlockedCheckpoint
from ...checkpoint.mmengine_io import writes_locked_checkpoints
from ...checkpoint.record import CHECKPOINT_META_KEY, check_checkpoint_key, protection_record
from ...config.pipelines import protection_settings
from ...crypto.run_key import RunKey


@HOOKS.register_module()
class CheckpointKeyHook(Hook):
    """Record the key in checkpoints, and refuse a checkpoint of another key.

    * Saving: the cipher's method, block size and a salted, slow verifier of
      the transform (never the key) go under ``meta['keyprotect']``.
    * Loading (``load_from``, ``--resume``): a checkpoint of another key is
      refused with a clear error. A run that writes locked checkpoints
      (``default_hooks.checkpoint.backend_args = dict(backend='keyprotect_locked')``,
      which ``tools/protect_config.py`` writes) resumes only from locked
      files, whose contents the key authenticates.
    """

    # Before CheckpointHook (VERY_LOW), so the record is in the saved file.
    priority = 'NORMAL'

    def __init__(self):
        self._record: Optional[dict] = None

    def _key(self, runner):
        """``(settings, run key)`` of a config that encrypts, or None."""
        settings = protection_settings(runner.cfg)
        return None if settings is None else (settings, RunKey.for_file(settings['key_file']))

    def before_run(self, runner) -> None:
        taken = self._key(runner)
        if taken is not None and writes_locked_checkpoints(runner.cfg):
            taken[1].require_lockable()
            runner.logger.info('CheckpointKeyHook: checkpoints are written locked under the key')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        taken = self._key(runner)
        if taken is None:
            return
        if self._record is None:  # one verifier per run: its scrypt runs once, not at every save
            settings, run_key = taken
            self._record = protection_record(settings['method'],
                                             run_key.cipher(settings['method'], settings['block_size']))
        checkpoint.setdefault('meta', {})[CHECKPOINT_META_KEY] = self._record

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        taken = self._key(runner)
        if taken is None:
            return
        name = runner.cfg.get('load_from') or 'the latest checkpoint of ' + str(runner.work_dir)
        if writes_locked_checkpoints(runner.cfg) and getattr(runner, '_resume', False) and \
                not isinstance(checkpoint, UnlockedCheckpoint):
            # The run writes locked files; a plain one in their place may have been put there by anyone.
            raise LockedCheckpointError(
                f'{name} is not locked, but this run writes locked checkpoints: it resumes only from locked files, '
                'whose contents the key authenticates. If you trust the file, lock it first (python '
                'tools/lock_checkpoint.py FILE FILE.locked --key-file KEY) and resume from the locked copy with '
                '--resume --cfg-options load_from=FILE.locked')
        record = checkpoint.get('meta', {}).get(CHECKPOINT_META_KEY)
        if record is None:
            runner.logger.warning(f'CheckpointKeyHook: {name} has no mmseg-keyprotect record: the key cannot be '
                                  'checked against it, and a wrong key would give poor results without an error')
        settings, run_key = taken
        check_checkpoint_key(record, settings['method'], run_key.cipher(settings['method'], settings['block_size']),
                             run_key.source, name)
