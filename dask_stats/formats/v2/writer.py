"""Write v2.1: ``meta/episodes_stats.jsonl`` beside the v2.0 files, then ``meta/info.json`` at v2.1 (the commit
point), in place or into a marked ``--output`` copy whose data and videos are hard-linked."""

from __future__ import annotations

from ...hub.push import V21
from ...stats.records import info_text, jsonl_text
from ...storage import OUTPUT_MARKER, mark_output
from ..base import Computed, Writer
from . import layout
from .info import corrected_info


class V21Writer(Writer):
    format = "v2.1"
    push_layout = V21
    description = "its meta/episodes_stats.jsonl"
    stats_file = layout.EPISODES_STATS
    mirrors = True

    def aftermath(self) -> list[str]:
        return ["remove meta/stats.json"] if self.options.safety.delete_old_stats else []

    def outcome(self) -> list[str]:
        return ["removed:      meta/stats.json"] if self.options.safety.delete_old_stats else []

    def commit(self, computed: Computed) -> None:
        """Write episodes_stats.jsonl, then info.json (the commit point), then drop stats.json if asked.  A copy
        (``--output``) is marked as this tool's until it is complete, so that the same command resumes it."""
        plan, target = self.plan, self.target
        try:
            if target != plan.store:
                mark_output(plan.store, target)
                plan.store.mirror_to(target, skip={layout.EPISODES_STATS})
                if computed.after_copy is not None:
                    computed.after_copy()
            target.write_text(target.path(layout.EPISODES_STATS), jsonl_text(computed.records))
            info = corrected_info(plan.info, len(plan.episodes), plan.total_frames)[0]  # the preflight warned
            target.write_text(target.path(layout.INFO), info_text({**info, "codebase_version": "v2.1"}))
            if self.options.safety.delete_old_stats:
                target.remove(target.path(layout.STATS))
            if target != plan.store:
                target.remove(target.path(OUTPUT_MARKER))
        except BaseException as exc:
            exc.partial_commit = True
            raise
