"""v3.0 -> v2.1 on the h264 set: our whole command against one ``cp -r`` of the videos and against the any4lerobot
route (one ``ffmpeg -ss FROM -to TO -i FILE -c copy`` per episode and camera, run on as many processes as cores).

    python benchmarks/v21_from_v30.py CACHE [--runs N]

The v3.0 dataset is made once from the h264 set (``datasets.ensure_dataset``) under CACHE, untimed.  Each row is the
median wall time of ``--runs`` runs, with the load average (``uptime``) before the first; the machine's load is printed
because these runs share it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import ensure_dataset

from dask_stats.formats.v30.reader import read_dataset


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed(step, prepare, runs: int) -> tuple[float, str]:
    before, times = load(), []
    for _ in range(runs):
        prepare()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    source = ensure_dataset("h264", args.cache)
    v30 = args.cache / "h264-v30"
    if not (v30 / "meta/info.json").is_file():
        subprocess.run([sys.executable, "-m", "dask_stats", "convert", "--root", str(source), "--output", str(v30),
                        "--to", "v3.0", "--quiet"], check=True)
    out = args.cache / "h264-v21"

    def clear():
        for path in (out, out.with_name(out.name + ".v2.1-partial")):
            shutil.rmtree(path, ignore_errors=True)

    def ours():
        subprocess.run([sys.executable, "-m", "dask_stats", "convert", "--root", str(v30), "--output", str(out),
                        "--to", "v2.1", "--quiet", "--no-resume"], check=True)

    def copy():
        out.mkdir(parents=True)
        subprocess.run(["cp", "-r", str(v30 / "videos"), str(out / "videos")], check=True)

    dataset = read_dataset(str(v30))
    cuts = [(v30 / ep.videos[key].path, ep.videos[key].from_timestamp, ep.videos[key].to_timestamp,
             out / f"videos/chunk-000/{key}/episode_{ep.index:06d}.mp4")
            for ep in dataset.episodes for key in dataset.video_keys]

    def ffmpeg_one(cut):
        source_file, start, end, dest = cut
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{start}", "-to", f"{end}",
                        "-i", str(source_file), "-c", "copy", str(dest)], check=True)

    def ffmpeg():
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(ffmpeg_one, cuts))

    rows = {}
    for name, step in (("cp -r videos", copy), ("ffmpeg -ss -to -c copy per episode", ffmpeg),
                       ("dask_stats convert --to v2.1", ours)):
        seconds, before = timed(step, clear, args.runs)
        rows[name] = {"seconds": round(seconds, 2), "uptime": before}
        print(f"{name:40} {seconds:7.2f} s   ({before})", flush=True)
    clear()
    base = rows["cp -r videos"]["seconds"]
    print(json.dumps({"videos_mb": sum(f.stat().st_size for f in (v30 / "videos").rglob("*.mp4")) / 2**20,
                      "episodes": len(dataset.episodes), "cameras": len(dataset.video_keys),
                      "ours_over_cp": round(rows["dask_stats convert --to v2.1"]["seconds"] / base, 2),
                      "ffmpeg_over_cp": round(rows["ffmpeg -ss -to -c copy per episode"]["seconds"] / base, 2),
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
