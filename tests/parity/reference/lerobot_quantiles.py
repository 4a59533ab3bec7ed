"""lerobot's own quantile estimates (5000-bin histograms) and its stats.json aggregation, on given arrays.

Runs INSIDE the lerobot-0.6.1 reference environment (tests/parity/refenv.py).

    python lerobot_quantiles.py IN_NPZ OUT_JSON

IN_NPZ holds one array per (feature, episode), named ``"<kind>|<feature>|<episode>"``:

- kind ``num``: an episode's rows of a numeric feature, shape (L,) or (L, D), in their own dtype;
- kind ``pix``: an episode's sampled frames of a camera, uint8 (S, H, W, C).

Each goes through lerobot's ``get_feature_stats`` exactly as ``compute_episode_stats`` calls it (``num``:
axis 0, keepdims for 1-d data; ``pix``: CHW, axes (0, 2, 3), keepdims, then / 255 and the leading axis
squeezed), without lerobot's own frame sampling / downsampling, so both sides see the same values.  Then the
per-episode results of each feature go through lerobot's ``aggregate_stats`` (what it writes to stats.json:
count-weighted means of the per-episode quantiles).

OUT_JSON: ``{"lerobot": version, "episodes": {name: stats}, "aggregated": {feature: stats},
"num_quantile_bins": bins}`` with every array as nested lists.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from _common import jsonable, run, write_report  # noqa: E402 - next to this script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("in_npz", type=Path)
    parser.add_argument("out_json", type=Path)
    args = parser.parse_args()

    import lerobot
    import numpy as np
    from lerobot.datasets.compute_stats import RunningQuantileStats, aggregate_stats, get_feature_stats

    bins = inspect.signature(RunningQuantileStats.__init__).parameters["num_quantile_bins"].default
    episodes: dict[str, dict] = {}
    per_feature: dict[str, list[tuple[int, dict]]] = {}
    with np.load(args.in_npz) as npz:
        for name in npz.files:
            kind, feature, episode = name.split("|")
            array = npz[name]
            if kind == "num":
                stats = get_feature_stats(array, axis=0, keepdims=array.ndim == 1)
            elif kind == "pix":
                chw = np.ascontiguousarray(array.transpose(0, 3, 1, 2))
                stats = get_feature_stats(chw, axis=(0, 2, 3), keepdims=True)
                stats = {k: v if k == "count" else np.squeeze(v / 255.0, axis=0) for k, v in stats.items()}
            else:
                raise ValueError(f"unknown kind {kind!r} in {name!r}")
            episodes[name] = stats
            per_feature.setdefault(feature, []).append((int(episode), stats))
    aggregated = {}
    for feature, items in per_feature.items():
        items.sort(key=lambda item: item[0])
        aggregated[feature] = aggregate_stats([{feature: s} for _, s in items])[feature]
    out = {"lerobot": lerobot.__version__, "num_quantile_bins": bins, "episodes": jsonable(episodes),
           "aggregated": jsonable(aggregated)}
    write_report(out, args.out_json, ("lerobot", "num_quantile_bins"))
    return 0


if __name__ == "__main__":
    run(main)
