"""dask_stats: convert LeRobot v2.0 datasets to v2.1 by computing per-episode statistics on Dask."""

__version__ = "0.1.0"

from .check import check  # noqa: E402
from .convert import ConversionResult, convert  # noqa: E402
from .errors import DatasetError, Problem  # noqa: E402
from .roundtrip import HubConversion, convert_hub  # noqa: E402

__all__ = ["ConversionResult", "DatasetError", "HubConversion", "Problem", "check", "convert", "convert_hub", "__version__"]
