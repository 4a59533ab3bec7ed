"""Building blocks to write and read LeRobot v3.0 datasets (layout, grouping, data, videos, metadata).

Each module does one job; its functions take picklable arguments (paths as strings, :class:`Store`) and
return small values, so they can be Dask tasks.  The format: ``docs/formats.md``; where we differ from lerobot's
converter: ``docs/differences.md``.
"""
