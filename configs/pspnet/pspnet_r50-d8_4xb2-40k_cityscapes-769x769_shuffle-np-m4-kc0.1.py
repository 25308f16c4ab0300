# pspnet_r50-d8_4xb2-40k_cityscapes-769x769, protected: block-wise shuffle+np, M = 4.
# The key is read at run time from --key-file or $KEYPROTECT_KEY_FILE; this file holds no secret.
# Changed for block alignment: model.test_cfg.crop_size: (769, 769) -> (768, 768) (slide windows
#   must start on 4-pixel block boundaries, or a window of an encrypted image is not the encryption
#   of that window)
# Changed for block alignment: model.test_cfg.stride: (513, 513) -> (512, 512) (slide windows must
#   start on 4-pixel block boundaries, or a window of an encrypted image is not the encryption of
#   that window)
_base_ = ['mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py']

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
    test_cfg=dict(crop_size=(768, 768), stride=(512, 512)),
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
