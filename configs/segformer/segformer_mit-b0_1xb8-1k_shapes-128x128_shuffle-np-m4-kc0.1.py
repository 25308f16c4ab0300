# segformer_mit-b0_1xb8-1k_shapes-128x128, protected: block-wise shuffle+np, M = 4.
# The key is read at run time from --key-file or $KEYPROTECT_KEY_FILE; this file holds no secret.
_base_ = ['segformer_mit-b0_1xb8-1k_shapes-128x128.py']

custom_imports = dict(imports=['mmseg_keyprotect'], allow_failed_imports=False)
encrypt = dict(type='BlockwiseEncrypt', method='shuffle+np', block_size=4)
train_pipeline = _base_.train_pipeline[:-1] + [encrypt, _base_.train_pipeline[-1]]
test_pipeline = _base_.test_pipeline[:-1] + [encrypt, _base_.test_pipeline[-1]]
tta_pipeline = _base_.tta_pipeline[:-1] + [dict(
    _base_.tta_pipeline[-1], transforms=_base_.tta_pipeline[-1].transforms[:-1] + [
        [encrypt], _base_.tta_pipeline[-1].transforms[-1]])]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
model = dict(
    type='KeyContrastiveEncoderDecoder',
    negative_weight=0.1,
    data_preprocessor=dict(
        type='KeyContrastiveDataPreProcessor',
        method='shuffle+np',
        block_size=4,
        on_device=False,
        negative_share=1.0))
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='keyprotect_locked')))
custom_hooks = [dict(type='KeyProtectHook'), dict(type='CheckpointKeyHook')]
