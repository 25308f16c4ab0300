"""How strong the protection really is: the protection report and the attacks it runs."""
from ..crypto.near_keys import near_key
from .key_recovery import (
                           estimate_flips,
                           estimate_shuffle,
                           find_ffx_positions,
                           key_agreement,
                           recover_known_plaintext,
)
from .learning_attacks import BlockwiseAdapter, train_attack
from .metrics import IoUAccumulator, chance_levels, summarize
from .protection_report import ProtectionEvaluation, evaluate_protection
from .weights_only import estimate_key_from_weights, model_stem

__all__ = [
    'BlockwiseAdapter', 'IoUAccumulator', 'ProtectionEvaluation', 'chance_levels', 'estimate_flips',
    'estimate_shuffle', 'evaluate_protection', 'find_ffx_positions', 'key_agreement', 'near_key',
    'recover_known_plaintext', 'summarize', 'train_attack', 'estimate_key_from_weights', 'model_stem'
]
