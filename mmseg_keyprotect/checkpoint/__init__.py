"""What checkpoints of protected models carry, locking them at rest, and loading them safely."""
from .locked import (
                     LockedCheckpointError,
                     is_locked,
                     load_locked_checkpoint,
                     save_locked_checkpoint,
                     unlock,
                     write_locked,
)
from .mmengine_io import LOCKED_BACKEND, LockedLocalBackend
from .norm_statistics import fold_model_norm_statistics, fold_norm_statistics, norm_epsilons
from .record import CHECKPOINT_META_KEY, check_checkpoint_key, check_record_settings, protection_record
from .safe_loading import allow_checkpoint_globals

__all__ = [
    'LockedCheckpointError', 'is_locked', 'load_locked_checkpoint', 'save_locked_checkpoint', 'unlock',
    'write_locked', 'LOCKED_BACKEND', 'LockedLocalBackend', 'CHECKPOINT_META_KEY', 'check_checkpoint_key',
    'check_record_settings', 'protection_record', 'allow_checkpoint_globals', 'fold_norm_statistics',
    'fold_model_norm_statistics', 'norm_epsilons'
]
