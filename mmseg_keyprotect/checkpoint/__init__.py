"""What checkpoints of protected models carry, and loading them safely."""
from .record import CHECKPOINT_META_KEY, check_checkpoint_key, protection_record
from .safe_loading import allow_checkpoint_globals

__all__ = ['CHECKPOINT_META_KEY', 'check_checkpoint_key', 'protection_record', 'allow_checkpoint_globals']
