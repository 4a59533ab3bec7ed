"""``convert``: plan -> writer -> run -> merge -> verify -> ``writer.commit``, whatever the formats (the writer is
chosen by :func:`dask_stats.formats.choose`)."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from distributed import Client

from .check import output_problems, preflight
from .engine import runner
from .engine.checkpoint import Checkpoint, fingerprint, target_lock
from .engine.progress import Phases
from .engine.tasks import Results, Task, build_tasks, dataset_quantiles
from .errors import DatasetError, NothingToDo, Problem, TaskError, VerificationError
from .formats import Computed, Writer, finished_output, published_findings, recover
from .formats.v2 import layout
from .options import Options, quantile_list
from .plan import Plan, read_json
from .stats.moments import MomentsTable
from .stats.quantiles import quantile_key
from .stats.records import episode_records
from .stats.verify import VerificationReport, verify
from .storage import Store
from .video import get_backend


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
    phases: list[tuple[int, int]] = field(default_factory=list)  # per phase of tasks: (resumed, tasks)
    format: str = "v2.1"  # what was written
    stats_file: str | None = layout.EPISODES_STATS  # the per-episode stats file written, relative (None: several)
    quantiles: tuple[float, ...] = ()  # the quantile stats written
    notes: list[str] = field(default_factory=list)  # what the commit did besides writing the target (the writer's)

    @property
    def tasks(self) -> int:
        return sum(total for _, total in self.phases)

    @property
    def resumed(self) -> int:
        """Tasks whose results came from an interrupted run's checkpoint."""
        return sum(done for done, _ in self.phases)

    @property
    def episodes_stats_path(self) -> Path | str | None:
        if self.stats_file is None:
            return None
        return self.output / self.stats_file if isinstance(self.output, Path) else f"{self.output}/{self.stats_file}"

    def summary(self) -> str:
        skipped = "".join(f"\n  no stats for {name}: {why}" for name, why in self.skipped.items())
        skipped += "".join(f"\n  {warning}" for warning in self.warnings)
        return (
            f"Converted {self.episodes} episodes, {self.frames} frames, {len(self.features)} features "
            f"in {self.timings.get('total', 0):.1f} s"
            + (f" ({_resumed_text(self.phases)} resumed from a checkpoint)" if self.resumed else "")
            + f"{skipped}\n"
            f"  verification: {self.verification.outcome}\n"
            f"  {self.format} dataset: {self.output}"
            + (f"\n  stats:        {self.episodes_stats_path}" if self.stats_file else "")
            + f"\n  quantiles:    {quantile_names(self.quantiles) or 'none'}"
            + "".join(f"\n  {note}" for note in self.notes)
        )


def quantile_names(qs: tuple[float, ...]) -> str:
    """lerobot's names of the quantile stats, "q01, q99" ("" for none)."""
    return ", ".join(quantile_key(q) for q in qs)


def _resumed_text(phases: list[tuple[int, int]]) -> str:
    """"24 of 33 tasks", then ", then 2 of 2 follow-up tasks" for a writer's later phase: the counts printed when
    each phase resumed."""
    return ", then ".join(f"{done} of {total} {'tasks' if i == 0 else 'follow-up tasks'}"
                          for i, (done, total) in enumerate(phases) if i == 0 or done)


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


def read_through(root: str | os.PathLike, reader: type[Writer], *, client: Client | None = None,
                 storage_options: dict | None = None, **options) -> Writer:
    """Compute the stats of the dataset at ``root`` as :func:`convert` would (the same options; ``force`` is
    implied) and hand them to ``reader``, a writer that writes nothing (e.g. the stats doctor's
    ``formats.report.ReportWriter``); the dataset is only read.  Returns the committed reader."""
    if reader.writes:
        raise ValueError(f"{reader.__name__} writes: use convert()")
    opts = Options.of(**{**options, "force": True})
    source = Store(root, storage_options)
    state: dict = {}
    with target_lock(source):  # a conversion into the same dataset cannot change it under the report
        _run(source, source, opts, client, state, reader=reader)
    return state["writer"]


def describe(root: str | os.PathLike, output: str | os.PathLike | None = None, *,
             storage_options: dict | None = None, **options) -> str:
    """What :func:`convert` with the same arguments would do, in one paragraph, without computing or writing
    anything: the formats, what is written, copied or replaced.  Raises what the real run's preflight would
    (DatasetError naming the problems, NothingToDo)."""
    opts = Options.of(**options)
    source = Store(root, storage_options)
    target = Store(output, storage_options) if output is not None else source
    in_place = output is None
    if not in_place:
        _check_output(source, target, opts)
    plan, kind, findings = preflight(source, opts, get_backend(opts.stats.video_backend), in_place=in_place)
    opts = _for_writer(opts, kind)
    writer = kind(plan, target, opts, in_place=in_place)
    if writer.problems():
        raise DatasetError(writer.problems())
    qs = opts.stats.quantile_levels
    what = (f"recompute the stats of {_location(source)}" if plan.version == writer.format
            else f"convert {_location(source)}")
    copy = ("a copy: the other files hard-linked, or copied across filesystems" if writer.mirrors else "a copy")
    lines = [f"would {what} ({plan.version}: {len(plan.episodes)} episodes, {plan.total_frames} frames, "
             f"{len(plan.stats_features)} features with stats) to {writer.format}",
             f"  writes: {writer.description}, quantiles: {quantile_names(qs) or 'none'}",
             f"  into:   {_location(target)}" + (" (in place)" if in_place
                                                 else f" ({copy}; the source is not modified)")]
    lines += [f"  then:   {step}" for step in writer.aftermath()]
    lines += [f"  {problem}" for problem in [*findings, *opts.stats.quantile_problems()]]
    return "\n".join(lines)


def _check_output(source: Store, target: Store, opts: Options) -> None:
    """Raise what an ``--output`` target gives: NothingToDo when it holds the finished conversion, DatasetError
    when it cannot be written (inside the source, not made by dask_stats...)."""
    problems = output_problems(source, target)
    if not problems:
        return
    version = finished_output(source, target, opts.stats) if problems[0].code == "output-not-empty" else None
    if version:
        where = target.display(target.root)
        raise NothingToDo(Problem(f"{where} already holds the {version} conversion", severity="info",
                                  code="already-converted"), version, "", output=where)
    raise DatasetError(problems)


def _convert(source: Store, target: Store, opts: Options, client: Client | None) -> ConversionResult:
    """:func:`_run` with an interrupted run's exception saying where its unfinished work lies (``partial``)."""
    state: dict = {}
    try:
        return _run(source, target, opts, client, state)
    except (KeyboardInterrupt, TaskError) as exc:
        exc.partial = getattr(state.get("writer"), "partial", None)
        raise


def _run(source: Store, target: Store, opts: Options, client: Client | None, state: dict,
         reader: type[Writer] | None = None) -> ConversionResult:
    """The conversion; ``reader``: a writer that writes nothing (``writes = False``), run instead of the one
    :func:`formats.choose` picks, on a dataset that is only read."""
    backend = get_backend(opts.stats.video_backend)  # resolved once; the tasks carry it to the workers
    start = time.perf_counter()
    output = None if target is source else target
    in_place = output is None and reader is None  # a reader changes nothing, not even in place
    findings = recover(source) if in_place else []  # e.g. finish a swap cut between its two renames
    if output is not None:
        _check_output(source, target, opts)
    if reader is None:
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
            plan, kind, found = preflight(source, opts, backend, in_place=in_place, client=dask_client)
            findings += found
            kind = reader or kind
            opts = _for_writer(opts, kind)  # the target and its default quantiles, for the fingerprint
            plan.bind(opts.stats, target.display(target.root))  # task keys: this run's, and resumable
            writer = state["writer"] = kind(plan, target, opts, in_place=in_place)
            if writer.problems():
                raise DatasetError(writer.problems())
        timings = {"plan": time.perf_counter() - start}

        computing = writer.stats_plan()  # the plan whose stats are computed (none when they are carried over)
        tasks = build_tasks(computing, opts, backend) + writer.tasks()
        checkpoint = Checkpoint(target, fingerprint(plan, opts.stats))
        results = Results(computing)

        def landed(task: Task, result: object) -> None:
            checkpoint.save(task.key, result)
            results.add(task, result)

        done = _resume(checkpoint, tasks, results, writer) if opts.run.resume else set()
        phases = [(len(done), len(tasks))]
        writer.begin(resuming=bool(done))
        if done and not quiet:
            print(f"Resuming: {len(done)} of {len(tasks)} tasks were finished by an earlier run")
        if dask_client is None:
            dask_client = stack.enter_context(runner.open_client(opts.run, client))
        url = runner.dashboard_url(dask_client, opts.run) if client is None else client.dashboard_link
        if not quiet and url:
            print(f"Dask dashboard: {url}", flush=True)
        runner.run(dask_client, tasks, done, landed, retries=opts.run.retries, quiet=quiet,
                   stall_s=runner.stall_limit_s(tasks))
        later = writer.later_tasks(results.files)  # e.g. the stream copies, which need the first phase's files
        if later:
            done = _resume(checkpoint, later, results, writer) if opts.run.resume else set()
            phases.append((len(done), len(later)))
            if done and not quiet:
                print(f"Resuming: {len(done)} of {len(later)} follow-up tasks were finished by an earlier run")
            runner.run(dask_client, later, done, landed, retries=opts.run.retries, quiet=quiet,
                       stall_s=runner.stall_limit_s(later), label="files written")
        tables = results.tables()
        qs = opts.stats.quantile_levels
        quantiles = None
        if writer.dataset_quantiles and qs:
            quantiles = dataset_quantiles(dask_client, computing, tables, results.histograms, qs, opts.run)
    findings += nonfinite_warnings(computing, tables) + opts.stats.quantile_problems()
    timings["compute"] = time.perf_counter() - start - timings["plan"]
    with phase("verifying"):
        try:
            report = verify_or_stop(computing, tables, opts, writer.verification)
        except VerificationError:
            checkpoint.clear()  # numbers that failed verification are never resumed (e.g. after restoring a file)
            raise
    with phase("writing"):
        records = episode_records([ep.index for ep in plan.episodes], {f: tables[f] for f in computing.stats_features},
                                  plan.features, qs)
        findings += published_findings(plan, records)
        # hard links made by a copy change the source files' ctime: the results stay valid for this command
        computed = Computed(records, tables, quantiles, results.files,
                            after_copy=lambda: checkpoint.rekey(fingerprint(plan, opts.stats)))
        writer.commit(computed)
        findings += computed.warnings
    checkpoint.clear()
    timings["total"] = time.perf_counter() - start
    return ConversionResult(_location(source), _location(target), len(plan.episodes), plan.total_frames,
                            plan.stats_features, plan.skipped, report, findings, timings, phases=phases,
                            format=writer.format, stats_file=writer.stats_file, quantiles=qs,
                            notes=writer.outcome())


def _for_writer(opts: Options, kind: type[Writer]) -> Options:
    """The options of a run of writer ``kind``: its format as the target, and its default quantiles (lerobot's, where
    the target has dataset-wide quantiles) unless quantiles were asked for."""
    qs = opts.stats.quantiles if opts.stats.quantiles is not None else quantile_list(kind.dataset_quantiles)
    return replace(opts, stats=replace(opts.stats, to=kind.format, quantiles=qs))


def _videos(store: Store) -> int:
    """How many videos the dataset declares (episodes x cameras in info.json; 0 if it cannot say): what the local
    cluster is chosen by, before planning."""
    try:
        info = read_json(store, layout.INFO)
        cameras = sum(1 for feature in info["features"].values() if feature.get("dtype") == "video")
        return int(info["total_episodes"]) * cameras
    except (DatasetError, KeyError, TypeError, ValueError, AttributeError):
        return 0  # the preflight reports what is wrong with info.json


def _resume(checkpoint: Checkpoint, tasks: list[Task], results: Results, writer: Writer) -> set[str]:
    """Fold the checkpointed results of ``tasks`` that the writer keeps (their output files are still as written)
    into ``results`` (one at a time); their keys."""
    by_key = {t.key: t for t in tasks}
    done = set()
    for key, result in checkpoint.results(by_key):
        if writer.kept(by_key[key], result):
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


def verify_or_stop(plan: Plan, tables: dict[str, MomentsTable], options: Options,
                   mode: str = "gate") -> VerificationReport:
    """Compare with meta/stats.json (``mode``: the writer's ``verification``, "gate" or "report"); a blocking
    mismatch raises before anything is written."""
    if options.safety.skip_verify:
        return VerificationReport(False, "--skip-verify")
    if not plan.stats_features:
        return VerificationReport(False, "no stats were computed: the published ones are kept")
    stats_json = plan.store.path(layout.STATS)
    reference = json.loads(plan.store.read_text(stats_json)) if plan.has_stats_json else None
    report = verify(tables, plan.features, reference, strict=options.safety.strict_verify,
                    mode=mode, levels=options.stats.quantile_levels)
    if report.failures:
        raise VerificationError(report.problem(plan.store.display(stats_json)))
    return report


def _location(store: Store) -> Path | str:
    return Path(store.root) if store.local else store.url
