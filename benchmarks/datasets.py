"""The benchmark datasets, generated deterministically with ``dask_stats.synthetic``.

| name      | episodes x frames          | video                                   | parquet                   |
|-----------|----------------------------|-----------------------------------------|---------------------------|
| h264      | 60 x 80..140               | 2 cameras 480x640 h264 (libx264, g=2)   | state 15, action 7        |
| av1       | 6 x 900..1200, 30 fps      | 1 camera 480x640 AV1 (libsvtav1, g=2)   | default                   |
| numeric   | 2000 x 50..250             | none                                    | state 14, action 7        |
| long      | 1 x 10,000                 | 1 camera 480x640 AV1                    | default (memory only)     |
| droid     | 40 x 240..260              | 3 cameras 180x320 h264 (libx264, g=2)   | state 8, action 7         |
| droid-av1 | 40 x 240..260              | 3 cameras 180x320 AV1 (libsvtav1, g=2)  | state 8, action 7         |
| tiny      | 20,000 x 20..40 (replicas) | 2 cameras 32x32 h264, hard links        | state 6, action 4         |
| client-N  | N x 20..40 (replicas)      | 3 cameras 32x32 h264, hard links        | state 6, action 4         |
| mini      | 3 x 20..45                 | 2 cameras 48x64 / 32x64 h264            | default (smoke test)      |

The replicated sets (``ensure_replicated``) are made cheaply: one small dataset with one episode per
distinct length is encoded with ``make_dataset`` (21 episodes), then every episode of the big set hard-links
the videos of the template episode of its length and gets its own Parquet file (the template's table with
its own ``episode_index`` and ``index``).  A smaller set hard-links the files of the first N episodes of the
100,000-episode set of its kind when that one exists.

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
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dask_stats import synthetic as sample
from dask_stats.synthetic import Camera, SampleSpec, make_dataset

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
        # DROID-like: 3 cameras (2 exterior, 1 wrist) at 320x180, ~250 frames per episode, 15 fps
        "droid": _droid("libx264"),
        "droid-av1": _droid("libsvtav1"),
        # a few seconds of work: for the smoke test of every row kind
        "mini": SampleSpec(lengths=[30, 45, 20], seed=8, write_stats_json=True),
    }


def _droid(codec: str) -> SampleSpec:
    cams = ("observation.images.exterior_1_left", "observation.images.exterior_2_left",
            "observation.images.wrist_left")
    return SampleSpec(lengths=_lengths(40, 240, 260, 5), fps=15, cameras={k: Camera(180, 320, codec, 2) for k in cams},
                      state_dim=8, action_dim=7, seed=5, write_stats_json=False)


# -- replicated sets: many episodes, few distinct videos --------------------------------------------
REPLICATED = {  # name: (cameras, frame size, lengths)
    "tiny": (("observation.images.top", "observation.images.wrist"), (32, 32), (20, 40)),
    "client": (("observation.images.top", "observation.images.wrist", "observation.images.side"), (32, 32),
               (20, 40)),
}


def ensure_replicated(kind: str, episodes: int, cache: Path, log=print) -> Path:
    """The ``kind`` set (``REPLICATED``) with ``episodes`` episodes under ``cache`` (made on first use)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dask_stats.formats.v2.layout import DATA_PATH, VIDEO_PATH

    cameras, (height, width), (lo, hi) = REPLICATED[kind]
    root = Path(cache) / f"{kind}-{episodes}"
    done = root.with_name(root.name + ".complete")
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    distinct = list(range(lo, hi + 1))
    spec = SampleSpec(lengths=distinct, cameras={k: Camera(height, width, "libx264", 2) for k in cameras},
                      float64_vector=False, seed=6, write_stats_json=False)
    template = Path(cache) / f"{kind}-template-{spec_key(spec)}"
    if not template.with_name(template.name + ".complete").exists():
        if template.exists():
            shutil.rmtree(template)
        make_dataset(template, spec)
        template.with_name(template.name + ".complete").write_text("")
    parent = Path(cache) / f"{kind}-100000"  # a smaller set links the files of the 100,000-episode one, if made
    if episodes > 100_000 or not parent.with_name(parent.name + ".complete").exists():
        parent = None
    log(f"[datasets] generating {kind} ({episodes} episodes x {len(cameras)} cameras) in {root}")
    info = json.loads((template / "meta/info.json").read_text())
    chunks = info["chunks_size"]
    lengths = _lengths(episodes, lo, hi, 7)
    tables = {length: pq.read_table(template / DATA_PATH.format(episode_chunk=0, episode_index=t))
              for t, length in enumerate(distinct)}
    made_dirs: set[Path] = set()
    offset = 0
    for ep, length in enumerate(lengths):
        chunk = ep // chunks
        data = root / DATA_PATH.format(episode_chunk=chunk, episode_index=ep)
        targets = [data] + [root / VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=ep)
                            for key in cameras]
        for path in targets:
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
        t = distinct.index(length)
        if parent is not None:
            for path in targets:
                os.link(parent / path.relative_to(root), path)
        else:
            table = tables[length]
            table = table.set_column(table.schema.get_field_index("episode_index"), "episode_index",
                                     pa.array(np.full(length, ep, np.int64)))
            table = table.set_column(table.schema.get_field_index("index"), "index",
                                     pa.array(np.arange(offset, offset + length, dtype=np.int64)))
            pq.write_table(table, data)
            for key, path in zip(cameras, targets[1:]):
                os.link(template / VIDEO_PATH.format(episode_chunk=0, video_key=key, episode_index=t), path)
        offset += length
    tasks = [json.loads(line) for line in (template / "meta/tasks.jsonl").read_text().splitlines()]
    info.update(total_episodes=episodes, total_frames=offset, total_videos=episodes * len(cameras),
                total_chunks=-(-episodes // chunks), splits={"train": f"0:{episodes}"})
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": ep, "tasks": [tasks[ep % len(tasks)]["task"]], "length": length}) + "\n"
        for ep, length in enumerate(lengths)))
    done.write_text("")
    return root


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
    for name in sys.argv[2:] or list(specs()):  # "tiny-20000", "client-100000": replicated sets
        t0 = time.perf_counter()
        kind, _, n = name.partition("-")
        path = ensure_replicated(kind, int(n), cache) if kind in REPLICATED else ensure_dataset(name, cache)
        print(path, f"{time.perf_counter() - t0:.1f} s", flush=True)
