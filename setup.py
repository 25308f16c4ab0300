"""mmseg-keyprotect: key-based protection of MMSegmentation models.

The OpenMMLab stack is pinned in requirements/runtime.txt and installed by
tools/install.sh (mmcv must be compiled against the installed torch, which pip
alone cannot order), so install_requires only states what this package imports.

Like mmseg, a wheel carries the configs and tools as package data under
``mmseg_keyprotect/.mim/``; an editable install reads them from the checkout.
The experiments behind the docs' numbers are not part of the product: they
are a project of their own in tools/experiments/, installed from a checkout.
"""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
version = {}
exec((ROOT / 'mmseg_keyprotect' / 'version.py').read_text(), version)


class BuildPyWithMim(build_py):
    """build_py that also copies configs/ and tools/ into the built package's .mim folder."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = Path(self.build_lib) / 'mmseg_keyprotect' / '.mim'
        for name in ('configs', 'tools'):
            shutil.copytree(ROOT / name, mim / name, dirs_exist_ok=True, ignore=_not_product)


def _not_product(folder: str, names: list) -> list:
    """What a wheel leaves out of the tools: caches, the experiments, and the tools that run them."""
    def runs_experiments(name: str) -> bool:
        path = Path(folder) / name
        return path.suffix == '.py' and 'mmseg_keyprotect_experiments' in path.read_text(encoding='utf-8')
    return [name for name in names
            if name in ('__pycache__', 'experiments') or name.endswith('.pyc') or runs_experiments(name)]


setup(
    name='mmseg-keyprotect',
    version=version['__version__'],
    description='Protect MMSegmentation models with block-wise image encryption and a secret key',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['mmseg_keyprotect', 'mmseg_keyprotect.*']),
    cmdclass={'build_py': BuildPyWithMim},
    install_requires=['numpy', 'pyffx>=0.3', 'cryptography>=42', 'mmsegmentation>=1.2.2,<1.3', 'mmengine>=0.10,<0.11',
                      'mmcv>=2.0.0,<2.2.0', 'torch', 'pyyaml'],
    extras_require=dict(tests=['pytest', 'ruff', 'hypothesis']),
    classifiers=['Programming Language :: Python :: 3', 'Topic :: Scientific/Engineering :: Image Recognition',
                 'License :: OSI Approved :: Apache Software License'],
    zip_safe=False,
)
