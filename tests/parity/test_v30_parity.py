"""Parity tier for v3.0: the real lerobot releases (0.4.4 and the current 0.6.1) open v3.0 datasets.

Two releases, in their own environments (refenv.py): ``lerobot-0.4.x`` (0.4.4) and ``lerobot-0.6.1``, both on
Python 3.12 with the torch stack all the reference environments share.  Both load a dataset offline with
``LeRobotDataset(repo_id, root=dir)`` through ``reference/lerobot_v30_load.py`` and report what they see:
length, episodes, ``meta.stats``, the per-episode stats columns, and the first and last frame of every
episode (row values + every camera decoded by lerobot's default backend, as uint8 HWC).

Official path (runs today):  v2.0 fixture (dask_stats.synthetic) -> v2.1 with ``dask_stats.convert`` ->
v3.0 with lerobot 0.4.4's converter -> opened by 0.4.4 and by 0.6.1.  Checks the plumbing: length, stats
present, and every episode's first/last frame equal to the source v2.0 video frames decoded with PyAV.

Ours (skips until ``dask_stats.convert(..., to="v3.0", quantiles=...)`` exists):  v2.0 -> v3.0 in one
step, then both releases open it: length, per-episode stats and ``meta.stats`` (q01..q99 included) equal to
what we wrote, exact frames, and our ``meta/episodes`` equal to the official path's (indices exactly,
from/to timestamps within 1e-4 s).

Run: ``pytest -m parity tests/parity/test_v30_parity.py`` (the first run installs 0.4.x and 0.6.1 with
their shared torch, ~6 GB; see README.md).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from .conftest import REF04, REF061, ParityWorld, _tree_digest, our_convert
from .refenv import require_env, run_in_env

pytestmark = pytest.mark.parity

RELEASES = [REF04, REF061]
EXPECTED_VERSION = {REF04: "0.4.", REF061: "0.6.1"}
# None: lerobot's default decoder (torchcodec in both envs, as users get it); "pyav": its fallback when
# torchcodec does not load.
BACKENDS = [None, "pyav"]
REPO_ID = "local/dataset"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)  # lerobot's names: q01 q10 q50 q90 q99
BASIC_STATS = ("min", "max", "mean", "std", "count")
TIMESTAMP_ATOL = 1e-4  # lerobot's default tolerance_s: how far a query may be from a decoded frame
# Exact frames: lerobot's decoded pixels (round(x*255) of its float tensor) equal PyAV's decode of the
# source v2.0 episode video.  Measured: exact for h264 and AV1 with both torchcodec (0.5 and 0.11,
# Debian's FFmpeg 5.1) and pyav.  Raise only with a reason written here.
FRAME_ATOL = 0
V30_FIXTURE = "v30_mixed"


def _v30_specs() -> dict:
    from dask_stats.synthetic import Camera, SampleSpec

    # Small, but every kind of column: an h264 and an AV1 camera of different sizes (the v3.0 video files
    # concatenate per camera), a PNG image column in the Parquet, float32/float64 vectors, bool, int64.
    # No 1-frame episode, no string column: lerobot 0.4.4's converter fails on both.
    return {
        V30_FIXTURE: SampleSpec(
            lengths=[30, 45, 24], seed=31, image_column="observation.image",
            cameras={"observation.images.top": Camera(48, 64), "observation.images.wrist": Camera(32, 48, "libsvtav1")},
        ),
    }


class V30World(ParityWorld):
    """ParityWorld (fixture datasets, our v2.1, lerobot 0.4's converter) plus the v3.0 views."""

    def __init__(self, base: Path):
        super().__init__(base)
        self.specs = {**self.specs, **_v30_specs()}

    # -- the official two-step path ----------------------------------------------------------------
    def official_v30(self, name: str) -> Path:
        """v2.0 -> v2.1 (dask_stats.convert) -> v3.0 (lerobot 0.4.4's converter); the v3.0 root."""

        def make() -> Path:
            v21 = self.ours(name)
            report = self.v30(v21, f"official-{name}")
            root = Path(report["v30_root"])
            assert report["codebase_version"] == "v3.0", report["codebase_version"]
            return root

        return self._once(("official_v30", name), make)

    # -- ours --------------------------------------------------------------------------------------
    def ours_v30(self, name: str) -> Path:
        """``dask_stats.convert(v20, output=..., to="v3.0", quantiles=QUANTILES)``, or a skip."""

        def make() -> Path:
            convert = our_convert()
            require_v30_convert(convert)
            out = self.base / "ours_v30" / name
            if out.exists():
                shutil.rmtree(out)
            src = self.dataset(name)
            before = _tree_digest(src)
            result = convert(src, output=out, to="v3.0", quantiles=QUANTILES, quiet=True)
            assert _tree_digest(src) == before, "dask_stats.convert(output=...) modified its source dataset"
            root = Path(getattr(result, "output", out))
            info = json.loads((root / "meta" / "info.json").read_text())
            assert info["codebase_version"] == "v3.0", info["codebase_version"]
            return root

        return self._once(("ours_v30", name), make)

    # -- what a release sees ------------------------------------------------------------------------
    def view(self, env_name: str, dataset_dir: Path, backend: str | None = None, repo_id: str = REPO_ID) -> dict:
        return self._once(("view", env_name, str(dataset_dir), backend, repo_id),
                          lambda: lerobot_view(env_name, dataset_dir, repo_id, work=self.base / "views", env=self.env,
                                               backend=backend))

    def source_frames(self, name: str) -> dict:
        """{(camera, episode): (first, last)} uint8 HWC from the v2.0 source (PyAV / the PNG bytes)."""
        return self._once(("source_frames", name), lambda: source_frames(self.dataset(name)))


def lerobot_view(env_name: str, dataset_dir: Path, repo_id: str = REPO_ID, *, work: Path,
                 env: dict[str, str] | None = None, backend: str | None = None) -> dict:
    """What lerobot release ``env_name`` sees in the v3.0 dataset at ``dataset_dir`` (offline).

    ``backend``: None for lerobot's default video decoder (torchcodec when it loads), or "pyav".

    The report of reference/lerobot_v30_load.py with the decoded frames attached: ``report["pixels"]``
    maps "camera|position" to a uint8 HWC array.  Fails the test when the release cannot open the dataset;
    checks that opening it wrote nothing into the dataset directory.
    """
    require_env(env_name)
    dataset_dir = Path(dataset_dir)
    tag = f"{env_name}-{backend or 'default'}-{len(list(work.glob('*.json'))) if work.exists() else 0}"
    out = work / f"{tag}.json"
    before = _tree_digest(dataset_dir)
    proc = run_in_env(env_name, "reference/lerobot_v30_load.py", dataset_dir, out, "--repo-id", repo_id,
                      *(["--backend", backend] if backend else []), env=env, check=False, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"{env_name} could not open the v3.0 dataset {dataset_dir}:\n--- stdout ---\n"
                    f"{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}", pytrace=False)
    assert _tree_digest(dataset_dir) == before, f"{env_name}'s LeRobotDataset wrote into {dataset_dir}"
    report = json.loads(out.read_text())
    with np.load(report["npz"]) as npz:
        report["pixels"] = {k: npz[k] for k in npz.files}
    return report


def source_frames(root: Path) -> dict:
    """First and last frame of every episode of the v2.0 dataset at ``root``, as the source has them.

    Videos decoded with PyAV (``dask_stats.synthetic.decode_all``: every frame, rgb24), image columns from the
    PNG bytes in the Parquet.  Also the source rows (index, frame_index, timestamp, task).
    """
    from PIL import Image

    from dask_stats.synthetic import decode_all

    info = json.loads((root / "meta" / "info.json").read_text())
    tasks = {json.loads(x)["task_index"]: json.loads(x)["task"]
             for x in (root / "meta" / "tasks.jsonl").read_text().splitlines() if x.strip()}
    episodes = [json.loads(x) for x in (root / "meta" / "episodes.jsonl").read_text().splitlines() if x.strip()]
    out: dict = {"pixels": {}, "rows": {}}
    for ep in episodes:
        e = ep["episode_index"]
        chunk = e // info["chunks_size"]
        table = pq.read_table(root / info["data_path"].format(episode_chunk=chunk, episode_index=e)).to_pylist()
        for which, row in (("first", table[0]), ("last", table[-1])):
            out["rows"][(e, which)] = {"index": row["index"], "episode_index": row["episode_index"],
                                       "frame_index": row["frame_index"], "timestamp": row["timestamp"],
                                       "task_index": row["task_index"], "task": tasks[row["task_index"]]}
        for key, ft in info["features"].items():
            if ft["dtype"] == "video":
                frames = decode_all(root / info["video_path"].format(episode_chunk=chunk, video_key=key,
                                                                     episode_index=e))
                assert len(frames) == ep["length"], (key, e, len(frames), ep["length"])
                out["pixels"][(key, e)] = (frames[0], frames[-1])
            elif ft["dtype"] == "image":
                def png(cell):
                    return np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))
                out["pixels"][(key, e)] = (png(table[0][key]), png(table[-1][key]))
    return out


_V30_SUPPORT: dict = {}


def require_v30_convert(convert) -> None:
    """Skip while ``dask_stats.convert`` does not take ``to="v3.0"`` / ``quantiles=`` (checked on a tiny dataset)."""
    if "reason" not in _V30_SUPPORT:
        import inspect
        import tempfile

        reason = None
        params = inspect.signature(convert).parameters
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if not takes_kwargs and not {"to", "quantiles"} <= set(params):
            reason = "dask_stats.convert has no `to`/`quantiles` parameters"
        else:
            from dask_stats.synthetic import Camera, SampleSpec, make_dataset

            with tempfile.TemporaryDirectory(prefix="v30probe-") as tmp:
                src = make_dataset(Path(tmp) / "src", SampleSpec(lengths=[3, 2], cameras={"observation.images.top":
                                                                                     Camera(16, 16)}, seed=1))
                try:
                    convert(src, output=Path(tmp) / "out", to="v3.0", quantiles=QUANTILES, quiet=True)
                except (TypeError, NotImplementedError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # e.g. DatasetError("unknown target version")
                    if "v3.0" in str(exc) or "to=" in str(exc) or "quantile" in str(exc):
                        reason = f"{type(exc).__name__}: {exc}"
                    else:
                        raise
        _V30_SUPPORT["reason"] = reason
    if _V30_SUPPORT["reason"]:
        pytest.skip("dask_stats.convert(..., to='v3.0', quantiles=...) is not available yet "
                    f"({_V30_SUPPORT['reason']}): the v3.0 comparison with ours is pending")


# The session fixture ``v30world`` (a V30World) is in conftest.py: test_v30_features_parity.py shares it.


# --------------------------------------------------------------------------------------------------
# Checks shared by the official path and ours
# --------------------------------------------------------------------------------------------------

def check_opens(view: dict, env_name: str, src_info: dict, lengths: list[int]) -> None:
    assert view["lerobot"].startswith(EXPECTED_VERSION[env_name]), view["lerobot"]
    assert view["codebase_version"] == "v3.0"
    total = sum(lengths)
    assert view["len"] == total == src_info["total_frames"]
    assert view["num_frames"] == total
    assert view["num_episodes"] == len(lengths) == src_info["total_episodes"]
    assert [e["length"] for e in view["episodes"]] == lengths
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    assert [e["dataset_from_index"] for e in view["episodes"]] == starts
    assert [e["dataset_to_index"] for e in view["episodes"]] == [s + n for s, n in zip(starts, lengths)]
    assert view["video_backend"] in ("torchcodec", "pyav"), view["video_backend"]
    stats = view["stats"]
    assert stats, "meta.stats is empty"
    for key in src_info["features"]:
        assert key in stats, f"meta.stats has no {key!r}: {sorted(stats)}"
        for stat in BASIC_STATS:
            assert stat in stats[key], f"meta.stats[{key!r}] has no {stat!r}: {sorted(stats[key])}"
    assert len(view["episodes_stats"]) == len(lengths)
    check_quiet(view)


def check_quiet(view: dict) -> None:
    """lerobot said nothing at WARNING or above (0.6.1 warns, e.g., about v2.x fields left in info.json:
    "Unknown fields in DatasetInfo: ['total_chunks', ...]")."""
    loud = [f"{r['level']} {r['logger']}: {r['message']}" for r in view["log"] if r["level"] in ("WARNING", "ERROR",
                                                                                                "CRITICAL")]
    loud += [w for w in view["warnings"] if not w.startswith(("DeprecationWarning", "FutureWarning"))]
    assert not loud, f"{view['lerobot']} warned while opening the dataset:\n" + "\n".join(loud)


def check_frames(view: dict, source: dict, src_info: dict) -> None:
    """First/last row values and decoded pixels of every episode equal the v2.0 source's."""
    cameras = [k for k, ft in src_info["features"].items() if ft["dtype"] in ("video", "image")]
    assert sorted(view["camera_keys"]) == sorted(cameras)
    problems = []
    seen = 0
    for rec in view["frames"]:
        e, which, pos = rec["episode"], rec["which"], rec["position"]
        if "error" in rec:
            problems.append(f"episode {e} {which} frame (position {pos}): {rec['error']}")
            continue
        want = source["rows"][(e, which)]
        got = rec["row"]
        for k in ("index", "episode_index", "frame_index", "task_index"):
            if got[k] != want[k]:
                problems.append(f"episode {e} {which}: {k} {got[k]} != source {want[k]}")
        if got["index"] != pos:
            problems.append(f"episode {e} {which}: index {got['index']} != row position {pos}")
        if np.float32(got["timestamp"]) != np.float32(want["timestamp"]):
            problems.append(f"episode {e} {which}: timestamp {got['timestamp']} != source {want['timestamp']}")
        if rec["task"] != want["task"]:
            problems.append(f"episode {e} {which}: task {rec['task']!r} != source {want['task']!r}")
        for key in cameras:
            cam = rec["cameras"].get(key, {"error": "missing"})
            if "error" in cam:
                problems.append(f"episode {e} {which} {key}: {cam['error']}")
                continue
            if cam["max_rounding"] > 1e-3:
                problems.append(f"episode {e} {which} {key}: x*255 is {cam['max_rounding']} off an integer")
            got_px = view["pixels"][cam["npz"]]
            want_px = source["pixels"][(key, e)][0 if which == "first" else 1]
            if got_px.shape != want_px.shape:
                problems.append(f"episode {e} {which} {key}: shape {got_px.shape} != source {want_px.shape}")
                continue
            diff = np.abs(got_px.astype(np.int16) - want_px.astype(np.int16))
            if diff.max() > FRAME_ATOL:
                problems.append(f"episode {e} {which} {key}: pixels differ from the source (max {diff.max()}, "
                                f"{int((diff > 0).sum())} of {diff.size} values)")
            seen += 1
    assert len(view["frames"]) == 2 * src_info["total_episodes"]
    assert not problems, f"{view['lerobot']} ({view['video_backend']}):\n" + "\n".join(problems)
    assert seen == 2 * src_info["total_episodes"] * len(cameras)


# --------------------------------------------------------------------------------------------------
# The official path: v2.0 -> v2.1 (ours) -> v3.0 (lerobot 0.4.4) -> 0.4.4 and 0.6.1 open it
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("release", RELEASES)
def test_v30_official_opens(v30world, release):
    root = v30world.official_v30(V30_FIXTURE)
    view = v30world.view(release, root)
    check_opens(view, release, v30world.info(V30_FIXTURE), v30world.specs[V30_FIXTURE].lengths)
    # The official converter has no quantiles to give (v2.1 has none).
    assert not any(q in view["stats"]["observation.state"] for q in QUANTILE_KEYS)


@pytest.mark.parametrize("made_by", ["official", "ours"])
@pytest.mark.parametrize("backend", BACKENDS, ids=["default", "pyav"])
@pytest.mark.parametrize("release", RELEASES)
def test_v30_frames_equal_source(v30world, release, backend, made_by):
    """The first and last frame of every episode, as lerobot decodes them, are exactly the source's: in the
    official two-step path's output and in ours."""
    root = (v30world.official_v30 if made_by == "official" else v30world.ours_v30)(V30_FIXTURE)
    view = v30world.view(release, root, backend)
    if backend:
        assert view["video_backend"] == backend
    check_frames(view, v30world.source_frames(V30_FIXTURE), v30world.info(V30_FIXTURE))


def test_v30_official_same_view_in_both_releases(v30world):
    """0.4.4 and 0.6.1 read the same metadata and decode the same pixels from one dataset."""
    root = v30world.official_v30(V30_FIXTURE)
    a, b = (v30world.view(r, root) for r in RELEASES)
    assert a["stats"] == b["stats"]
    assert a["episodes_stats"] == b["episodes_stats"]
    assert a["episodes"] == b["episodes"]
    assert a["tasks"] == b["tasks"]
    assert sorted(a["pixels"]) == sorted(b["pixels"])
    for k in a["pixels"]:
        np.testing.assert_array_equal(a["pixels"][k], b["pixels"][k], err_msg=k)


# --------------------------------------------------------------------------------------------------
# Ours: dask_stats.convert(v2.0, to="v3.0", quantiles=...) -> 0.4.4 and 0.6.1 open it
# --------------------------------------------------------------------------------------------------

def read_our_episodes(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


def our_episode_stats(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        rec: dict = {}
        for col, val in row.items():
            if col.startswith("stats/"):
                feat, stat = col[len("stats/"):].rsplit("/", 1)
                rec.setdefault(feat, {})[stat] = val
        out.append({"episode_index": row["episode_index"], "stats": rec})
    return out


def assert_same_numbers(got, want, where: str) -> None:
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert g.size == w.size, f"{where}: {g.shape} vs ours {w.shape}"
    np.testing.assert_array_equal(g.reshape(-1), w.reshape(-1), err_msg=where)


@pytest.mark.parametrize("release", RELEASES)
def test_v30_ours_opens(v30world, release):
    root = v30world.ours_v30(V30_FIXTURE)
    view = v30world.view(release, root)
    check_opens(view, release, v30world.info(V30_FIXTURE), v30world.specs[V30_FIXTURE].lengths)


@pytest.mark.parametrize("release", RELEASES)
def test_v30_ours_stats_as_written(v30world, release):
    """meta.stats (quantiles included) and the per-episode stats columns are exactly what we wrote."""
    root = v30world.ours_v30(V30_FIXTURE)
    view = v30world.view(release, root)
    ours = json.loads((root / "meta" / "stats.json").read_text())
    assert set(view["stats"]) == set(ours)
    for feat, stats in ours.items():
        for q in QUANTILE_KEYS:
            assert q in stats, f"our stats.json has no {q} for {feat!r}"
            assert q in view["stats"][feat], f"{view['lerobot']}: meta.stats[{feat!r}] has no {q}"
        for stat, value in stats.items():
            assert_same_numbers(view["stats"][feat][stat], value, f"meta.stats[{feat!r}][{stat!r}]")
    our_eps = our_episode_stats(read_our_episodes(root))
    assert [e["episode_index"] for e in view["episodes_stats"]] == [e["episode_index"] for e in our_eps]
    for got, want in zip(view["episodes_stats"], our_eps):
        assert set(got["stats"]) == set(want["stats"]), got["episode_index"]
        for feat, stats in want["stats"].items():
            assert set(got["stats"][feat]) == set(stats), (got["episode_index"], feat)
            assert set(QUANTILE_KEYS) <= set(stats), (got["episode_index"], feat, sorted(stats))
            for stat, value in stats.items():
                assert_same_numbers(got["stats"][feat][stat], value,
                                    f"episode {got['episode_index']} stats/{feat}/{stat}")


def test_v30_ours_episodes_match_official(v30world):
    """Our meta/episodes locates every episode where the official two-step path does."""
    ours_root = v30world.ours_v30(V30_FIXTURE)
    official_root = v30world.official_v30(V30_FIXTURE)
    ours, official = read_our_episodes(ours_root), read_our_episodes(official_root)
    assert len(ours) == len(official)
    our_info = json.loads((ours_root / "meta" / "info.json").read_text())
    off_info = json.loads((official_root / "meta" / "info.json").read_text())
    exact = ["episode_index", "length", "dataset_from_index", "dataset_to_index", "data/chunk_index",
             "data/file_index"]
    videos = [k for k, ft in off_info["features"].items() if ft["dtype"] == "video"]
    same_video_limits = (our_info.get("video_files_size_in_mb") == off_info.get("video_files_size_in_mb")
                         and our_info.get("chunks_size") == off_info.get("chunks_size"))
    if same_video_limits:
        exact += [f"videos/{k}/{c}" for k in videos for c in ("chunk_index", "file_index")]
    problems = []
    for a, b in zip(ours, official):
        e = b["episode_index"]
        for col in exact:
            if a.get(col) != b.get(col):
                problems.append(f"episode {e} {col}: ours {a.get(col)} != official {b.get(col)}")
        if list(a.get("tasks", [])) != list(b.get("tasks", [])):
            problems.append(f"episode {e} tasks: ours {a.get('tasks')} != official {b.get('tasks')}")
        for k in videos:
            for col in ("from_timestamp", "to_timestamp"):
                name = f"videos/{k}/{col}"
                if name not in a or abs(a[name] - b[name]) > TIMESTAMP_ATOL:
                    problems.append(f"episode {e} {name}: ours {a.get(name)} vs official {b[name]} "
                                    f"(tolerance {TIMESTAMP_ATOL})")
    assert not problems, "\n".join(problems)
