"""``convert_hub``: the Hub round trip as one call (download, convert, plan the push, push), and its dry run.

``python -m dask_stats convert --repo-id ...`` is a thin layer over :func:`convert_hub`; the keywords are the
command line's flags with underscores.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HubError

if TYPE_CHECKING:  # huggingface_hub is imported when the Hub is used, not with the package
    from huggingface_hub import HfApi

    from .hub.download import Download
    from .hub.push import PushPlan, PushResult


@dataclass
class HubConversion:
    """What :func:`convert_hub` did, or would do with ``dry_run``. ``str()`` is the report the command line prints.

    ``status``: ``converted``; ``already-converted`` (on the Hub, or in ``root`` and nothing to push: nothing
    done); ``pushed-only`` (``root`` was already converted, its files were pushed); ``dry-run``.
    """

    repo_id: str
    revision: str
    root: Path  # the local dataset (the download's target)
    output: Path  # where the converted dataset is (``root`` unless ``output`` was given)
    status: str = "converted"
    download: Download | None = None  # None: the Hub was not asked for files
    conversion: object | None = None  # the ConversionResult of the conversion, when it ran
    plan: PushPlan | None = None
    pushed: PushResult | None = None
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def convert_hub(repo_id: str, *, root: str | os.PathLike | None = None, revision: str | None = None,
                output: str | os.PathLike | None = None, push_to_hub: bool = False, branch: str | None = None,
                private: bool | None = None, dry_run: bool = False, api: HfApi | None = None, client=None,
                echo: Callable[[str], None] | None = None, **convert_options) -> HubConversion:
    """Convert the Hub dataset ``repo_id``: download it into ``root``, convert it, and with ``push_to_hub`` push the
    result back to ``branch`` (default ``main``) and tag it.

    ``root`` (default ``HF_LEROBOT_HOME/<repo_id>``) is where the dataset is downloaded and converted in place
    (``output``: a converted copy goes there instead). ``revision`` is what is downloaded (default the ``v2.0``
    tag); a missing ``branch`` is created from it. ``private`` applies when the repo has to be created.
    ``convert_options`` are :func:`dask_stats.convert`'s (``force``, ``delete_old_stats``, ``num_workers``, ...);
    ``to`` picks the target version when the conversion offers it. ``api`` supplies the endpoint and token, ``client``
    a Dask client. ``echo`` receives each report line as it is made (the command line passes ``print``).

    The Hub is asked nothing when ``root`` already holds the dataset and nothing is pushed. Otherwise it is asked
    once with a short timeout: when it cannot be reached, the dataset comes from the Hugging Face cache or ``root``,
    and a push fails at once with :class:`HubError`, before any conversion. A dataset already converted (on the Hub,
    or in ``root`` when nothing is pushed) is not an error: ``status == "already-converted"`` and nothing is done
    (``force=True`` recomputes, re-pushes and moves the tag). ``dry_run`` changes nothing and reports what would be
    downloaded (the real file list, from ``snapshot_download(dry_run=True)``), converted and pushed.
    """
    from huggingface_hub import HfApi

    from .formats import NATURAL_TARGET, AlreadyThere, choose, older, push_layout
    from .formats import PLANNERS as WRITABLE
    from .hub.download import (
        SOURCE_REVISION,
        Download,
        default_root,
        fetch_dataset,
        hub_dataset_version,
        hub_unreachable,
        local_version,
        why_unreachable,
    )
    from .hub.push import layout_for, plan_push, push
    from .options import StatsOptions

    api = api or HfApi()
    revision = revision or SOURCE_REVISION
    force = bool(convert_options.get("force"))
    quiet = bool(convert_options.get("quiet"))
    layout = layout_for(convert_options.get("to") or "v2.1")
    stats_options = StatsOptions(to=convert_options.get("to"),
                                 data_file_size_in_mb=convert_options.get("data_file_size_in_mb"),
                                 video_file_size_in_mb=convert_options.get("video_file_size_in_mb"))
    target = Path(root).expanduser() if root is not None else default_root(repo_id)
    result = HubConversion(repo_id, revision, target, Path(output).expanduser() if output is not None else target)

    def say(line: str) -> None:
        result.lines.append(line)
        if echo is not None:
            echo(line)

    def nothing_to_do(version: str | None) -> bool:
        """Whether a dataset at ``version`` is already what this conversion writes (``formats.choose``)."""
        return version in WRITABLE and isinstance(choose(version, stats_options, force), AlreadyThere)

    def tag_holds_this(there) -> bool:
        """Whether the Hub's tag ``there`` (at its version) is this conversion, done: the revision asked for is older
        or needs nothing.  A v2.1 tag beside a v3.0 revision is the dataset before its v3.0 conversion, not this
        conversion of it: said, and the v3.0 revision is converted."""
        asked = hub_dataset_version(repo_id, revision, api=api)
        if asked is None or older(asked, there.version) or nothing_to_do(asked):
            return True
        say(f"{repo_id} has a `{there.tag}` tag, made from an older revision than {revision} ({asked}): converting "
            f"{revision}; a push leaves the tag alone unless it holds the same files (--force moves it)")
        return False

    def already(where: str) -> HubConversion:
        result.status = "already-converted"
        say(f"{repo_id} is already at {layout.version} {where}; nothing to do. --force recomputes its stats"
            + (" and pushes them (moving the tag)." if push_to_hub else "."))
        return result

    version = local_version(target)
    if root is not None and version is not None and not push_to_hub:  # the dataset is here: the Hub is not asked
        if nothing_to_do(version):
            return already(f"in {target}")
        result.download = Download(repo_id, revision, target, "local", dry_run, reason="--root holds the dataset")
    else:
        unreachable = hub_unreachable(repo_id, api)
        if unreachable is not None and push_to_hub:
            raise HubError(f"Cannot push to {repo_id}: {why_unreachable(unreachable)}. Nothing was downloaded, "
                           "converted or pushed; re-run when the Hub can be reached.")
        # already converted: the tag of the target asked for; without --to, of any natural target (v3.0 stays v3.0)
        tags = [layout.tag] if convert_options.get("to") else sorted({*NATURAL_TARGET.values()})
        for there in [layout_for(tag) for tag in tags] if unreachable is None and not force else []:
            found = hub_dataset_version(repo_id, there.tag, api=api)
            if found == there.version and nothing_to_do(found) and tag_holds_this(there):
                layout = there
                return already(f"on the Hub (tag {there.tag})")
        result.download = fetch_dataset(repo_id, revision, target, refresh=force, dry_run=dry_run, api=api,
                                        unreachable=unreachable)
        if result.download.source != "converted" or dry_run:
            say(str(result.download))
        version = local_version(target)

    if version is not None:  # what the writer of this dataset publishes (recomputed v3.0 stats: only meta/)
        source = version
        if push_to_hub and result.download.source == "converted":  # by an earlier run: the Hub has the source
            source = hub_dataset_version(repo_id, revision, api=api) or version
        layout = push_layout(source, stats_options, layout)
    converted = nothing_to_do(version)
    if converted and not push_to_hub:
        return already(f"in {target}")

    push_options = {"to": layout, "branch": branch, "source_revision": revision, "private": private,
                    "move_tag": force, "delete_old_stats": bool(convert_options.get("delete_old_stats")), "api": api}
    if dry_run:
        result.status = "dry-run"
        if converted:
            say(f"{target} is already at {layout.version}: not converted again")
        else:
            say(f"would convert {target} -> {result.output} ({layout.version})"
                + (", then remove meta/stats.json" if convert_options.get("delete_old_stats") else ""))
        if push_to_hub and (target / "meta" / "info.json").is_file():
            result.plan = plan_push(repo_id, target, pending=not converted, **push_options)
            say(str(result.plan))
        elif push_to_hub:
            say(f"would upload the converted files to {repo_id}@{branch or 'main'} and tag it {layout.tag}")
        return result

    if converted:  # converted by an earlier run whose push did not finish
        result.status = "pushed-only"
        say(f"{target} is already at {layout.version}: pushing it without converting again")
    else:
        from .convert import convert

        result.conversion = conversion = convert(target, output, client=client, **convert_options)
        result.output = Path(conversion.output) if isinstance(conversion.output, (str, Path)) else result.output
        if not quiet:
            if conversion.verification.warnings:
                say(conversion.verification.table(only_problems=True))
            say(conversion.summary())
    if push_to_hub:
        result.plan = plan_push(repo_id, result.output, **push_options)
        say(str(result.plan))
        result.pushed = push(result.plan, api=api)
        say(str(result.pushed))
    return result
