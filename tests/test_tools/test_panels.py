import numpy as np

from mmseg_keyprotect_experiments.panels import colorize, displayable


def test_colorize():
    label = np.array([[0, 1], [2, 255]], np.uint8)
    colours = colorize(label, [[0, 0, 0], [255, 0, 0], [0, 255, 0]])
    assert colours[0, 1].tolist() == [255, 0, 0] and colours[1, 1].tolist() == [255, 255, 255]


def test_displayable_scales_ffx_values():
    image = np.array([[[0, 500, 999]]], np.int16)
    assert displayable(image).tolist() == [[[0, 128, 255]]]
