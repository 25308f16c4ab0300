import numpy as np

from mmseg_keyprotect.visualization import colorize, displayable, overlay


def test_colorize_and_overlay():
    label = np.array([[0, 1], [2, 255]], np.uint8)
    colours = colorize(label, [[0, 0, 0], [255, 0, 0], [0, 255, 0]])
    assert colours[0, 1].tolist() == [255, 0, 0] and colours[1, 1].tolist() == [255, 255, 255]
    blended = overlay(np.full((2, 2, 3), 100, np.uint8), label, [[0, 0, 0], [255, 0, 0], [0, 255, 0]], 0.5)
    assert blended[0, 1].tolist() == [178, 50, 50]


def test_displayable_scales_ffx_values():
    image = np.array([[[0, 500, 999]]], np.int16)
    assert displayable(image).tolist() == [[[0, 128, 255]]]
