"""dask_stats: convert LeRobot v2.0 datasets to v2.1 by computing per-episode statistics on Dask.

The public names below are imported on first use (module ``__getattr__``), so that ``import dask_stats`` and
``python -m dask_stats --help`` do not pay for importing dask, distributed, pandas and PyAV.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> the submodule that defines it
_LAZY = {"check": "check", "convert": "convert", "doctor": "doctor",
         "ConversionResult": "convert", "DatasetError": "errors",
         "Problem": "errors", "convert_hub": "roundtrip", "HubConversion": "roundtrip"}

__all__ = ["ConversionResult", "DatasetError", "HubConversion", "Problem", "check", "convert", "convert_hub", "doctor",
           "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``dask_stats.check`` and ``dask_stats.convert`` are the functions, as with eager imports: when the
    submodules of the same names are first imported, the import system binds them on the package; skip that
    (they stay in ``sys.modules``), so that the functions are found by ``__getattr__``."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
