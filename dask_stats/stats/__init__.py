"""The pure statistics: moments, quantiles, pixel histograms, records in lerobot's shapes, verification and frame
sampling.  Numbers in, numbers out: no I/O, no Dask."""
