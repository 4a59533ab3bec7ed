"""Record a small dataset the way ``lerobot-record`` does: ``LeRobotDataset.create(...)`` + ``add_frame`` +
``save_episode`` + ``finalize``, offline, with deterministic frames.

Runs INSIDE the lerobot-0.6.1 reference environment (tests/parity/refenv.py).

    python lerobot_record.py OUT_ROOT OUT_JSON --kind depth [--lengths 40,120]

Kinds (each adds its features to ``observation.state`` (float32, 3) and ``action`` (float32, 2)):

- ``image``: ``observation.images.rgb`` (``dtype: image``, 24x32x3 uint8): PNG images stored in the Parquet;
- ``language``: lerobot's two ``language`` columns (``language_persistent``, ``language_events``; filled by its
  annotation pipeline, empty at record time);
- ``depth``: two depth cameras (``info.is_depth_map``), 24x32x1: ``observation.images.depth_mm`` fed uint16
  millimetres and ``observation.images.depth_m`` fed float32 metres (lerobot infers ``depth_unit`` from the dtype);
  lerobot's default depth encoder (HEVC gray12le, log-quantized between 0.01 m and 10 m, shift 3.5 m).

Every recorded frame of each camera goes to OUT_JSON's sibling ``.npz`` as ``<feature>|<episode>`` (the raw frames,
before lerobot quantizes them).  OUT_JSON: ``{"lerobot": version, "features": info.json's features, "lengths"}``;
the per-episode stats lerobot computed are in OUT_ROOT's ``meta/episodes`` (read by the test).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import run, write_report  # next to this script

HEIGHT, WIDTH = 24, 32


def depth_metres(episode: int, length: int):
    """(length, H, W, 1) float depth in metres: a tilted plane moving away (0.4 m .. 2.5 m), with noise."""
    import numpy as np

    rng = np.random.default_rng(100 + episode)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    t = np.arange(length)[:, None, None] / max(length - 1, 1)
    depth = 0.4 + 1.2 * t + 0.02 * rows + 0.01 * cols + rng.uniform(0, 0.05, (length, HEIGHT, WIDTH))
    return depth[..., None]


def depth_features() -> dict:
    return {key: {"dtype": "video", "shape": (HEIGHT, WIDTH, 1), "names": ["height", "width", "channels"],
                  "info": {"is_depth_map": True}}
            for key in ("observation.images.depth_mm", "observation.images.depth_m")}


def depth_frame(metres) -> dict:
    import numpy as np

    return {"observation.images.depth_mm": np.rint(metres * 1000).astype(np.uint16),
            "observation.images.depth_m": metres.astype(np.float32)}


def rgb_frames(episode: int, length: int):
    """(length, H, W, 3) uint8 frames: colour ramps over the episode, with noise."""
    import numpy as np

    rng = np.random.default_rng(200 + episode)
    t = np.arange(length)[:, None, None, None] / max(length - 1, 1)
    base = np.array([40, 120, 200])[None, None, None, :] + np.array([150, -80, -30]) * t
    return np.clip(base + rng.normal(0, 25, (length, HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)


def image_features() -> dict:
    return {"observation.images.rgb": {"dtype": "image", "shape": (HEIGHT, WIDTH, 3),
                                       "names": ["height", "width", "channels"]}}


def language_features() -> dict:
    from lerobot.datasets.language import language_feature_info

    return language_feature_info()


KINDS = {
    "depth": (depth_features, depth_metres, depth_frame),
    "image": (image_features, rgb_frames, lambda frame: {"observation.images.rgb": frame}),
    "language": (language_features, lambda e, n: [None] * n,
                 lambda frame: {"language_persistent": None, "language_events": None}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_root", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("--kind", choices=sorted(KINDS), required=True)
    parser.add_argument("--lengths", default="40,120")
    args = parser.parse_args()

    import lerobot
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    make_features, make_episode, make_frame = KINDS[args.kind]
    lengths = [int(x) for x in args.lengths.split(",")]
    features = {"observation.state": {"dtype": "float32", "shape": (3,), "names": ["a", "b", "c"]},
                "action": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]}, **make_features()}
    dataset = LeRobotDataset.create(repo_id="local/recorded", fps=30, features=features, root=args.out_root,
                                    use_videos=True, image_writer_threads=0)
    raw: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(7)
    for e, n in enumerate(lengths):
        episode = make_episode(e, n)
        kept: dict[str, list] = {}
        for i in range(n):
            frame = make_frame(episode[i])
            for key, value in frame.items():
                if value is not None:
                    kept.setdefault(key, []).append(value)
            dataset.add_frame({**frame, "task": f"task {e % 2}",
                               "observation.state": rng.normal(size=3).astype(np.float32),
                               "action": rng.normal(size=2).astype(np.float32)})
        dataset.save_episode()
        raw.update({f"{key}|{e}": np.stack(values) for key, values in kept.items()})
    dataset.finalize()
    np.savez(args.out_json.with_suffix(".npz"), **raw)
    out = {"lerobot": lerobot.__version__, "features": dataset.meta.features, "lengths": lengths}
    write_report(out, args.out_json, ("lerobot", "lengths"))
    return 0


if __name__ == "__main__":
    run(main)
