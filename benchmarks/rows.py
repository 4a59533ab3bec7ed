"""The v3.0, quantiles, tiny-tasks, client-memory, DROID-like and remote v3.0 benchmark rows.

    python benchmarks/run.py --sets v30 quantiles tiny client droid          # all of them
    python benchmarks/rows.py --sets tiny --tiny-episodes 2000 --reps 1      # one kind, smaller

Each kind measures the CLI as a user runs it (``python -m dask_stats convert --root DS --output OUT --quiet``,
default settings unless said otherwise) in a subprocess, wall clock and the memory of its process tree
(``run.TreeMonitor``), with the page cache of the dataset's files dropped before every timed run
(``posix_fadvise(DONTNEED)``: "cold-ish", the disk is read again unless another process holds the pages).

v30        ours ``--to v3.0`` vs the official two-step path: lerobot 0.3.3's stats converter (its ``convert_stats``
           phase; the whole subprocess in brackets), then lerobot 0.4.4's v2.1 -> v3.0 converter on the v2.1
           dataset that step left (its ``convert_dataset`` call; whole subprocess in brackets, which also copies
           the dataset and opens the result), each in its isolated environment (``tests/parity/refenv.py``).
           Also ours ``--to v2.1`` and ``cp -r`` of the videos directory (one copy of the video bytes).
quantiles  the numeric set and a video set: v2.1 without / with ``--quantiles``, v3.0 with ``--no-quantiles`` /
           default (quantiles on).
tiny       20,000 episodes x 2 cameras of 20-40 frames of 32x32 (``datasets.ensure_replicated``): the whole
           command (default, ``--scheduler threads`` and ``processes``) vs its command floor
           (``run.run_command_floor``: a fresh python importing the stack, decoding every video and
           histogramming every sampled frame, in 2 processes, one swscale context per video); the task count
           comes from the graph ``convert`` builds; one API run on a 2,000-episode tiny set (a fresh python
           calling ``dask_stats.convert``) splits the time into phases.
client     the client process's peak RSS (VmHWM) for ``convert`` at 10k, 30k and 100k episodes x 3 cameras, with
           the constant-frame backend of ``fake_video.py`` and a separate cluster process (scheduler + 2
           single-threaded worker processes), so that the number is the client's alone (``client_memory.py``).
droid      a DROID-like set (40 episodes x 3 cameras 320x180, 240-260 frames, h264 by default): 1 and 2
           workers, v2.1 and v3.0; episodes/s/core and the projection to DROID (92,233 episodes x 3 cameras):
           episodes / (episodes/s/core measured with 2 workers x cores), i.e. perfect scaling beyond 2 cores and
           this machine's per-core speed.  The command floor (decode every frame, histogram the sampled ones) in 1
           and 2 processes shows how far this 2-vCPU machine itself scales.
remote     ``--to v3.0`` from S3 into S3 vs the same conversion between local directories, on this machine: the
           S3 server is moto's standalone server started here (``python -m moto.server`` on 127.0.0.1), so it
           shares the cores with the conversion and its own request handling is part of the remote time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests" / "parity")]

import run  # noqa: E402
from datasets import ensure_dataset, ensure_replicated  # noqa: E402
from run import Sample, TreeMonitor, fmt, median, ratio  # noqa: E402

ROWS = ("v30", "quantiles", "tiny", "client", "droid", "remote")
DROID_EPISODES = 92_233
PROJECTION_CORES = (32, 128, 256)
log = lambda *a: print(*a, file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--v30-sets", nargs="+", default=["h264", "av1"])
    parser.add_argument("--v30-official-backend", default="torchcodec", choices=["pyav", "torchcodec"],
                        help="lerobot 0.3.3's decoder for the first official step")
    parser.add_argument("--quantile-sets", nargs="+", default=["numeric", "av1"])
    parser.add_argument("--tiny-episodes", type=int, default=20_000)
    parser.add_argument("--tiny-api-episodes", type=int, default=2_000,
                        help="size of the tiny set of the in-process API run that splits the time into phases")
    parser.add_argument("--client-episodes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--remote-sets", nargs="+", default=["h264"])
    parser.add_argument("--droid-set", default="droid", help="droid (h264), droid-av1, or any set of datasets.py")
    parser.add_argument("--droid-reps", type=int, default=None, help="default: --reps")
    parser.add_argument("--droid-scheduler", default="processes", choices=("threads", "processes"),
                        help="the local cluster of the DROID-like runs (default: processes, what --scheduler auto "
                             "picks for DROID's 276k videos)")


# -- helpers ----------------------------------------------------------------------------------------
def evict(path: Path) -> None:
    """Drop the page cache of every file under ``path`` (clean pages only; no root needed)."""
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def ours(dataset: Path, *args: str) -> Sample:
    """``python -m dask_stats convert --root DS --output OUT --quiet ARGS``: wall clock and process-tree memory."""
    evict(dataset)
    with tempfile.TemporaryDirectory(prefix="bench_rows_", dir=_scratch(dataset)) as tmp:
        seconds, memory = run.time_convert(dataset, f"{tmp}/out", args)
        version = json.loads(Path(f"{tmp}/out/meta/info.json").read_text())["codebase_version"]
    return Sample(seconds, memory, {"codebase_version": version, "load": os.getloadavg()[0]})


def _scratch(dataset: Path) -> str:
    """Outputs go next to the dataset (same filesystem: --output hard-links what it can)."""
    return str(dataset.parent)


def copy_videos(dataset: Path) -> Sample:
    """``cp -r DS/videos DEST``: one copy of the video bytes, from a dropped page cache."""
    evict(dataset)
    with tempfile.TemporaryDirectory(prefix="bench_cp_", dir=_scratch(dataset)) as tmp:
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(dataset / "videos"), f"{tmp}/videos"], check=True)
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    return Sample(seconds, {}, {"bytes": size})


def official_two_step(dataset: Path, backend: str) -> dict[str, Sample]:
    """lerobot 0.3.3's stats converter (leaving the v2.1 dataset), then lerobot 0.4.4's v2.1 -> v3.0 converter."""
    import refenv

    evict(dataset)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench_official_", dir=_scratch(dataset)) as tmp:
        tmp = Path(tmp)
        env = {"HF_HOME": str(tmp / "hf"), "HF_DATASETS_CACHE": str(tmp / "hf" / "datasets")}
        report = tmp / "report033.json"
        args = [dataset, tmp / "episodes_stats.jsonl", "--backend", backend, "--report", report,
                "--keep-dataset", tmp / "v21", "--num-workers", str(os.cpu_count() or 1)]
        monitor = TreeMonitor(exclude_self=True)
        t0 = time.perf_counter()
        with monitor:
            refenv.run_in_env("lerobot-0.3.3", "reference/lerobot033_convert.py", *args, env=env, timeout=3600)
        data = json.loads(report.read_text())
        out["official-0.3.3-stats"] = Sample(time.perf_counter() - t0, monitor.result(),
                                             {"phase_s": data.get("convert_s"),
                                              "backend": data.get("video_backend_used")})
        evict(tmp / "v21")
        report = tmp / "report044.json"
        monitor = TreeMonitor(exclude_self=True)
        t0 = time.perf_counter()
        with monitor:
            refenv.run_in_env("lerobot-0.4.x", "reference/lerobot04_v30.py", tmp / "v21", tmp / "work", report,
                              "--no-frames", env=env, timeout=3600)
        data = json.loads(report.read_text())
        out["official-0.4.4-v30"] = Sample(time.perf_counter() - t0, monitor.result(),
                                           {"phase_s": data.get("convert_s"), "lerobot": data.get("lerobot")})
    return out


def _cell_memory(samples: list[Sample]) -> tuple[str, str]:
    mem = [s.memory for s in samples if s.memory]
    if not mem:
        return "", ""
    return (str(max(m["peak_process_mb"] for m in mem)),
            f"{max(m['peak_tree_mb'] for m in mem)} / {max(m['peak_tree_pss_mb'] for m in mem)}")


def _phase(samples: list[Sample]) -> float | None:
    return median(samples, key=lambda s: s.extra.get("phase_s"))


# -- v3.0 -------------------------------------------------------------------------------------------
def bench_v30(args, cache: Path) -> tuple[dict, list[str]]:
    results, lines = {}, []
    lines += ["| dataset | run | median | peak process MB | peak tree MB (RSS / PSS) |", "|---|---|---|---|---|"]
    targets = ["", "| dataset | official two steps / ours v3.0 (target >= 3x) | ours v3.0 / (ours v2.1 + copy) "
               "(target <= 1.2x) | ours v3.0 peak process MB (target <= 600) |", "|---|---|---|---|"]
    for name in args.v30_sets:
        dataset = ensure_dataset(name, cache, log=log)
        runs: dict[str, list[Sample]] = {}
        for rep in range(args.reps):
            for label, extra in (("ours-v3.0", ("--to", "v3.0")), ("ours-v2.1", ())):
                log(f"[v30/{name}] {label} rep {rep + 1}")
                runs.setdefault(label, []).append(ours(dataset, *extra))
            log(f"[v30/{name}] cp videos rep {rep + 1}")
            runs.setdefault("copy-videos", []).append(copy_videos(dataset))
        if not args.skip_official:
            for rep in range(args.official_reps):
                log(f"[v30/{name}] official two steps ({args.v30_official_backend}) rep {rep + 1}")
                try:
                    for key, sample in official_two_step(dataset, args.v30_official_backend).items():
                        runs.setdefault(key, []).append(sample)
                except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the rest
                    log(f"[v30/{name}] official failed: {str(exc)[-3000:]}")
        results[name] = runs
        for key, samples in runs.items():
            shown = fmt(median(samples))
            if key.startswith("official"):
                shown = f"{fmt(_phase(samples))} converter ({shown} subprocess)"
            if key == "copy-videos":
                shown += f" ({samples[0].extra['bytes'] / 2**20:.0f} MiB)"
            lines.append(f"| {name} | {key} | {shown} | {' | '.join(_cell_memory(samples))} |")
        v3, v21, cp = (median(runs.get(k, [])) for k in ("ours-v3.0", "ours-v2.1", "copy-videos"))
        steps = [_phase(runs.get(k, [])) for k in ("official-0.3.3-stats", "official-0.4.4-v30")]
        official = sum(steps) if all(s is not None for s in steps) else None
        totals = [median(runs.get(k, [])) for k in ("official-0.3.3-stats", "official-0.4.4-v30")]
        official_total = sum(totals) if all(t is not None for t in totals) else None
        if official is not None:
            lines.append(f"| {name} | official two steps, summed | {fmt(official)} converters "
                         f"({fmt(official_total)} subprocesses) | | |")
        memory = _cell_memory(runs.get("ours-v3.0", []))[0]
        targets.append(f"| {name} | {fmt(ratio(official, v3), 'x', 2)} (subprocesses: "
                       f"{fmt(ratio(official_total, v3), 'x', 2)}) | {fmt(ratio(v3, (v21 or 0) + (cp or 0)), 'x', 2)} "
                       f"({fmt(v3)} / ({fmt(v21)} + {fmt(cp, 's', 2)})) | {memory} |")
    return results, lines + targets


# -- quantiles --------------------------------------------------------------------------------------
QUANTILE_RUNS = {"v2.1": (), "v2.1 --quantiles": ("--quantiles",), "v3.0 --no-quantiles": ("--to", "v3.0",
                 "--no-quantiles"), "v3.0 (quantiles: default)": ("--to", "v3.0")}


def bench_quantiles(args, cache: Path) -> tuple[dict, list[str]]:
    results, lines = {}, ["| dataset | run | median | cost of quantiles (target: <= +15 % numeric, "
                          "not measurable on video) | peak process MB | peak tree MB (RSS / PSS) |",
                          "|---|---|---|---|---|---|"]
    for name in args.quantile_sets:
        dataset = ensure_dataset(name, cache, log=log)
        runs: dict[str, list[Sample]] = {}
        for rep in range(args.reps):  # interleaved, so that drift of the machine hits every variant alike
            for label, extra in QUANTILE_RUNS.items():
                log(f"[quantiles/{name}] {label} rep {rep + 1}")
                runs.setdefault(label, []).append(ours(dataset, *extra))
        results[name] = runs
        base = {"v2.1 --quantiles": "v2.1", "v3.0 (quantiles: default)": "v3.0 --no-quantiles"}
        for key, samples in runs.items():
            cost = ""
            if key in base:
                without, with_ = median(runs[base[key]]), median(samples)
                cost = f"{100 * (with_ / without - 1):+.1f} % ({fmt(with_ - without, 's', 2)})"
            lines.append(f"| {name} | {key} | {fmt(median(samples), 's', 2)} "
                         f"(runs: {', '.join(f'{s.seconds:.2f}' for s in samples)}) | {cost} "
                         f"| {' | '.join(_cell_memory(samples))} |")
    return results, lines


# -- tiny tasks -------------------------------------------------------------------------------------
def api_run(dataset: Path, *options: str) -> dict:
    """One ``dask_stats.convert`` call in a fresh process: its phase timings and task count."""
    with tempfile.TemporaryDirectory(prefix="bench_api_", dir=_scratch(dataset)) as tmp:
        out = subprocess.run([sys.executable, __file__, "--api-run", str(dataset), f"{tmp}/out", *options],
                             check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _api_run_inside(dataset: str, output: str, options: list[str]) -> None:
    import dask_stats

    kwargs = dict(option.split("=", 1) for option in options)
    t0 = time.perf_counter()
    result = dask_stats.convert(dataset, output, quiet=True, **kwargs)
    print(json.dumps({"tasks": result.tasks, "timings": result.timings, "episodes": result.episodes,
                      "call_s": time.perf_counter() - t0}))


def count_tasks(dataset: Path) -> dict:
    """The tasks ``convert`` builds for ``dataset`` with default settings (the graph only; nothing runs)."""
    from dask_stats.engine.tasks import build_tasks
    from dask_stats.formats import plan_dataset
    from dask_stats.options import Options
    from dask_stats.storage import Store
    from dask_stats.video import get_backend

    options = Options.of()
    plan, _ = plan_dataset(Store(str(dataset)), options.stats)
    tasks = build_tasks(plan, options, get_backend("pyav"))
    kinds = [t.kind for t in tasks]
    return {"total": len(tasks), "video": kinds.count("video"), "parquet": kinds.count("parquet")}


TINY_VARIANTS = {"ours": (), "ours-threads": ("--scheduler", "threads"),
                 "ours-processes": ("--scheduler", "processes")}  # the default, and each local cluster kind


def bench_tiny(args, cache: Path) -> tuple[dict, list[str]]:
    dataset = ensure_replicated("tiny", args.tiny_episodes, cache, log=log)
    runs: dict[str, list[Sample]] = {}
    for rep in range(args.reps):
        for name, options in TINY_VARIANTS.items():
            log(f"[tiny] {name} rep {rep + 1}")
            runs.setdefault(name, []).append(ours(dataset, *options))
        log(f"[tiny] command floor rep {rep + 1}")
        evict(dataset)
        runs.setdefault("command-floor-decode-all", []).append(
            run.run_command_floor(dataset, "decode-all", processes=2, reuse=True))
    tasks = count_tasks(dataset)
    api_set = ensure_replicated("tiny", min(args.tiny_api_episodes, args.tiny_episodes), cache, log=log)
    log(f"[tiny] API run on {api_set.name} (phases)")
    evict(api_set)
    api = api_run(api_set)
    ours_s, floor_s = median(runs["ours"]), median(runs["command-floor-decode-all"])
    timings = api["timings"]
    lines = ["| dataset | run | median | this / command floor (target <= 1.25x) | peak process MB "
             "| peak tree MB (RSS / PSS) |", "|---|---|---|---|---|---|"]
    for key, samples in runs.items():
        lines.append(f"| tiny-{args.tiny_episodes} | {key} | {fmt(median(samples))} "
                     f"| {fmt(ratio(median(samples), floor_s), 'x', 2)} | {' | '.join(_cell_memory(samples))} |")
    per_task = (ours_s - floor_s) / tasks["total"] if tasks["total"] else None
    lines += ["", f"Tasks: {tasks['total']} ({tasks['video']} video tasks for {args.tiny_episodes} episodes, "
              f"{tasks['parquet']} Parquet partitions); "
              f"(ours - command floor) / task = {fmt(1e3 * per_task if per_task is not None else None, ' ms', 2)}.",
              f"API run on {api_set.name} ({api['tasks']} tasks, a fresh python calling dask_stats.convert): plan "
              f"{timings['plan']:.1f} s, compute {timings['compute']:.1f} s, verify+write "
              f"{timings['total'] - timings['plan'] - timings['compute']:.1f} s, total {timings['total']:.1f} s; "
              f"compute / task = {1e3 * timings['compute'] / api['tasks']:.2f} ms."]
    return {"tiny": runs, "tiny-api": api, "tiny-tasks": tasks}, lines


# -- client memory ----------------------------------------------------------------------------------
def bench_client(args, cache: Path) -> tuple[dict, list[str]]:
    results = {}
    lines = ["| episodes x cameras | tasks | client peak RSS MB (target < 1 GB) | client RSS before convert MB "
             "| growth MB | growth KB / episode | scheduler process peak MB | plan s | compute s | verify+write s "
             "| total s | ms / episode |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in sorted(args.client_episodes):
        dataset = ensure_replicated("client", n, cache, log=log)
        log(f"[client] {n} episodes")
        evict(dataset)
        with tempfile.TemporaryDirectory(prefix="bench_client_", dir=_scratch(dataset)) as tmp:
            proc = subprocess.run([sys.executable, str(HERE / "client_memory.py"), str(dataset), f"{tmp}/out",
                                   "--phases"], check=True, capture_output=True, text=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"[client] {n} episodes: {json.dumps(r)}")  # as it comes: a long run stopped later keeps it
        results[n] = r
        t = r["timings"]
        growth = r["client_peak_mb"] - r["client_before_mb"]
        lines.append(f"| {n:,} x 3 | {r['tasks']:,} | {r['client_peak_mb']:.0f} | {r['client_before_mb']:.0f} "
                     f"| {growth:.0f} | {1024 * growth / n:.2f} | {r['scheduler_peak_mb']:.0f} | {t['plan']:.1f} "
                     f"| {t['compute']:.1f} | {t['total'] - t['plan'] - t['compute']:.1f} | {t['total']:.1f} "
                     f"| {1e3 * t['total'] / n:.2f} |")
    names = [p["phase"] for p in next(iter(results.values()))["phases"]] if results else []
    lines += ["", "Per step of convert: seconds / RSS growth during the step (MB) / the step's own peak (MB):", "",
              "| episodes | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for n, r in results.items():
        cells = []
        for name in names:
            steps = [p for p in r["phases"] if p["phase"] == name]
            cells.append(f"{sum(p['s'] for p in steps):.1f} s / "
                         f"{sum(p['rss_after_mb'] - p['rss_before_mb'] for p in steps):+d} / "
                         f"{max(p['peak_mb'] or 0 for p in steps)}")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return results, lines


# -- DROID-like -------------------------------------------------------------------------------------
def bench_droid(args, cache: Path) -> tuple[dict, list[str]]:
    dataset = ensure_dataset(args.droid_set, cache, log=log)
    episodes = json.loads((dataset / "meta/info.json").read_text())["total_episodes"]
    reps = args.droid_reps or args.reps
    runs: dict[str, list[Sample]] = {}
    for rep in range(reps):
        for fmt_ in ("v2.1", "v3.0"):
            for workers in (1, 2):
                label = f"{fmt_} {workers} worker{'s' * (workers > 1)}"
                log(f"[droid] {label} rep {rep + 1}")
                runs.setdefault(label, []).append(ours(dataset, "--to", fmt_, "--num-workers", str(workers),
                                                      "--scheduler", args.droid_scheduler))
        for processes in (1, 2):  # the machine's own scaling: the same decoding in 1 and 2 plain processes
            label = f"command floor, {processes} process{'es' * (processes > 1)}"
            log(f"[droid] {label} rep {rep + 1}")
            evict(dataset)
            runs.setdefault(label, []).append(run.run_command_floor(dataset, "decode-all", processes, reuse=True))
    floors = [median(runs[f"command floor, {p} process{'es' * (p > 1)}"]) for p in (1, 2)]
    lines = ["| run | median | episodes/s | episodes/s/core | scaling 1 -> 2 workers (target >= 1.8x) "
             "| peak process MB | " + " | ".join(f"DROID on {c} cores" for c in PROJECTION_CORES) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(PROJECTION_CORES)]
    for fmt_ in ("v2.1", "v3.0"):
        one, two = median(runs[f"{fmt_} 1 worker"]), median(runs[f"{fmt_} 2 workers"])
        for workers, seconds in ((1, one), (2, two)):
            per_core = episodes / seconds / workers
            projection = " | ".join(f"{DROID_EPISODES / (per_core * c) / 60:.0f} min" for c in PROJECTION_CORES)
            scaling = f"{one / two:.2f}x" if workers == 2 else ""
            lines.append(f"| {args.droid_set} {fmt_}, {workers} worker{'s' * (workers > 1)} | {fmt(seconds)} "
                         f"| {episodes / seconds:.2f} | {per_core:.2f} | {scaling} "
                         f"| {_cell_memory(runs[f'{fmt_} {workers} worker' + 's' * (workers > 1)])[0]} "
                         f"| {projection} |")
    lines += ["", f"Command floor (decode every frame, histogram the sampled ones): 1 process {fmt(floors[0])}, "
              f"2 processes {fmt(floors[1])}: this machine scales {floors[0] / floors[1]:.2f}x from 1 to 2 processes; "
              f"ours v2.1 / floor: {median(runs['v2.1 1 worker']) / floors[0]:.2f}x (1), "
              f"{median(runs['v2.1 2 workers']) / floors[1]:.2f}x (2)."]
    return {args.droid_set: runs}, lines


# -- remote v3.0 -----------------------------------------------------------------------------------
def _moto() -> tuple[subprocess.Popen, dict[str, str]]:
    """moto's S3 server on a free loopback port, with a bucket ``bench``; its process and the AWS_* variables."""
    import socket

    import fsspec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    fs = fsspec.filesystem("s3", endpoint_url=env["AWS_ENDPOINT_URL"], key="bench", secret="bench")
    for _ in range(200):
        try:
            fs.mkdir("bench")
            return server, env
        except Exception:  # noqa: BLE001 - still starting
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto's S3 server did not start")


def bench_remote(args, cache: Path) -> tuple[dict, list[str]]:
    import fsspec

    server, env = _moto()
    fs = fsspec.filesystem("s3", endpoint_url=env["AWS_ENDPOINT_URL"], key="bench", secret="bench")
    results, lines = {}, ["| dataset | run | median | remote / local | peak process MB | peak tree MB (RSS / PSS) |",
                          "|---|---|---|---|---|---|"]
    try:
        for name in args.remote_sets:
            dataset = ensure_dataset(name, cache, log=log)
            fs.put(str(dataset), f"bench/{name}", recursive=True)
            runs: dict[str, list[Sample]] = {}
            for rep in range(args.reps):
                log(f"[remote/{name}] local v3.0 rep {rep + 1}")
                runs.setdefault("local v3.0", []).append(ours(dataset, "--to", "v3.0"))
                log(f"[remote/{name}] S3 -> S3 v3.0 rep {rep + 1}")
                seconds, memory = run.time_convert(f"s3://bench/{name}", f"s3://bench/{name}-v30-{rep}",
                                                   ("--to", "v3.0"), env)
                runs.setdefault("S3 -> S3 v3.0 (moto)", []).append(Sample(seconds, memory,
                                                                           {"load": os.getloadavg()[0]}))
            results[name] = runs
            local = median(runs["local v3.0"])
            for key, samples in runs.items():
                lines.append(f"| {name} | {key} | {fmt(median(samples))} | "
                             f"{fmt(ratio(median(samples), local), 'x', 2)} | {' | '.join(_cell_memory(samples))} |")
    finally:
        server.kill()
        server.wait()
    lines += ["", "moto's server runs on this machine and shares its cores with the conversion."]
    return results, lines


BENCHES = {"v30": bench_v30, "quantiles": bench_quantiles, "tiny": bench_tiny, "client": bench_client,
           "droid": bench_droid, "remote": bench_remote}


def run_rows(names: list[str], args) -> dict:
    """Run the row kinds ``names``; print their tables (markdown) and return the raw results."""
    out = {}
    for name in names:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        results, lines = BENCHES[name](args, args.data)
        load_after = os.getloadavg()
        header = (f"### {name} ({time.strftime('%Y-%m-%d %H:%M')}, {run.machine()}; load average before "
                  f"{load_before[0]:.1f}/{load_before[1]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f} "
                  f"(1/5 min); {time.perf_counter() - t0:.0f} s)")
        print("\n".join([header, "", *lines, ""]), flush=True)
        out[name] = {"load_before": load_before, "load_after": load_after, "lines": lines,
                     "results": _jsonable(results)}
    return out


def _jsonable(results):
    if isinstance(results, Sample):
        return results.__dict__
    if isinstance(results, dict):
        return {str(k): _jsonable(v) for k, v in results.items()}
    if isinstance(results, list):
        return [_jsonable(v) for v in results]
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--api-run"]:
        _api_run_inside(argv[1], argv[2], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "dask_stats_bench")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--official-reps", type=int, default=1)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    out = run_rows(args.sets, args)
    if args.json:
        args.json.write_text(json.dumps({"machine": run.machine(), "rows": out}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
