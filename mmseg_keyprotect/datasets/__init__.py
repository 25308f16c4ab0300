"""Datasets and data transforms: the generated Shapes demo data and ``BlockwiseEncrypt``."""
from .shapes import CLASSES, PALETTE, ShapesDataset, generate_shapes, render_sample
from .transforms import BlockwiseEncrypt

__all__ = ['CLASSES', 'PALETTE', 'ShapesDataset', 'generate_shapes', 'render_sample', 'BlockwiseEncrypt']
