"""The Hugging Face Hub side of a conversion, in one namespace: fetching (:mod:`dask_stats.hub.download`), pushing
(:mod:`dask_stats.hub.push`) and the whole round trip (:func:`dask_stats.roundtrip.convert_hub`)."""

from __future__ import annotations

from ..errors import HubError
from .download import (
           CONVERTED,
           DOWNLOAD_PATTERNS,
           REPO_TYPE,
           SOURCE_REVISION,
           Download,
           cached_refs,
           default_root,
           download_dataset,
           fetch_dataset,
           hub_dataset_version,
           hub_unreachable,
           lerobot_home,
           local_version,
)
from .push import (
           LAYOUTS,
           STATS_JSON,
           TARGET_TAG,
           V21,
           V30,
           PlannedFile,
           PushLayout,
           PushPlan,
           PushResult,
           layout_for,
           plan_push,
           push,
)

__all__ = ["CONVERTED", "DOWNLOAD_PATTERNS", "LAYOUTS", "REPO_TYPE", "SOURCE_REVISION", "STATS_JSON", "TARGET_TAG",
           "V21", "V30", "Download", "HubError", "PlannedFile", "PushLayout", "PushPlan", "PushResult", "cached_refs",
           "default_root", "download_dataset", "fetch_dataset", "hub_dataset_version", "hub_unreachable",
           "layout_for", "lerobot_home", "local_version", "plan_push", "push"]
