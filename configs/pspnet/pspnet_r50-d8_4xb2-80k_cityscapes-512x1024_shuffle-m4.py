# Protected variant of mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py: block-wise shuffle, M = 4.
# Written by tools/protect_config.py. The key is read at run time from --key-file
# (or $KEYPROTECT_KEY_FILE); this file holds no secret.
_base_ = ['mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py']

custom_imports = dict(imports=['mmseg_keyprotect'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 1024), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='BlockwiseEncrypt', method='shuffle', block_size=4, key_file=None),
    dict(
        type='PackSegInputs',
        meta_keys=(
            'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
            'flip', 'flip_direction', 'reduce_zero_label', 'padding_size'))]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='BlockwiseEncrypt', method='shuffle', block_size=4, key_file=None),
    dict(
        type='PackSegInputs',
        meta_keys=(
            'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
            'flip', 'flip_direction', 'reduce_zero_label', 'padding_size'))]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=0.5, keep_ratio=True),
                dict(type='Resize', scale_factor=0.75, keep_ratio=True),
                dict(type='Resize', scale_factor=1.0, keep_ratio=True),
                dict(type='Resize', scale_factor=1.25, keep_ratio=True),
                dict(type='Resize', scale_factor=1.5, keep_ratio=True),
                dict(type='Resize', scale_factor=1.75, keep_ratio=True)],
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='BlockwiseEncrypt', method='shuffle', block_size=4, key_file=None)],
            [
                dict(
                    type='PackSegInputs',
                    meta_keys=(
                        'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                        'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                        'padding_size'))]])]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
custom_hooks = [dict(type='KeyProtectHook', num_wrong_keys=2, evaluate_plain=True)]
