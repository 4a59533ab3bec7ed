"""The options of ``convert`` and ``check``, declared once: the dataclasses below are the Python API's
keywords and, through :func:`add_arguments`, the command line's flags (same names, same checks).

Three groups, because they matter differently:

- :class:`StatsOptions` change the numbers (they are part of the checkpoint fingerprint);
- :class:`SafetyOptions` decide what is checked and written around the numbers;
- :class:`RunOptions` only change how the run goes (where, how parallel, how patient, how talkative).

Why our own layer over argparse rather than tyro, draccus or jsonargparse (all on PyPI): each flag here must take
the bare ``--force``, lerobot's ``--push-to-hub=false`` and ``--no-resume`` at once; an unknown flag gets the
closest known one (``--force-conversion: did you mean --force?``); the same declarations check the Python API's
keywords (:meth:`Options.of`), and ``--help`` imports nothing heavy.  draccus (lerobot's) wants ``--flag=true``
(no bare flag) and suggests nothing; tyro spells booleans ``--flag/--no-flag`` (``--flag=false`` only with flag
conversion off, which then loses the bare flag) and imports rich and typeguard at ``--help``; jsonargparse brings
a config-file system we do not need.  This layer uses argparse's public API only.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import DatasetError, Problem

VIDEO_BACKENDS = ("decord", "pyav", "torchcodec")  # = sorted(video.BACKENDS), which imports PyAV


def _number(kind: type, low: float, inclusive: bool) -> Callable[[Any], Any]:
    """A converter to ``kind`` that refuses NaN and values below ``low`` (or equal to it, if not ``inclusive``)."""
    bound = f">= {low:g}" if inclusive else f"> {low:g}"

    def convert(value):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number {bound}, got {value!r}") from None
        if isinstance(number, float) and not math.isfinite(number) or number < low or (number == low and not inclusive):
            raise ValueError(f"expected a number {bound}, got {value!r}")
        return number

    convert.__name__ = f"{kind.__name__} {bound}"  # argparse names the type in its message
    return convert


positive_int = _number(int, 1, inclusive=True)
count = _number(int, 0, inclusive=True)
positive_float = _number(float, 0, inclusive=False)
non_negative_float = _number(float, 0, inclusive=True)


def parse_bool(value: str | bool) -> bool:
    """``true/false``, ``yes/no``, ``1/0``, ``on/off`` (lerobot's ``--push-to-hub=false`` habit)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


parse_bool.__name__ = "boolean"


def dashboard_address(value: str) -> str:
    """``HOST:PORT`` (a known host or IP, or none for every interface; a port 0-65535, 0: any free one) or
    ``off``."""
    import socket

    text = str(value).strip()
    if text == "off":
        return text
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:8787) or off, got {value!r}")
    try:
        if host:
            socket.getaddrinfo(host.strip("[]"), None)
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"unknown host {host!r} in {value!r} (e.g. 127.0.0.1:8787)") from None
    return text


dashboard_address.__name__ = "HOST:PORT"


def option(default, help: str, *, parse: Callable | None = None, choices=None, metavar: str | None = None,
           many: bool = False, check: bool = False, bare=None, negative=None):
    """A dataclass field that is also a CLI flag: ``help`` and ``parse`` (value check and conversion) serve
    both; ``many`` takes several values; ``check``: the ``check`` command takes it too; ``bare``: the value of
    the flag given without one; ``negative``: the value of ``--no-<flag>``."""
    meta = {"help": help, "parse": parse, "choices": choices, "metavar": metavar, "many": many, "check": check,
            "bare": bare, "negative": negative}
    return field(default=default, metadata=meta)


def quantile_list(value) -> tuple[float, ...]:
    """``True``/"default": lerobot's q01..q99; ``False``/"none": none; else whole percents ("0.02,0.98"), where
    "default" stands for lerobot's ("default,0.02": theirs and q02)."""
    from .stats.quantiles import DEFAULT_QUANTILES, parse_quantiles

    if value is True:
        return DEFAULT_QUANTILES
    if value is False or value == "none" or (isinstance(value, (tuple, list)) and not value):
        return ()
    return parse_quantiles(value)


quantile_list.__name__ = "quantile list"


@dataclass(frozen=True)
class StatsOptions:
    """Options that change the numbers."""

    video_backend: str | type = option("pyav", "video decoder (pyav: default; decord: no AV1; torchcodec: the "
                                       "[torchcodec] extra)", choices=VIDEO_BACKENDS, check=True)
    tolerance_s: float = option(1e-4, "max distance between a sampled row's timestamp and its video frame, in "
                                      "seconds (default 1e-4)", parse=non_negative_float, metavar="SECONDS",
                                check=True)
    frame_lookup: str = option("timestamp", "match sampled rows to video frames by timestamp (default) or by "
                                            "position (for offset or wall-clock timestamps)",
                               choices=("timestamp", "index"), check=True)
    exclude_features: tuple[str, ...] = option((), "features that get no stats (e.g. declared but absent)",
                                               many=True, metavar="NAME", check=True)
    quantiles: tuple[float, ...] | None = option(
        None, "quantile stats: bare or 'default', lerobot's q01,q10,q50,q90,q99; 'default,0.02,0.98' adds "
              "q02 and q98 to them; a list without 'default' (0.02,0.98) replaces them (pi05 needs q01 and q99: "
              "warned); default: on for --to v3.0, off for v2.1; --no-quantiles: none",
        parse=quantile_list, metavar="Q,...", bare="default", negative="none")
    to: str | None = option(None, "the format to write: v2.1 (episodes_stats.jsonl beside the v2.0 files) or v3.0 "
                                  "(a LeRobot v3.0 dataset: concatenated files, stats in meta/episodes); default: "
                                  "v2.1 for a v2.x dataset, v3.0 for a v3.0 one", choices=("v2.1", "v3.0"))
    data_file_size_in_mb: float | None = option(
        None, "v3.0: start a new data file at this size (MB; default 100 for a new v3.0 dataset; on a v3.0 dataset: "
              "rewrite its data files at this size, default: leave them as they are)", parse=positive_float,
        metavar="MB")
    video_file_size_in_mb: float | None = option(
        None, "v3.0: start a new video file at this size (MB; default 200 for a new v3.0 dataset; on a v3.0 dataset: "
              "rewrite its video files at this size, default: leave them as they are)", parse=positive_float,
        metavar="MB")

    @property
    def file_sizes_given(self) -> bool:
        """Whether a data or video file size was asked for (on a v3.0 dataset: re-chunk it)."""
        return self.data_file_size_in_mb is not None or self.video_file_size_in_mb is not None

    @property
    def quantile_levels(self) -> tuple[float, ...]:
        """The quantiles to compute: as asked (``convert`` fills in the writer's default when none were)."""
        return self.quantiles or ()

    def quantile_problems(self) -> list[Problem]:
        """A warning when the quantiles asked for leave out some of lerobot's defaults (q01 and q99 are what pi05
        normalizes with); none when none were asked for."""
        from .stats.quantiles import DEFAULT_QUANTILES, quantile_key

        missing = [quantile_key(q) for q in DEFAULT_QUANTILES if self.quantiles and q not in self.quantiles]
        if not missing:
            return []
        asked = ",".join(f"{q:g}" for q in self.quantiles)
        return [Problem(f"--quantiles {asked} replaces lerobot's default quantiles: {', '.join(missing)} are not "
                        "written (pi05 normalizes with q01 and q99)", severity="warning", code="quantiles-replaced",
                        fix=f"--quantiles default,{asked} keeps lerobot's and adds these")]

    def fingerprint(self) -> dict:
        """The options as they enter the checkpoint fingerprint (decoders differ slightly: the backend counts)."""
        return {"frame_lookup": self.frame_lookup, "tolerance_s": self.tolerance_s,
                "exclude_features": sorted(self.exclude_features),
                "video_backend": getattr(self.video_backend, "name", self.video_backend),
                "quantiles": list(self.quantile_levels), "to": self.to,
                "sizes": [self.data_file_size_in_mb, self.video_file_size_in_mb]}


@dataclass(frozen=True)
class SafetyOptions:
    """What is checked before and after computing, and what may be written or removed."""

    force: bool = option(False, "recompute a dataset that is already converted", check=True)
    skip_check: bool = option(False, "do not run the preflight check first")
    skip_verify: bool = option(False, "do not compare the new stats with meta/stats.json")
    strict_verify: bool = option(False, "also stop on video/image stats that differ from meta/stats.json")
    delete_old_stats: bool = option(False, "remove meta/stats.json once the new stats are committed")


@dataclass(frozen=True)
class RunOptions:
    """Where and how the work runs; the numbers do not depend on these."""

    num_workers: int | None = option(None, "parallel workers (default: all cores)", parse=positive_int, check=True)
    scheduler: str = option("auto", "local cluster: threads (one process, a thread per worker: no start-up cost), "
                                    "processes (a single-threaded process per worker: no contention for one GIL, "
                                    "isolates decoder crashes and hangs; a script needs an if __name__ == "
                                    "'__main__' guard) or auto (default: processes for 1,000 videos or more when "
                                    "run from the command line or a notebook, else threads); check: processes "
                                    "checks on a local cluster, the others in this process",
                            choices=("auto", "threads", "processes"), check=True)
    scheduler_address: str | None = option(None, "run on an existing Dask scheduler (tcp://host:8786); check: "
                                                 "its workers check the episodes' files", metavar="ADDRESS",
                                           check=True)
    dashboard_address: str | None = option(None, "where the local cluster serves its dashboard (default: a free "
                                                 "port on 127.0.0.1, none with --quiet; 'off': none)",
                                           parse=dashboard_address, metavar="HOST:PORT")
    task_timeout: float | None = option(None, "give up on a video (one camera of one episode) or a Parquet partition "
                                              "after this long (default: 120 s + 0.05 s per frame; 300 s + ... for "
                                              "Parquet partitions)", parse=positive_float,
                                        metavar="SECONDS")
    retries: int = option(1, "extra attempts for a failed task (default 1)", parse=count)
    resume: bool = option(True, "reuse results checkpointed by an interrupted run with the same inputs "
                                "(--no-resume: recompute everything)")
    quiet: bool = option(False, "no progress bar or summary")

    def address(self) -> str | None:
        """The existing scheduler to run on, if any: ``scheduler_address``, else dask's ``scheduler-address``
        setting (the ``DASK_SCHEDULER_ADDRESS`` variable or dask's YAML configuration)."""
        import dask  # not distributed: asking costs no cluster machinery

        return self.scheduler_address or dask.config.get("scheduler-address", None)

    def dashboard(self) -> str | None:
        """Where the local cluster serves its dashboard: none with ``quiet`` (the link would not be shown,
        and the dashboard costs 0.4 s to start) unless an address is given; "off" turns it off."""
        if self.dashboard_address == "off":
            return None
        return self.dashboard_address or (None if self.quiet else "127.0.0.1:0")

    def task_timeout_s(self, frames: int, base: float = 120.0) -> float:
        """The timeout of a task handling ``frames`` rows or video frames (generous: it is for hangs)."""
        return self.task_timeout if self.task_timeout is not None else base + 0.05 * frames


GROUPS = {"stats": StatsOptions, "safety": SafetyOptions, "run": RunOptions}


@dataclass(frozen=True)
class Options:
    """All options of a conversion, by group."""

    stats: StatsOptions = StatsOptions()
    safety: SafetyOptions = SafetyOptions()
    run: RunOptions = RunOptions()

    def sized(self, data_mb: float, video_mb: float) -> Options:
        """These options with the file sizes that were not given set to ``data_mb`` and ``video_mb`` (MB)."""
        stats = self.stats
        return replace(self, stats=replace(stats, data_file_size_in_mb=stats.data_file_size_in_mb or data_mb,
                                           video_file_size_in_mb=stats.video_file_size_in_mb or video_mb))

    @classmethod
    def of(cls, **keywords) -> Options:
        """Options from the flat keywords of ``convert``/``check`` (the CLI's flag names with underscores),
        each checked as the command line checks it; an unknown name is refused with the closest known one."""
        known = {f.name: (group, f) for group, kind in GROUPS.items() for f in fields(kind)}
        values: dict[str, dict] = {group: {} for group in GROUPS}
        problems = []
        for name, value in keywords.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                problems.append(Problem(f"unknown option {name!r}", fix=f"did you mean {close[0]!r}?" if close
                                        else f"known options: {', '.join(sorted(known))}"))
                continue
            group, spec = known[name]
            try:
                values[group][name] = _checked(spec, value)
            except ValueError as exc:
                problems.append(Problem(f"option {name}: {exc}"))
        if problems:
            raise DatasetError(problems)
        return cls(**{group: GROUPS[group](**values[group]) for group in GROUPS})


def _checked(spec, value):
    """``value`` for the option ``spec`` as the CLI would accept it (ValueError otherwise)."""
    meta = spec.metadata
    if value is None and spec.default is None:
        return None
    if meta["many"]:
        return tuple([value] if isinstance(value, str) else value)
    if isinstance(spec.default, bool):
        return parse_bool(value)
    if meta["choices"] and not isinstance(value, type) and value not in meta["choices"]:
        raise ValueError(f"expected one of {', '.join(map(str, meta['choices']))}, got {value!r}")
    return meta["parse"](value) if meta["parse"] else value


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add every option that ``command`` ("convert" or "check") takes to ``parser``, in groups."""
    for title, kind in GROUPS.items():
        specs = [f for f in fields(kind) if command == "convert" or f.metadata["check"]]
        if not specs:
            continue
        group = parser.add_argument_group(f"{title} options", kind.__doc__.strip())
        for spec in specs:
            _add(group, spec)


def _add(group, spec) -> None:
    meta, flag = spec.metadata, "--" + spec.name.replace("_", "-")
    common = {"dest": spec.name, "help": meta["help"], "default": spec.default}
    if isinstance(spec.default, bool):
        # --flag, --flag=true/false (lerobot's spelling); options on by default also take --no-flag
        group.add_argument(flag, nargs="?", const=True, type=parse_bool, metavar="BOOL", **common)
        if spec.default:
            group.add_argument("--no-" + flag[2:], dest=spec.name, action="store_false", help=argparse.SUPPRESS)
    elif meta["bare"] is not None:
        group.add_argument(flag, nargs="?", const=meta["parse"](meta["bare"]), type=meta["parse"],
                           metavar=meta["metavar"], **common)
        if meta["negative"] is not None:
            group.add_argument("--no-" + flag[2:], dest=spec.name, action="store_const",
                               const=meta["parse"](meta["negative"]), help=argparse.SUPPRESS)
    elif meta["many"]:
        group.add_argument(flag, nargs="+", metavar=meta["metavar"], **{**common, "default": ()})
    else:
        group.add_argument(flag, choices=meta["choices"], type=meta["parse"], metavar=meta["metavar"], **common)


def keywords(args: argparse.Namespace, command: str) -> dict:
    """The parsed options of ``command`` as keywords for ``convert``/``check``."""
    return {f.name: getattr(args, f.name) for kind in GROUPS.values() for f in fields(kind)
            if command == "convert" or f.metadata["check"]}
