"""Session fixtures of the parity tier: fixture datasets, reference runs and our conversions, each made once.

The tier is selected with ``pytest -m parity`` (or DASK_STATS_PARITY=1).  Outside CI a plain ``pytest``
run skips it, because its first run installs three lerobot releases (~7 GB with their shared torch) into
``~/.cache/dask_stats/refenv``.  In CI (``CI=true``) it always runs, and an environment that cannot be
installed fails the tier loudly instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .compare import read_jsonl
from .expected import straightforward_stats
from .refenv import RefEnvError, in_ci, prefetch, require_env, run_in_env

REF033 = "lerobot-0.3.3"
REF04 = "lerobot-0.4.x"
REF061 = "lerobot-0.6.1"  # the current release (Python 3.12): test_v30_parity.py


def _fixture_specs() -> dict:
    from dask_stats.synthetic import Camera, SampleSpec

    # Episode 0 is the longest in "h264" and "av1": there the official converter's global-row
    # timestamps (reference.md §2.3 step 3) coincide with each episode's own, so its output is right and
    # ours must match it.  No 1-frame episode and no string column: the official converter crashes on both.
    return {
        # Proof 1 with our pyav and decord backends: 2 h264 cameras of different sizes, float64 vector,
        # bool, int64, an image column in the Parquet.  Widths 64 and 56: decord 0.6.0 cannot decode
        # 48-pixel-wide frames ("Check failed: from_size == to_size (6144 vs. 4608)"), whatever the codec.
        "h264": SampleSpec(
            lengths=[150, 40, 90], seed=11, image_column="observation.image",
            cameras={"observation.images.top": Camera(48, 64), "observation.images.wrist": Camera(40, 56)},
        ),
        # Proof 1, pyav only (decord cannot read AV1): 2 AV1 cameras (libsvtav1, LeRobot's default codec),
        # and variable-size list<float> vector columns as some real datasets have.
        "av1": SampleSpec(
            lengths=[120, 60, 101], seed=12, fixed_size_lists=False,
            cameras={
                "observation.images.top": Camera(48, 64, "libsvtav1"),
                "observation.images.wrist": Camera(32, 48, "libsvtav1"),
            },
        ),
        # Proof 2: episode 0 is NOT the longest.  Its videos are re-encoded with a brightness ramp over
        # each episode (see _ramp_videos), so sampling the wrong frames shows up clearly in the means.
        "ep0_short": SampleSpec(
            lengths=[40, 150, 90], seed=13, image_column="observation.image",
            cameras={"observation.images.top": Camera(48, 64), "observation.images.wrist": Camera(32, 48)},
        ),
    }


RAMPED = {"ep0_short"}


def _ramp_frames(length: int, height: int, width: int, phase: int) -> np.ndarray:
    """Frames whose colour drifts strongly over the episode (red up, green down), with a spatial texture.

    The sample generator's moving sine patterns have almost the same mean in every frame, so *which*
    frames are sampled barely shows (<= 4e-3 on the per-episode means).  A ramp makes the mean depend on
    the sampled time range.
    """
    shape = (length, height, width)
    t = np.linspace(0.0, 1.0, length)[:, None, None]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    texture = 0.5 + 0.5 * np.sin(xx / 3.0 + yy / 5.0 + phase)
    red = np.broadcast_to(30 + 200 * t, shape)
    green = np.broadcast_to(230 - 200 * t, shape)
    blue = np.broadcast_to(40 + 170 * texture, shape)
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def _ramp_videos(root: Path) -> None:
    """Re-encode every video of ``root`` with ramp frames and refresh stats.json's video entries."""
    from dask_stats.synthetic import decode_all, encode_video

    info = json.loads((root / "meta" / "info.json").read_text())
    episodes = [json.loads(x) for x in (root / "meta" / "episodes.jsonl").read_text().splitlines() if x.strip()]
    stats_path = root / "meta" / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
    for i, (key, ft) in enumerate((k, f) for k, f in info["features"].items() if f["dtype"] == "video"):
        h, w = ft["shape"][0], ft["shape"][1]
        codec = "libsvtav1" if ft.get("info", {}).get("video.codec") == "av1" else "libx264"
        pixels = []
        for ep in episodes:
            e, length = ep["episode_index"], ep["length"]
            path = root / info["video_path"].format(
                episode_chunk=e // info["chunks_size"], video_key=key, episode_index=e)
            encode_video(path, _ramp_frames(length, h, w, phase=3 * e + i), info["fps"], codec)
            pixels.append(decode_all(path).reshape(-1, 3))
        if stats is not None:
            x = np.concatenate(pixels).astype(np.float64) / 255.0
            stats[key] = {
                "mean": [[[v]] for v in x.mean(0)], "std": [[[v]] for v in x.std(0)],
                "max": [[[v]] for v in x.max(0)], "min": [[[v]] for v in x.min(0)],
            }
    if stats is not None:
        stats_path.write_text(json.dumps(stats, indent=4))


class ParityWorld:
    """Lazily made, memoised artefacts shared by the whole tier (one instance per session)."""

    def __init__(self, base: Path):
        self.base = base
        self.hf_home = base / "hf_home"  # the reference's datasets cache, kept out of ~/.cache/huggingface
        self.specs = _fixture_specs()
        self._memo: dict = {}

    # -- environment for reference runs -----------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return {"HF_HOME": str(self.hf_home), "HF_LEROBOT_HOME": str(self.hf_home / "lerobot")}

    def _once(self, key, make):
        """Memoise ``make()``, failures and skips included (a broken reference run is not redone per test)."""
        if key not in self._memo:
            try:
                self._memo[key] = ("ok", make())
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # pytest's skip/fail outcomes are BaseExceptions
                self._memo[key] = ("raise", exc)
        kind, value = self._memo[key]
        if kind == "raise":
            raise value
        return value

    # -- fixture datasets --------------------------------------------------------------------------
    def dataset(self, name: str) -> Path:
        def make() -> Path:
            from dask_stats.synthetic import make_dataset

            root = self.base / "datasets" / name
            make_dataset(root, self.specs[name])
            if name in RAMPED:
                _ramp_videos(root)
            return root  # never written to afterwards: every stage checks that with _tree_digest

        return self._once(("dataset", name), make)

    def info(self, name: str) -> dict:
        return json.loads((self.dataset(name) / "meta" / "info.json").read_text())

    def oracle(self, name: str, quirk: bool = False) -> list[dict]:
        return self._once(("oracle", name, quirk), lambda: straightforward_stats(self.dataset(name), quirk=quirk))

    # -- the official converter (lerobot 0.3.3) ----------------------------------------------------
    def reference(self, name: str, backend: str = "pyav") -> dict:
        """Run lerobot 0.3.3's converter on fixture ``name``; returns records, report, v2.1 copy."""

        def make() -> dict:
            require_env(REF033)
            out = self.base / "reference" / f"{name}-{backend}.jsonl"
            report = out.with_suffix(".report.json")
            kept = self.base / "reference" / f"{name}-{backend}-v21"
            src = self.dataset(name)
            before = _tree_digest(src)
            try:
                proc = run_in_env(
                    REF033, "reference/lerobot033_convert.py", src, out, "--backend", backend, "--check",
                    "--report", report, "--keep-dataset", kept, env=self.env, check=False, timeout=600,
                )
            except (RefEnvError, subprocess.TimeoutExpired) as exc:
                pytest.fail(f"lerobot 0.3.3 converter could not run on fixture {name!r}: {exc}", pytrace=False)
            if proc.returncode not in (0, 3):  # 3 = converted, but check_aggregate_stats failed
                pytest.fail(
                    f"lerobot 0.3.3 converter failed on fixture {name!r} (backend {backend}), exit "
                    f"{proc.returncode}\n--- stderr ---\n{proc.stderr[-8000:]}", pytrace=False)
            assert _tree_digest(src) == before, "the reference run modified its input dataset"
            return {"records": read_jsonl(out), "report": json.loads(report.read_text()), "v21": kept,
                    "jsonl": out}

        return self._once(("reference", name, backend), make)

    def load033(self, dataset_dir: Path, tag: str) -> dict:
        """lerobot 0.3.3's LeRobotDataset on a converted dataset (scripts/lerobot033_load.py)."""

        def make() -> dict:
            require_env(REF033)
            out = self.base / "load033" / f"{tag}.json"
            before = _tree_digest(dataset_dir)
            proc = run_in_env(REF033, "reference/lerobot033_load.py", dataset_dir, out, env=self.env, check=False)
            if proc.returncode != 0:
                pytest.fail(f"lerobot 0.3.3 could not open {dataset_dir} ({tag}):\n{proc.stderr[-8000:]}",
                            pytrace=False)
            assert _tree_digest(dataset_dir) == before, "lerobot 0.3.3's loader modified the dataset"
            return json.loads(out.read_text())

        return self._once(("load033", str(dataset_dir)), make)

    def v30(self, dataset_dir: Path, tag: str) -> dict:
        """lerobot 0.4.x's v2.1 -> v3.0 converter + loader on a copy of ``dataset_dir``."""

        def make() -> dict:
            require_env(REF04)
            work = self.base / "v30" / tag
            if work.exists():
                shutil.rmtree(work)
            out = self.base / "v30" / f"{tag}.json"
            proc = run_in_env(REF04, "reference/lerobot04_v30.py", dataset_dir, work, out, env=self.env, check=False)
            if proc.returncode != 0:
                pytest.fail(f"lerobot 0.4.x could not convert/open {dataset_dir} ({tag}):\n{proc.stderr[-8000:]}",
                            pytrace=False)
            return json.loads(out.read_text())

        return self._once(("v30", str(dataset_dir)), make)

    # -- ours ------------------------------------------------------------------------------------
    def ours(self, name: str, backend: str = "pyav") -> Path:
        """Our converted copy of fixture ``name`` (``dask_stats.convert(..., output=...)``)."""

        def make() -> Path:
            convert = our_convert()
            out = self.base / "ours" / f"{name}-{backend}"
            if out.exists():
                shutil.rmtree(out)
            src = self.dataset(name)
            before = _tree_digest(src)
            result = convert(src, output=out, video_backend=backend, skip_verify=False, quiet=True)
            converted = Path(result.output)
            assert _tree_digest(src) == before, "dask_stats.convert(output=...) modified its source dataset"
            assert (converted / "meta" / "episodes_stats.jsonl").is_file(), f"no episodes_stats.jsonl in {converted}"
            return converted

        return self._once(("ours", name, backend), make)

    def ours_records(self, name: str, backend: str = "pyav") -> list[dict]:
        return read_jsonl(self.ours(name, backend) / "meta" / "episodes_stats.jsonl")


def our_convert():
    """``dask_stats.convert``, or a skip while it does not exist yet."""
    try:
        import dask_stats
    except ImportError as exc:  # pragma: no cover - the package is the project itself
        pytest.skip(f"dask_stats is not importable: {exc}")
    convert = getattr(dask_stats, "convert", None)
    if convert is None:
        try:  # maybe it lives in a submodule not re-exported yet
            from dask_stats.api import convert  # type: ignore[no-redef]
        except ImportError:
            convert = None
    if convert is None:
        pytest.skip("dask_stats.convert() does not exist yet: the comparison with ours is pending")
    return convert


def _tree_digest(root: Path) -> list[tuple[str, int, int]]:
    """Cheap fingerprint of a directory tree (paths, sizes, mtimes) to catch writes into inputs."""
    out = []
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            st = p.stat()
            out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    return out


# -- pytest wiring ---------------------------------------------------------------------------------

def _selected_explicitly(config) -> bool:
    markexpr = getattr(config.option, "markexpr", "") or ""
    return "parity" in markexpr and "not parity" not in markexpr


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    mine = [it for it in items if Path(str(it.fspath)).is_relative_to(here)]
    for it in mine:
        it.add_marker(pytest.mark.parity)
    if in_ci() or os.environ.get("DASK_STATS_PARITY", "").lower() in ("1", "true", "yes") or _selected_explicitly(config):
        return
    skip = pytest.mark.skip(
        reason="parity tier: run it with DASK_STATS_PARITY=1 ./scripts/test (or `pytest -m parity`); its first run "
        "installs lerobot 0.3.3, 0.4.x and 0.6.1 into ~/.cache/dask_stats/refenv (~7 GB, a few minutes)")
    for it in mine:
        it.add_marker(skip)


@pytest.fixture(scope="session")
def world(request, tmp_path_factory) -> ParityWorld:
    # Cold start: install both reference environments at once (they overlap well); tests wait for the
    # one they need.  lerobot 0.4.x only when a selected test uses it.
    wanted = [REF033]
    if any("lerobot04" in item.name for item in request.session.items):
        wanted.append(REF04)
    if any(Path(str(item.fspath)).name == "test_v30_parity.py" for item in request.session.items):
        wanted += [REF04, REF061]  # installed while this module's tests run, ready for the v3.0 module
    prefetch(*dict.fromkeys(wanted))
    return ParityWorld(tmp_path_factory.mktemp("parity"))


@pytest.fixture(scope="session")
def v30world(tmp_path_factory):
    """The v3.0 tier's memoised session object (test_v30_parity.V30World), shared by the v3.0 modules."""
    from .test_v30_parity import RELEASES, V30World

    prefetch(*RELEASES)  # both installs in the background (0.6.1's cold install is the long one)
    return V30World(tmp_path_factory.mktemp("parity_v30"))
