"""Warnings of the OpenMMLab stack that no user of this plugin can act on, kept out of the tools' output.

They are emitted on every run whatever the config says: setuptools' notice
that mmengine imports ``pkg_resources``, and mmseg's notices about its own
loss builder and loss default. Importing the plugin filters exactly these
messages; a process started with warning options of its own (``python -W
default``, ``$PYTHONWARNINGS``) sees everything.
"""
import sys
import warnings

#: (message prefix, module that issues it) of each warning filtered; None: any module.
STACK_WARNINGS = (
    ('pkg_resources is deprecated as an API', None),
    ('``build_loss`` would be deprecated soon', r'mmseg\.models\.builder'),
    ('Default ``avg_non_ignore`` is False', r'mmseg\.models\.losses\.cross_entropy_loss'),
)


def quiet_stack_warnings() -> None:
    """Filter :data:`STACK_WARNINGS`, unless the process was started with warning options."""
    if sys.warnoptions:
        return
    for message, module in STACK_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=UserWarning, module=module or '')
