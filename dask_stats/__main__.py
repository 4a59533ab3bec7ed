"""``python -m dask_stats``: see :mod:`dask_stats.cli`."""

import logging
import os
import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while Python starts: one line, no traceback
    print("dask_stats: interrupted; nothing was committed", file=sys.stderr)
    os._exit(130)

if __name__ == "__main__":  # spawned worker processes import this module too
    code = main()
    # Everything is written and closed by now: skip the interpreter's teardown (freeing the ~2,000 modules of
    # dask, pandas and pyarrow takes 0.3 s, a tenth of a small conversion).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
