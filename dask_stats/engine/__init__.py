"""The engine: the Dask graph of a run (tasks), the one runner that computes it (retries, checkpoints, stall
watchdog, progress), the worker-side work (numeric partitions, video tasks) and its time guards."""
