"""Inference with a key, client-side image encryption, and runners for the training and test tools."""
from .image_encryption import (
                               EncryptionRecord,
                               list_images,
                               plan_outputs,
                               read_image,
                               read_record,
                               transform_files,
                               write_image,
)
from .inference import ProtectedInferencer
from .runners import build_test_runner, build_train_runner, close_distributed, prepare_run_key

__all__ = [
    'EncryptionRecord', 'list_images', 'plan_outputs', 'read_image', 'read_record', 'transform_files',
    'write_image', 'ProtectedInferencer', 'build_test_runner', 'build_train_runner', 'close_distributed',
    'prepare_run_key'
]
