import json

import cv2
import numpy as np
from mmseg.registry import DATASETS

from mmseg_keyprotect.datasets import CLASSES, generate_shapes, render_sample


def test_rendering_is_deterministic_and_seed_dependent():
    image, label = render_sample(5)
    again_image, again_label = render_sample(5)
    assert np.array_equal(image, again_image) and np.array_equal(label, again_label)
    assert not np.array_equal(image, render_sample(6)[0])
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8 and label.max() < len(CLASSES)


def test_classes_are_not_colours():
    """The same class appears in many colours: colour alone cannot tell classes apart."""
    colours = {}
    for seed in range(60):
        image, label = render_sample(seed)
        for index in np.unique(label)[1:]:
            colours.setdefault(int(index), []).append(image[label == index].mean(0))
    assert len(colours) == len(CLASSES) - 1
    for values in colours.values():
        assert np.std(values, axis=0).mean() > 20


def test_layout_loads_with_the_registered_dataset(shapes_root):
    manifest = json.loads((shapes_root / 'manifest.json').read_text())
    assert manifest['num_train'] == 16 and manifest['size'] == 64
    dataset = DATASETS.build(dict(type='ShapesDataset', data_root=str(shapes_root),
                                  data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
                                  pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]))
    assert len(dataset) == 6 and dataset.metainfo['classes'] == CLASSES
    sample = dataset[0]
    assert sample['img'].shape == (64, 64, 3) and sample['gt_seg_map'].shape == (64, 64)


def test_generation_is_skipped_when_identical(shapes_root):
    first = cv2.imread(str(shapes_root / 'img_dir' / 'train' / '00000.png'))
    stamp = (shapes_root / 'manifest.json').stat().st_mtime
    generate_shapes(shapes_root, num_train=16, num_val=6, size=64, seed=1)
    assert (shapes_root / 'manifest.json').stat().st_mtime == stamp
    assert np.array_equal(first, cv2.imread(str(shapes_root / 'img_dir' / 'train' / '00000.png')))
