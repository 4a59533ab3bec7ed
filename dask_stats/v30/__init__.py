"""Building blocks to write and read LeRobot v3.0 datasets (layout, grouping, data, videos, metadata).

Each module does one job; its functions take picklable arguments (paths as strings, :class:`Store`) and
return small values, so they can be Dask tasks. Facts: ``docs/v30-reference.md``; decisions: ``decisions.md``.
"""
