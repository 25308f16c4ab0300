"""Settings read from the signature that defines them, so that no default is written twice."""
import inspect
from typing import Any, Dict

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def own_arguments(cls: type) -> Dict[str, Any]:
    """The named arguments of ``cls.__init__`` (not its parent's, which arrive through ``**kwargs``), with
    their defaults."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.name != 'self' and p.kind not in _VARIADIC}
