"""Benchmarks against the targets: our ``convert`` against lerobot 0.3.3's converter and the decode floors.

    python benchmarks/run.py                          # everything, 3 repetitions (official: 1)
    python benchmarks/run.py --sets h264 av1 --reps 5 --official-reps 2
    python benchmarks/run.py --skip-official          # ours and the floors only (no lerobot env needed)
    python benchmarks/run.py --sets v30 quantiles tiny client droid   # the further rows (benchmarks/rows.py)

(a) The datasets (``benchmarks/datasets.py``) are generated once and cached under ``--data``.
(b) The official converter runs in the isolated lerobot-0.3.3 environment of ``tests/parity/refenv.py``
    (created on first use) through ``tests/parity/reference/lerobot033_convert.py``, with its pyav and
    its torchcodec backend.  Its stats phase (``convert_s``) and its whole run are both recorded.
(c) Ours is the CLI as a user runs it (``python -m dask_stats convert --root DS --output OUT --quiet``,
    default settings: an in-process local cluster with a thread per core, pyav; the ``pyav+processes``
    variant uses one single-threaded worker process per core instead).  The floors
    are plain PyAV loops over the same videos, spread over the same number of processes:
    ``decode-all`` decodes every frame and converts the sampled ones to RGB; ``seek`` seeks to each
    sampled frame's keyframe and decodes forward to it; the numeric floor reads each episode's Parquet
    columns and reduces them with numpy, in one process.  The *command floor* of a video set runs its
    floor as a whole command: a fresh ``python`` that imports the stack (dask, distributed, pyarrow, av,
    Pillow), decodes the same way and reduces every sampled frame to its exact stats (channel histograms),
    i.e. what any converter built on this stack must at least do.
(d) One table of medians and ratios, with peak memory: the largest single process and the whole
    process tree (sum of RSS, and of PSS, which counts shared pages once), sampled every 20 ms.

Speed is measured here, never asserted in tests.  Results also go to ``--json``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests" / "parity")]

from datasets import ensure_dataset, specs  # noqa: E402

from dask_stats.stats.sampling import sample_positions  # noqa: E402

VIDEO_SETS = ("h264", "av1")
# the floor each set's target refers to
FLOOR = {"h264": "floor-decode-all", "av1": "floor-seek", "numeric": "floor-read"}


# -- memory ---------------------------------------------------------------------------------------
def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_and_peak(pid: int) -> tuple[int, int]:
    """Current and peak resident set (VmRSS, VmHWM: the kernel's own high-water mark) of a process."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line[:5]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


class TreeMonitor:
    """Samples the memory of a process tree in a thread: the peak of the largest process (exact: the kernel's
    VmHWM) and of the tree's sum of RSS (every 50 ms) and of PSS (every 0.5 s: reading smaps is costly; the
    tree's members are looked up as often).  Light enough (~1% of a core) not to slow down what it measures:
    sampling RSS and PSS of everything every 20 ms cost a quarter of a core."""

    PSS_EVERY = 10  # samples

    def __init__(self, root_pid: int | None = None, interval: float = 0.05, exclude_self: bool = False):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(root_pid or os.getpid())
        self.exclude_self = exclude_self
        self.interval = interval
        self.peak_process = 0
        self.peak_tree = 0
        self.peak_tree_pss = 0
        self.max_processes = 0
        self._samples = 0
        self._pids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _members(self) -> list[int]:
        try:
            members = [p.pid for p in self.root.children(recursive=True)]
        except self._psutil.Error:
            return []
        return members if self.exclude_self else [self.root.pid, *members]

    def sample(self) -> None:
        if self._samples % self.PSS_EVERY == 0:  # finding the members walks all of /proc: not every time
            self._pids = self._members()
        members = self._pids
        total = 0
        for pid in members:
            rss, peak = _rss_and_peak(pid)
            total += rss
            self.peak_process = max(self.peak_process, peak)
        self.peak_tree = max(self.peak_tree, total)
        if self._samples % self.PSS_EVERY == 0:
            self.peak_tree_pss = max(self.peak_tree_pss, sum(_pss_bytes(pid) for pid in members))
        self._samples += 1
        self.max_processes = max(self.max_processes, len(members))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict:
        mb = 1 / 2**20
        return {"peak_process_mb": round(self.peak_process * mb), "peak_tree_mb": round(self.peak_tree * mb),
                "peak_tree_pss_mb": round(self.peak_tree_pss * mb), "processes": self.max_processes}


# -- one measurement ------------------------------------------------------------------------------
@dataclass
class Sample:
    seconds: float
    memory: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


# Our variants: the CLI as shipped (one process, a thread per core), and the other local cluster kind.
VARIANTS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "pyav": ((), {}),  # default settings
    "decord": (("--video-backend", "decord"), {}),
    "torchcodec": (("--video-backend", "torchcodec"), {}),
    "pyav+processes": (("--scheduler", "processes"), {}),  # one single-threaded worker process per core
}


def time_convert(dataset: Path, out: str, args: tuple[str, ...] = (), env: dict | None = None) -> tuple[float, dict]:
    """``python -m dask_stats convert --root DATASET --output OUT --quiet ARGS`` in a subprocess: its wall clock
    and the memory of its whole process tree; raises if it fails."""
    cmd = [sys.executable, "-m", "dask_stats", "convert", "--root", str(dataset), "--output", out, "--quiet", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    monitor = TreeMonitor(proc.pid)
    with monitor:
        out_text, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"ours failed ({proc.returncode}): {' '.join(cmd)}\n{out_text[-3000:]}\n{err[-6000:]}")
    return seconds, monitor.result()


def run_ours(dataset: Path, variant: str = "pyav") -> Sample:
    """Our CLI in a subprocess; wall clock and the memory of its whole process tree."""
    extra_args, extra_env = VARIANTS[variant]
    with tempfile.TemporaryDirectory(prefix="bench_ours_") as tmp:
        seconds, memory = time_convert(dataset, f"{tmp}/out", tuple(extra_args), extra_env)
        lines = (Path(tmp) / "out/meta/episodes_stats.jsonl").read_text().count("\n")
    return Sample(seconds, memory, {"episodes_written": lines})


def run_official(dataset: Path, backend: str) -> Sample:
    """lerobot 0.3.3's converter (stats phase as the official script) in its isolated environment."""
    import refenv

    with tempfile.TemporaryDirectory(prefix="bench_official_") as tmp:
        report = Path(tmp) / "report.json"
        args = [dataset, Path(tmp) / "episodes_stats.jsonl", "--backend", backend, "--report", report]
        if _official_supports("--num-workers"):
            args += ["--num-workers", str(os.cpu_count() or 1)]
        env = {"HF_HOME": str(Path(tmp) / "hf"), "HF_DATASETS_CACHE": str(Path(tmp) / "hf" / "datasets")}
        monitor = TreeMonitor(exclude_self=True)
        t0 = time.perf_counter()
        with monitor:
            refenv.run_in_env("lerobot-0.3.3", "reference/lerobot033_convert.py", *args, env=env, timeout=3600)
        seconds = time.perf_counter() - t0
        data = json.loads(report.read_text())
    return Sample(seconds, monitor.result(), {"stats_s": data.get("convert_s"), "load_s": data.get("load_s"),
                                              "backend_used": data.get("video_backend_used")})


def _official_supports(flag: str) -> bool:
    script = REPO / "tests/parity/reference/lerobot033_convert.py"
    return flag in script.read_text()


# -- floors ---------------------------------------------------------------------------------------
def _dataset_videos(dataset: Path) -> list[tuple[str, np.ndarray]]:
    """(video path, sampled frame positions) for every episode and camera, longest first."""
    info = json.loads((dataset / "meta/info.json").read_text())
    episodes = [json.loads(line) for line in (dataset / "meta/episodes.jsonl").read_text().splitlines()]
    videos = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    out = []
    for ep in episodes:
        i = ep["episode_index"]
        for key in videos:
            path = dataset / info["video_path"].format(episode_chunk=i // info["chunks_size"], video_key=key,
                                                       episode_index=i)
            out.append((str(path), np.unique(sample_positions(ep["length"]))))
    return sorted(out, key=lambda v: -len(v[1]))


def _floor_decode_all(job: tuple) -> int:
    import av

    path, wanted, stats, *reuse = job
    reduce = _reducer(stats, *reuse)
    wanted = set(wanted.tolist())
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                reduce(frame)
    return len(wanted)


def _floor_seek(job: tuple) -> int:
    import av

    path, wanted, stats, *reuse = job
    reduce = _reducer(stats, *reuse)
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        pts = sorted(p.pts for p in container.demux(stream) if p.size)
        for index in wanted:
            target = pts[int(index)]
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts >= target:
                    reduce(frame)
                    break
    return len(wanted)


def _reducer(stats: bool, reuse: bool = False):
    """What happens to a wanted frame: RGB conversion (the first floors), or RGB conversion and the exact
    stats of the frame, done the cheapest way we know (RGBA output viewed as RGB, channel histograms of
    dask_stats.stats.pixels without a copy).  ``reuse``: one swscale context per video, single-threaded, instead of
    ``to_ndarray``'s fresh one per frame (which starts swscale's threads for every frame: 5 ms on a 32x32
    frame, 0.1 ms reused); the floors of the tiny and DROID-like rows use it."""
    if not stats:
        return lambda frame: frame.to_ndarray(format="rgb24")
    from dask_stats.stats.pixels import PixelHistogram

    histogram = PixelHistogram(3)
    if reuse:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
        return lambda frame: histogram.add(reformatter.reformat(frame, format="rgba", threads=1).to_ndarray()[..., :3])
    return lambda frame: histogram.add(frame.to_ndarray(format="rgba")[..., :3])


def run_video_floor(dataset: Path, kind: str, processes: int, stats: bool = False, reuse: bool = False) -> Sample:
    jobs = [(path, wanted, stats, reuse) for path, wanted in _dataset_videos(dataset)]
    fn = {"decode-all": _floor_decode_all, "seek": _floor_seek}[kind]
    # thousands of short jobs go to the pool in chunks (one round trip per job would be the floor's own overhead)
    chunksize = max(1, len(jobs) // (processes * 64)) if len(jobs) > 1000 else 1
    t0 = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        frames = sum(pool.map(fn, jobs, chunksize=chunksize))
    return Sample(time.perf_counter() - t0, {}, {"frames": frames})


STACK = ("dask.dataframe", "distributed", "pyarrow.parquet", "av", "PIL.Image")  # what a converter on it imports


def run_command_floor(dataset: Path, kind: str, processes: int | None = None, reuse: bool = False) -> Sample:
    """The floor of a whole command: a fresh ``python`` imports the stack (``STACK``), then decodes as the
    ``kind`` floor in ``processes`` processes (default: one per core) and reduces every sampled frame to its
    channel histograms (the exact stats); ``reuse``: see ``_reducer``."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--command-floor", kind, str(dataset),
                    *(["--floor-processes", str(processes)] if processes else []),
                    *(["--floor-reuse"] if reuse else [])], check=True)
    return Sample(time.perf_counter() - t0, {}, {})


def run_numeric_floor(dataset: Path) -> Sample:
    """Read every episode's numeric columns and reduce them (min/max/mean/std in float64), one process."""
    import pyarrow.parquet as pq

    info = json.loads((dataset / "meta/info.json").read_text())
    columns = [k for k, ft in info["features"].items() if ft["dtype"] not in ("video", "image", "string")]
    t0 = time.perf_counter()
    files = sorted((dataset / "data").rglob("*.parquet"))
    for path in files:
        table = pq.read_table(path, columns=columns)
        for name in columns:
            column = table.column(name).combine_chunks()
            width = 1
            while hasattr(column, "flatten") and not hasattr(column, "field"):
                width *= len(column.flatten()) // max(len(column), 1)
                column = column.flatten()
            x = column.to_numpy(zero_copy_only=False).reshape(table.num_rows, width)
            xf = x.astype(np.float64)
            x.min(0), x.max(0), xf.mean(0), xf.std(0)
    return Sample(time.perf_counter() - t0, {}, {"files": len(files)})


# -- the table ------------------------------------------------------------------------------------
def median(samples: list[Sample], key=lambda s: s.seconds) -> float | None:
    values = [key(s) for s in samples if key(s) is not None]
    return statistics.median(values) if values else None


def fmt(x, unit="s", digits=1):
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "dask_stats_bench",
                        help="where the generated datasets are cached")
    parser.add_argument("--sets", nargs="+", default=["h264", "av1", "numeric", "long"],
                        choices=[*specs(), *rows_module().ROWS],
                        help="datasets of the first table, and/or the row kinds of benchmarks/rows.py "
                             "(v30 quantiles tiny client droid)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of ours and the floors")
    parser.add_argument("--official-reps", type=int, default=1)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--official-backends", nargs="+", default=["pyav", "torchcodec"])
    parser.add_argument("--variants", nargs="+", default=["pyav", "decord", "pyav+processes"],
                        choices=list(VARIANTS),
                        help="ours: default CLI (pyav), other backends, and settings under evaluation")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--command-floor", nargs=2, metavar=("KIND", "DATASET"), help=argparse.SUPPRESS)
    parser.add_argument("--floor-processes", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--floor-reuse", action="store_true", help=argparse.SUPPRESS)
    import rows

    rows.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.command_floor:  # the inside of run_command_floor
        for module in STACK:
            importlib.import_module(module)
        run_video_floor(Path(args.command_floor[1]), args.command_floor[0], args.floor_processes or os.cpu_count() or 1,
                        stats=True, reuse=args.floor_reuse)
        return 0
    new_rows = [name for name in args.sets if name in rows.ROWS]
    args.sets = [name for name in args.sets if name not in rows.ROWS]

    processes = os.cpu_count() or 1
    results: dict[str, dict[str, list[Sample]]] = {}
    log = lambda *a: print(*a, file=sys.stderr, flush=True)
    for name in args.sets:
        dataset = ensure_dataset(name, args.data, log=log)
        runs: dict[str, list[Sample]] = {}
        results[name] = runs
        variants = [v for v in args.variants if _applies(v, name)]
        for rep in range(args.reps):
            for variant in variants:
                log(f"[{name}] ours ({variant}) rep {rep + 1}")
                try:
                    runs.setdefault(f"ours-{variant}", []).append(run_ours(dataset, variant))
                except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the rest
                    log(f"[{name}] ours ({variant}) failed: {str(exc)[-2000:]}")
            if name in VIDEO_SETS:
                # seeking to every sample of h264 (nearly every frame sampled) is no floor, only slow
                for kind in ("decode-all",) if name == "h264" else ("decode-all", "seek"):
                    log(f"[{name}] floor {kind} rep {rep + 1}")
                    runs.setdefault(f"floor-{kind}", []).append(run_video_floor(dataset, kind, processes))
                kind = FLOOR[name].removeprefix("floor-")
                log(f"[{name}] command floor {kind} rep {rep + 1}")
                runs.setdefault(f"command-floor-{kind}", []).append(run_command_floor(dataset, kind))
            elif name == "numeric":
                log(f"[{name}] floor rep {rep + 1}")
                runs.setdefault("floor-read", []).append(run_numeric_floor(dataset))
        if not args.skip_official and name != "long":  # the official converter would need ~36 GB there
            for rep in range(args.official_reps):
                for backend in args.official_backends:
                    log(f"[{name}] official ({backend}) rep {rep + 1}")
                    try:
                        runs.setdefault(f"official-{backend}", []).append(run_official(dataset, backend))
                    except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the rest
                        log(f"[{name}] official ({backend}) failed: {exc}")

    if args.sets:
        print(report(results, args))
    extra = rows.run_rows(new_rows, args) if new_rows else {}
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
            "results": {n: {k: [s.__dict__ for s in v] for k, v in r.items()} for n, r in results.items()},
            "rows": extra,
        }, indent=2, default=str))
    return 0


def rows_module():
    import rows

    return rows


def _applies(variant: str, dataset: str) -> bool:
    if dataset == "long":
        return variant == "pyav"  # memory only
    if variant == "decord":
        return dataset == "h264"  # decord cannot read AV1
    if variant == "torchcodec":
        from dask_stats.video import BACKENDS

        return dataset in VIDEO_SETS and BACKENDS["torchcodec"].available()
    return True


def machine() -> str:
    import psutil

    return (f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
            f"load avg {os.getloadavg()[0]:.1f}")


def report(results: dict[str, dict[str, list[Sample]]], args) -> str:
    lines = [f"dask_stats benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}",
             f"wall clock, median of {args.reps} runs (official: {args.official_reps}); memory: peak over the runs "
             "(largest process; whole process tree as sum of RSS / sum of PSS)", "",
             "| dataset | run | median | official best / this | official pyav / this | this / floor "
             "| this / command floor | peak process MB | peak tree MB (RSS / PSS) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        official = {b: median(runs.get(f"official-{b}", []), key=lambda s: s.extra.get("stats_s"))
                    for b in ("pyav", "torchcodec")}
        best = min((v for v in official.values() if v is not None), default=None)
        floor = median(runs.get(FLOOR.get(name), []))
        command_floor = median(runs.get(f"command-{FLOOR.get(name)}", []))
        for key, samples in runs.items():
            if not samples:
                continue
            seconds = median(samples)
            shown = fmt(seconds)
            if key.startswith("official-"):
                shown = f"{fmt(median(samples, key=lambda s: s.extra.get('stats_s')))} stats ({shown} total)"
            ours = key.startswith("ours-")
            mem = [s.memory for s in samples if s.memory]
            memory = ("", "")
            if mem:
                memory = (str(max(m["peak_process_mb"] for m in mem)),
                          f"{max(m['peak_tree_mb'] for m in mem)} / {max(m['peak_tree_pss_mb'] for m in mem)}")
            lines.append(
                f"| {name} | {key} | {shown} | {fmt(ratio(best, seconds), 'x', 2) if ours else ''} "
                f"| {fmt(ratio(official['pyav'], seconds), 'x', 2) if ours else ''} "
                f"| {fmt(ratio(seconds, floor), 'x', 2) if ours or 'floor' in key else ''} "
                f"| {fmt(ratio(seconds, command_floor), 'x', 2) if ours or 'floor' in key else ''} "
                f"| {memory[0]} | {memory[1]} |")
    lines += ["", "official: lerobot 0.3.3 (tests/parity/reference/lerobot033_convert.py), 'stats' = its "
              "convert_stats phase (what the targets refer to), total = the whole subprocess; ours: the whole "
              "`python -m dask_stats convert` command.  floor: h264 = decode-all, av1 = seek, numeric = read (the "
              "targets' floors: the decoding or reading alone); command floor: the same decoding as a whole command "
              "(a fresh "
              "python importing dask, distributed, pyarrow, av and Pillow) that also reduces every sampled frame to "
              "its exact stats (channel histograms)."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
