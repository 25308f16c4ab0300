"""The experiments behind mmseg-keyprotect's documented numbers: the demo, the studies and the benchmarks.

Not part of the product wheel: a project of its own over mmseg-keyprotect's
public API, installed from a checkout (tools/install.sh does it); its command
lines are the scripts in tools/.
"""
from setuptools import setup

setup(
    name='mmseg-keyprotect-experiments',
    version='0.0.0',
    description="The experiments behind mmseg-keyprotect's documented numbers (installed from a checkout)",
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=['mmseg_keyprotect_experiments'],
    install_requires=['mmseg-keyprotect'],
    zip_safe=False,
)
