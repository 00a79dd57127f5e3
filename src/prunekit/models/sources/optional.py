"""Importing a source's optional library, with one line naming the extra to install when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from prunekit.errors import PrunekitError


def require(module: str, extra: str, for_name: str) -> ModuleType:
    """``import module``; if that fails, a PrunekitError saying ``pip install 'prunekit[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        if err.name in (None, top) or (err.name or "").startswith(top + "."):
            raise PrunekitError(f"{for_name} needs the {top} package, which is not installed: "
                                f"pip install 'prunekit[{extra}]'") from None
        raise PrunekitError(f"{for_name}: {top} is installed but cannot be imported ({err}): reinstall it with "
                            f"pip install 'prunekit[{extra}]'") from None
