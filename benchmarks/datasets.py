"""The benchmark datasets of issue 4, generated deterministically with ``dask_stats.sample``.

| name      | episodes x frames          | video                                   | parquet                   |
|-----------|----------------------------|-----------------------------------------|---------------------------|
| h264      | 60 x 80..140               | 2 cameras 480x640 h264 (libx264, g=2)   | state 15, action 7        |
| av1       | 6 x 900..1200, 30 fps      | 1 camera 480x640 AV1 (libsvtav1, g=2)   | default                   |
| numeric   | 2000 x 50..250             | none                                    | state 14, action 7        |
| long      | 1 x 10,000                 | 1 camera 480x640 AV1                    | default (memory only)     |

``sample.make_dataset`` builds every episode's frames in memory at once and decodes every video again
to compute ``stats.json``; at 480x640 that is gigabytes per long episode.  The generator below swaps in
an equivalent *lazy* frame source (identical pixels, produced one frame at a time) and skips the
decode-back when ``write_stats_json`` is False, so the 10,000-frame episode can be written in bounded
memory.  Datasets are cached under the given directory, keyed by their spec.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dask_stats import sample
from dask_stats.sample import Camera, SampleSpec, make_dataset

HW = (480, 640)


def _lengths(n: int, lo: int, hi: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(lo, hi + 1, n).tolist()


def specs() -> dict[str, SampleSpec]:
    h, w = HW
    return {
        "h264": SampleSpec(lengths=_lengths(60, 80, 140, 1),
                           cameras={"observation.images.top": Camera(h, w, "libx264", 2),
                                    "observation.images.wrist": Camera(h, w, "libx264", 2)},
                           state_dim=15, action_dim=7, seed=1, write_stats_json=False),
        "av1": SampleSpec(lengths=_lengths(6, 900, 1200, 2),
                          cameras={"observation.images.top": Camera(h, w, "libsvtav1", 2)},
                          seed=2, write_stats_json=False),
        "numeric": SampleSpec(lengths=_lengths(2000, 50, 250, 3), cameras={}, state_dim=14, action_dim=7,
                              seed=3, write_stats_json=True),
        "long": SampleSpec(lengths=[10_000], cameras={"observation.images.top": Camera(h, w, "libsvtav1", 2)},
                           seed=4, write_stats_json=False),
    }


class LazyFrames:
    """The frames of ``sample._frames(seed, length, height, width)``, computed one at a time (same pixels)."""

    def __init__(self, rng_seed: int, length: int, height: int, width: int):
        self.shape = (length, height, width, 3)
        self.seed = rng_seed

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        length, height, width, _ = self.shape
        rng = np.random.default_rng(self.seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
        for i in range(length):
            t = np.float32(i)
            channels = [127.5 + 120 * np.sin(xx / (5 + 3 * c) + yy / (7 + 2 * c) + phase[c] + t * (0.11 + 0.05 * c))
                        for c in range(3)]
            yield np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


@contextlib.contextmanager
def _bounded_memory(write_stats_json: bool):
    """Lazy frames (and no decode-back without stats.json) inside ``make_dataset``."""
    saved = sample._frames, sample.decode_all
    try:
        if not write_stats_json:
            sample._frames = LazyFrames
            sample.decode_all = lambda path: []
        yield
    finally:
        sample._frames, sample.decode_all = saved


def spec_key(spec: SampleSpec) -> str:
    payload = json.dumps(asdict(spec), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def ensure_dataset(name: str, cache: Path, log=print) -> Path:
    """The dataset ``name`` under ``cache`` (made on first use; remade when its spec changes)."""
    spec = specs()[name]
    root = Path(cache) / f"{name}-{spec_key(spec)}"
    done = root.with_name(root.name + ".complete")  # beside the dataset, not in it
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    log(f"[datasets] generating {name} ({len(spec.lengths)} episodes, {sum(spec.lengths)} frames) in {root}")
    with _bounded_memory(spec.write_stats_json):
        make_dataset(root, spec)
    done.write_text("")
    return root


if __name__ == "__main__":
    import sys
    import time

    cache = Path(sys.argv[1])
    for name in sys.argv[2:] or list(specs()):
        t0 = time.perf_counter()
        print(ensure_dataset(name, cache), f"{time.perf_counter() - t0:.1f} s", flush=True)
