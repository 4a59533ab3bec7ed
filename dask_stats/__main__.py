import gc
import logging
import os
import sys

# Importing dask, distributed, pandas and pyarrow creates millions of objects and no garbage: the cyclic
# collector only costs time there (0.1-0.2 s). Collect nothing while importing, then set the imported
# objects aside (gc.freeze) so that later collections do not scan them again.
gc.disable()
try:
    from .cli import main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while the libraries load: one line, no traceback
    print("dask_stats: interrupted; nothing was committed", file=sys.stderr)
    os._exit(130)

gc.freeze()
gc.enable()

if __name__ == "__main__":  # spawned worker processes import this module too
    code = main()
    # Everything is written and closed by now: skip the interpreter's teardown (freeing the ~2,000 modules of
    # dask, pandas and pyarrow takes 0.3 s, a tenth of a small conversion).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
