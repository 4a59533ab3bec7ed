"""``convert``: plan, compute per-episode stats on Dask, verify, then commit the v2.1 metadata."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from distributed import Client

from .check import OUTPUT_MARKER, mark_output, output_problems, preflight
from .engine import runner
from .engine.checkpoint import Checkpoint, fingerprint, target_lock
from .engine.progress import Phases
from .engine.tasks import Results, Task, build_tasks, dataset_quantiles
from .errors import DatasetError, Problem, VerificationError
from .formats.v2 import layout
from .formats.v2.info import corrected_info
from .formats.v30.restat import commit_restat
from .formats.v30.writer import V30Build
from .options import Options
from .plan import Plan, read_json, read_jsonl
from .stats.moments import MomentsTable
from .stats.records import episode_records, info_text, jsonl_text
from .stats.verify import VerificationReport, compare_episode_stats, verify
from .storage import Store
from .video import get_backend

EPISODES_STATS = layout.EPISODES_STATS


@dataclass
class ConversionResult:
    """What a conversion did: where, how much, how long, and how verification went."""

    source: Path | str  # a local path, or the URL of a remote dataset
    output: Path | str
    episodes: int
    frames: int
    features: list[str]
    skipped: dict[str, str]
    verification: VerificationReport
    warnings: list[Problem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    tasks: int = 0
    resumed: int = 0  # tasks whose results came from an interrupted run's checkpoint
    format: str = "v2.1"  # what was written

    @property
    def episodes_stats_path(self) -> Path | str:
        return self.output / EPISODES_STATS if isinstance(self.output, Path) else f"{self.output}/{EPISODES_STATS}"

    def summary(self) -> str:
        skipped = "".join(f"\n  no stats for {name}: {why}" for name, why in self.skipped.items())
        skipped += "".join(f"\n  {warning}" for warning in self.warnings)
        return (
            f"Converted {self.episodes} episodes, {self.frames} frames, {len(self.features)} features "
            f"in {self.timings.get('total', 0):.1f} s"
            + (f" ({self.resumed} of {self.tasks} tasks resumed from a checkpoint)" if self.resumed else "")
            + f"{skipped}\n"
            f"  verification: {self.verification.outcome}\n"
            f"  {self.format} dataset: {self.output}"
            + (f"\n  stats:        {self.episodes_stats_path}" if self.format == "v2.1" else "")
        )


def convert(root: str | os.PathLike, output: str | os.PathLike | None = None, *, client: Client | None = None,
            storage_options: dict | None = None, **options) -> ConversionResult:
    """Convert the LeRobot v2.0 or v2.1 dataset at ``root`` to v2.1 (default) or, with ``to="v3.0"``, to v3.0;
    recompute the stats of a v3.0 dataset (with ``force=True``).

    In place by default; with ``output``, a converted copy is written there (data and videos hard-linked
    or copied) and ``root`` is not modified.  ``options`` are the command line's flags with underscores
    (``video_backend="pyav"``, ``num_workers=4``, ``exclude_features=[...]``; all in :mod:`dask_stats.options`).
    Pass a ``distributed.Client`` to run on an existing cluster. ``root`` and ``output`` may be fsspec URLs
    (``s3://bucket/dataset``...; ``storage_options`` go to the filesystem) so that workers read the files
    where they live.
    """
    opts = Options.of(**options)
    source = Store(root, storage_options)
    target = Store(output, storage_options) if output is not None else source
    with target_lock(target):  # a second run into the same target refuses instead of racing this one
        return _convert(source, target, opts, client)


def _convert(source: Store, target: Store, opts: Options, client: Client | None) -> ConversionResult:
    backend = get_backend(opts.stats.video_backend)  # resolved once; the tasks carry it to the workers
    start = time.perf_counter()
    output = None if target is source else target
    if output is not None:
        problems = output_problems(source, target)
        if problems:
            raise DatasetError(problems)
    target.remove_temporaries("meta")  # left by a run killed while writing
    if client is None and not opts.run.address():
        opts = replace(opts, run=replace(opts.run, scheduler=runner.local_kind(opts.run, _videos(source))))
    phase = Phases(quiet=opts.run.quiet)
    quiet = opts.run.quiet
    with ExitStack() as stack:
        # the preflight checks the episodes on a cluster whose workers are not threads of this process: that one is
        # opened first; a local threads cluster after planning (a refused dataset does not wait for its start)
        early = client is not None or opts.run.address() or opts.run.scheduler == "processes"
        dask_client = stack.enter_context(runner.open_client(opts.run, client)) if early else None
        with phase("planning and checking"):
            plan, findings = preflight(source, opts, backend, in_place=output is None, client=dask_client)
            restat = plan.version == "v3.0"  # an existing v3.0 dataset gets new stats, and stays v3.0
            if restat:
                opts = replace(opts, stats=replace(opts.stats, to="v3.0"))
            build = V30Build(plan, target, opts, in_place=output is None) if opts.stats.to == "v3.0" and not restat \
                else None
            if build and build.problems():
                raise DatasetError(build.problems())
        timings = {"plan": time.perf_counter() - start}

        tasks = build_tasks(plan, opts, backend) + (build.first_tasks() if build else [])
        checkpoint = Checkpoint(target, fingerprint(plan, opts.stats))
        results = Results(plan)

        def landed(task: Task, result: object) -> None:
            checkpoint.save(task.key, result)
            results.add(task, result)

        done = _resume(checkpoint, tasks, results) if opts.run.resume else set()
        resumed = len(done)
        if done and not quiet:
            print(f"Resuming: {len(done)} of {len(tasks)} tasks were finished by an earlier run")
        if dask_client is None:
            dask_client = stack.enter_context(runner.open_client(opts.run, client))
        url = runner.dashboard_url(dask_client, opts.run) if client is None else client.dashboard_link
        if not quiet and url:
            print(f"Dask dashboard: {url}", flush=True)
        runner.run(dask_client, tasks, done, landed, retries=opts.run.retries, quiet=quiet,
                       stall_s=runner.stall_limit_s(tasks))
        if build:  # the stream copies need the probes and data files of the first phase
            video_tasks, video_groups = build.video_tasks(results.files, tasks)
            done = _resume(checkpoint, video_tasks, results) if opts.run.resume else set()
            resumed += len(done)
            runner.run(dask_client, video_tasks, done, landed, retries=opts.run.retries, quiet=quiet,
                           stall_s=runner.stall_limit_s(video_tasks), label="videos copied")
            tasks += video_tasks
        tables = results.tables()
        qs = opts.stats.quantile_levels
        quantiles = None
        if (build or restat) and qs:
            quantiles = dataset_quantiles(dask_client, plan, tables, results.histograms, qs)
    findings += nonfinite_warnings(plan, tables)
    timings["compute"] = time.perf_counter() - start - timings["plan"]
    with phase("verifying"):
        try:
            report = verify_or_stop(plan, tables, opts)
        except VerificationError:
            checkpoint.clear()  # numbers that failed verification are never resumed (e.g. after restoring a file)
            raise
    with phase("writing"):
        records = episode_records([ep.index for ep in plan.episodes], {f: tables[f] for f in plan.stats_features},
                                  plan.features, qs)
        if plan.version == "v2.1" and plan.store.is_file(plan.store.path(layout.EPISODES_STATS)):
            findings += compare_episode_stats(records, read_jsonl(plan.store, layout.EPISODES_STATS), plan.features)
        if build:
            build.commit(records, tables, results.files, video_tasks, video_groups, quantiles)
        elif restat:
            commit_restat(plan, target, records, tables, quantiles)
        else:  # hard links made by the copy change the source files' ctime: the results stay valid for this command
            commit(plan, target, records, opts, after_copy=lambda: checkpoint.rekey(fingerprint(plan, opts.stats)))
    checkpoint.clear()
    timings["total"] = time.perf_counter() - start
    return ConversionResult(_location(source), _location(target), len(plan.episodes), plan.total_frames,
                            plan.stats_features, plan.skipped, report, findings, timings, tasks=len(tasks),
                            resumed=resumed, format=opts.stats.to)


def _videos(store: Store) -> int:
    """How many videos the dataset declares (episodes x cameras in info.json; 0 if it cannot say): what the local
    cluster is chosen by, before planning."""
    try:
        info = read_json(store, layout.INFO)
        cameras = sum(1 for feature in info["features"].values() if feature.get("dtype") == "video")
        return int(info["total_episodes"]) * cameras
    except (DatasetError, KeyError, TypeError, ValueError, AttributeError):
        return 0  # the preflight reports what is wrong with info.json


def _resume(checkpoint: Checkpoint, tasks: list[Task], results: Results) -> set[str]:
    """Fold the checkpointed results of ``tasks`` whose output files (if they write one) are still there into
    ``results`` (one at a time); their keys."""
    by_key = {t.key: t for t in tasks if t.output is None or os.path.exists(t.output)}
    done = set()
    for key, result in checkpoint.results(by_key):
        results.add(by_key[key], result)
        done.add(key)
    return done


def nonfinite_warnings(plan: Plan, tables: dict[str, MomentsTable]) -> list[Problem]:
    return [
        Problem(f"{table.nonfinite[i]} rows hold non-finite values (NaN/inf); its stats follow numpy and are NaN/inf",
                severity="warning", episode=plan.episodes[i].index, feature=feature,
                path=plan.store.display(plan.episodes[i].data_path))
        for feature, table in tables.items() for i in np.flatnonzero(table.nonfinite)
    ]


def verify_or_stop(plan: Plan, tables: dict[str, MomentsTable], options: Options) -> VerificationReport:
    """Compare with meta/stats.json; a blocking mismatch raises before anything is written."""
    if options.safety.skip_verify:
        return VerificationReport(False, "--skip-verify")
    stats_json = plan.store.path(layout.STATS)
    reference = json.loads(plan.store.read_text(stats_json)) if plan.has_stats_json else None
    report = verify(tables, plan.features, reference, strict=options.safety.strict_verify)
    if report.failures:
        raise VerificationError(Problem(
            "the new stats disagree with meta/stats.json; nothing was written:\n" + report.table(only_problems=True),
            path=plan.store.display(stats_json),
            fix="check the dataset; if meta/stats.json itself is stale, use --skip-verify"))
    return report


def commit(plan: Plan, target: Store, records: list[dict], options: Options, after_copy=None) -> None:
    """Write episodes_stats.jsonl, then info.json (the commit point), then drop stats.json if asked.  A copy
    (``--output``) is marked as this tool's until it is complete, so that the same command resumes it.  An
    error or interrupt from here on carries ``partial_commit`` (something may already be written)."""
    try:
        if target != plan.store:
            mark_output(plan.store, target)
            plan.store.mirror_to(target, skip={EPISODES_STATS})
            if after_copy is not None:
                after_copy()
        target.write_text(target.path(EPISODES_STATS), jsonl_text(records))
        info = corrected_info(plan.info, len(plan.episodes), plan.total_frames)[0]  # the preflight warned
        target.write_text(target.path(layout.INFO), info_text({**info, "codebase_version": "v2.1"}))
        if options.safety.delete_old_stats:
            target.remove(target.path(layout.STATS))
        if target != plan.store:
            target.remove(target.path(OUTPUT_MARKER))
    except BaseException as exc:
        exc.partial_commit = True
        raise


def _location(store: Store) -> Path | str:
    return Path(store.root) if store.local else store.url
