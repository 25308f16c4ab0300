"""Finding and loading configs: files, mmseg's stock configs and the plugin's own.

``mmseg::<algo>/<name>.py`` names a config shipped inside the installed mmseg and
``mmseg_keyprotect::<algo>/<name>.py`` one shipped inside this package, both as
package data under ``.mim/configs`` (the OpenMMLab layout), so they are found
from a wheel install as well as from a source checkout.
"""
from pathlib import Path
from typing import Union

from mmengine.config import Config

from ..errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def plugin_config_dir() -> Path:
    """The folder of the plugin's own configs (``configs/`` of the source tree).

    Raises:
        ConfigError: if neither the installed package data nor a source checkout holds them.
    """
    for candidate in (PACKAGE_ROOT / '.mim' / 'configs', PACKAGE_ROOT.parent / 'configs'):
        if any(candidate.glob('*/metafile.yaml')):
            return candidate
    raise ConfigError(f'the configs of mmseg_keyprotect are missing: neither {PACKAGE_ROOT / ".mim" / "configs"} '
                      'nor a source checkout holds them; reinstall the package')


def resolve_config_path(config: Union[str, Path]) -> str:
    """A config path, with ``mmseg::`` and ``mmseg_keyprotect::`` names mapped to the installed packages.

    Raises:
        ConfigError: if the file does not exist.
    """
    config = str(config)
    scope, separator, name = config.partition('::')
    if not separator:
        path = Path(config)
    elif scope == 'mmseg':
        import mmseg
        path = Path(mmseg.__file__).parent / '.mim' / 'configs' / name
    elif scope == 'mmseg_keyprotect':
        path = plugin_config_dir() / name
    else:
        raise ConfigError(f'config {config}: unknown scope {scope!r} (expected mmseg:: or mmseg_keyprotect::)')
    if not path.is_file():
        raise ConfigError(f'config file {config} does not exist' + (f' ({path})' if str(path) != config else ''))
    return str(path)


def load_config(config: Union[Config, str, Path]) -> Config:
    """A :class:`Config` from a path or a scoped name; a Config is returned as it is."""
    return config if isinstance(config, Config) else Config.fromfile(resolve_config_path(config))
