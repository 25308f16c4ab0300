"""mmseg-keyprotect: key-based protection of MMSegmentation models.

The OpenMMLab stack is pinned in requirements/runtime.txt and installed by
tools/install.sh (mmcv must be compiled against the installed torch, which pip
alone cannot order), so install_requires only states what this package imports.
"""
from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / 'mmseg_keyprotect' / 'version.py').read_text(), version)

setup(
    name='mmseg-keyprotect',
    version=version['__version__'],
    description='Protect MMSegmentation models with block-wise image encryption and a secret key',
    long_description=(Path(__file__).parent / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['mmseg_keyprotect', 'mmseg_keyprotect.*']),
    install_requires=['numpy', 'pyffx>=0.3', 'mmsegmentation>=1.2.2,<1.3', 'mmengine>=0.10,<0.11',
                      'mmcv>=2.0.0,<2.2.0', 'torch'],
    extras_require=dict(tests=['pytest']),
    classifiers=['Programming Language :: Python :: 3', 'Topic :: Scientific/Engineering :: Image Recognition'],
)
