"""dask_stats.check: the catalogue of bad inputs. Each is detected by `check` with a clear message (the episode,
feature, file and the flag that gets past it), and `convert` refuses it leaving the dataset byte-identical: missing
or malformed metadata, data and videos that disagree with it, timestamps off the frame grid, paths outside the root,
read-only sources, outputs that cannot be written."""

from __future__ import annotations

import importlib
import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import CAM, FAST, SMALL, data, edit_json, edit_jsonl, expect, rewrite_parquet, tree_digest, video

import dask_stats
from dask_stats.check import check
from dask_stats.cli import main
from dask_stats.errors import DatasetError


@pytest.fixture(scope="module")
def small_dataset(make_sample):
    return make_sample(SMALL, "small")


@pytest.fixture
def ds(small_dataset, copy_of):
    return copy_of(small_dataset)


def test_clean_dataset_has_no_problems(small_dataset):
    assert check(small_dataset) == []


def test_missing_info_json(ds):
    (ds / "meta/info.json").unlink()
    expect(ds, message="meta/info.json is missing", path_end="meta/info.json")


def test_malformed_info_json(ds):
    (ds / "meta/info.json").write_text("{not json")
    expect(ds, message="not valid JSON", path_end="meta/info.json")


def test_missing_and_malformed_episodes_jsonl(ds):
    (ds / "meta/episodes.jsonl").write_text('{"episode_index": 0, "length": 20}\n{broken\n')
    expect(ds, message="line 2 is not valid JSON", path_end="meta/episodes.jsonl")
    (ds / "meta/episodes.jsonl").unlink()
    expect(ds, message="meta/episodes.jsonl is missing")


def test_missing_and_malformed_tasks_jsonl(ds):
    (ds / "meta/tasks.jsonl").write_text('{"task_index": 0, "task": "pick"\n')
    expect(ds, message="meta/tasks.jsonl line 1 is not valid JSON", fix="restore it")
    (ds / "meta/tasks.jsonl").unlink()
    expect(ds, message="meta/tasks.jsonl is missing")


def test_parquet_file_of_another_episode(ds):
    data(ds, 2).write_bytes(data(ds, 0).read_bytes())  # episode 2's file holds episode 0's rows
    expect(ds, message="episode_index column holds 0..0, not 2", episode=2, path_end="episode_000002.parquet")


def test_parquet_file_of_another_episode_without_footer_statistics(ds):
    pq.write_table(pq.read_table(data(ds, 0)), data(ds, 2), write_statistics=False)
    edit_jsonl(ds / "meta/episodes.jsonl", lambda r: r[2].update(length=20))
    edit_json(ds / "meta/info.json", lambda i: i.update(total_frames=75))
    expect(ds, message="episode_index column holds 0..0, not 2", episode=2, path_end="episode_000002.parquet")


@pytest.mark.parametrize("feature, element", [("action", False), ("observation.state", True), ("next.done", False)])
def test_nulls_in_a_declared_column_are_predicted_from_the_footer(ds, feature, element):
    def with_null(table):
        values = table.column(feature).to_pylist()
        if element:
            values[3] = [None, *values[3][1:]]
        else:
            values[3] = None
        return table.set_column(table.schema.get_field_index(feature), feature,
                                pa.array(values, type=table.schema.field(feature).type))
    rewrite_parquet(data(ds, 2), with_null)
    problem = expect(ds, message="holds 1 null value(s)", episode=2, feature=feature,
                     path_end="episode_000002.parquet", fix=f"--exclude-features {feature}")
    assert [p for p in check(ds, exclude_features=(feature,)) if p.severity == "error"] == [], problem


def test_info_totals_that_disagree_with_the_episodes_are_warnings(ds):
    edit_json(ds / "meta/info.json", lambda i: i.update(total_episodes=4, total_frames=60, total_videos=4))
    for key, right in (("total_episodes", 3), ("total_frames", 67), ("total_videos", 3)):
        expect(ds, message=f"info.json says {key}", severity="warning", path_end="meta/info.json",
               fix=f"set {key} to {right}")
    assert [p for p in check(ds) if p.severity == "error"] == []


def test_unknown_codebase_version(ds):
    edit_json(ds / "meta/info.json", lambda i: i.update(codebase_version="v1.6"))
    expect(ds, message="codebase_version is 'v1.6'")


def test_already_v21_needs_force(ds):
    edit_json(ds / "meta/info.json", lambda i: i.update(codebase_version="v2.1"))
    expect(ds, message="already at v2.1", fix="--force", severity="info")  # nothing to do is not an error
    with pytest.raises(DatasetError, match="already at v2.1"):
        dask_stats.convert(ds, **FAST)  # the CLI turns this into "nothing to do", exit 0
    assert check(ds, force=True) == []


def test_episode_indices_not_contiguous(ds):
    edit_jsonl(ds / "meta/episodes.jsonl", lambda r: r[2].update(episode_index=5))
    expect(ds, message="not contiguous", episode=5)


def test_missing_parquet_file(ds):
    data(ds, 1).unlink()
    expect(ds, message="Parquet file is missing", episode=1, path_end="episode_000001.parquet")


def test_length_differs_from_parquet_rows(ds):
    edit_jsonl(ds / "meta/episodes.jsonl", lambda r: r[1].update(length=36))
    expect(ds, message="says length 36 but the Parquet file has 35 rows", episode=1)


def test_declared_feature_missing_from_parquet(ds):
    for ep in range(3):
        rewrite_parquet(data(ds, ep), lambda t: t.drop_columns(["action"]))
    expect(ds, message="has no Parquet column", feature="action", fix="--exclude-features action")
    assert [p for p in check(ds, exclude_features=("action",)) if p.severity == "error"] == []


def test_undeclared_column_is_a_warning(ds):
    rewrite_parquet(data(ds, 0), lambda t: t.append_column("extra", pa.array(np.zeros(20))))
    expect(ds, message="not declared in info.json", feature="extra", episode=0, severity="warning")


def test_wrong_vector_length(ds):
    edit_json(ds / "meta/info.json", lambda i: i["features"]["action"].update(shape=[5]))
    expect(ds, message="declares shape [5]", feature="action")


def test_non_numeric_data_in_numeric_feature(ds):
    rewrite_parquet(data(ds, 2), lambda t: t.set_column(t.schema.get_field_index("next.done"), "next.done",
                                                        pa.array(["no"] * 12)))
    expect(ds, message="non-numeric data", feature="next.done", episode=2)


def test_each_problem_is_reported_once(ds):
    """A skippable problem (a camera without files) beside a non-skippable one (non-contiguous episodes)."""
    shutil.rmtree(ds / "videos")
    edit_jsonl(ds / "meta/episodes.jsonl", lambda r: r[2].update(episode_index=5))
    problems = check(ds)
    assert len(problems) == len(set(map(str, problems))), "\n".join(map(str, problems))
    assert sum("not contiguous" in p.message for p in problems) == 1
    assert sum("no video files at all" in p.message for p in problems) == 1


def test_video_feature_without_files(ds):
    for ep in range(3):
        video(ds, ep).unlink()
    expect(ds, message="no video files at all", feature=CAM, fix=f"--exclude-features {CAM}")


def test_missing_video_file(ds):
    video(ds, 1).unlink()
    expect(ds, message="video file is missing", episode=1, feature=CAM, path_end="episode_000001.mp4")


def test_empty_video(ds):
    video(ds, 1).write_bytes(b"")
    expect(ds, message="empty", episode=1, feature=CAM)


def test_truncated_video(ds):
    blob = video(ds, 1).read_bytes()
    video(ds, 1).write_bytes(blob[: len(blob) // 2])
    expect(ds, message="cannot be opened", episode=1, feature=CAM, path_end="episode_000001.mp4")


def test_corrupt_video(ds):
    video(ds, 0).write_bytes(os.urandom(5000))
    expect(ds, message="cannot be opened", episode=0, feature=CAM)


def test_video_shorter_than_episode(ds):
    from dask_stats.synthetic import _frames, encode_video

    encode_video(video(ds, 1), _frames(0, 20, 48, 64), 30)
    expect(ds, message="the video has 20 frames but the episode has 35 rows", episode=1, feature=CAM)


def test_unsupported_codec_for_backend(ds):
    from dask_stats.synthetic import _frames, encode_video

    encode_video(video(ds, 0), _frames(0, 20, 48, 64), 30, codec="libsvtav1")
    expect(ds, message="decord backend cannot decode av1", episode=0, feature=CAM, fix="--video-backend pyav",
           options={"video_backend": "decord"})


def test_timestamps_inconsistent_with_fps(ds):
    rewrite_parquet(data(ds, 0), lambda t: t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                                                        pa.array((np.arange(20) / 25).astype(np.float32))))
    problem = expect(ds, message="not spaced 1/fps", episode=0, feature="timestamp", severity="warning")
    assert "run from 0.000000 to 0.760000 s" in problem.message


def test_timestamps_are_read_when_the_footer_has_no_statistics(ds):
    table = pq.read_table(data(ds, 0))
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp",
                             pa.array((np.arange(20) / 25).astype(np.float32)))
    pq.write_table(table, data(ds, 0), write_statistics=False)
    problem = expect(ds, message="not spaced 1/fps", episode=0, feature="timestamp", severity="warning")
    assert "run from 0.000000 to 0.760000 s" in problem.message


def test_timestamps_offset_from_video(ds):
    rewrite_parquet(data(ds, 1), lambda t: t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                                                        pa.array((np.arange(1, 36) / 30).astype(np.float32))))
    expect(ds, message="offset", episode=1, feature=CAM, fix="--frame-lookup index")
    assert [p for p in check(ds, frame_lookup="index") if p.severity == "error"] == []


def test_wall_clock_timestamps(ds):
    rewrite_parquet(data(ds, 2), lambda t: t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                                                        pa.array(1.7e9 + np.arange(12) / 30)))
    expect(ds, message="wall-clock", episode=2, fix="--frame-lookup index")


def test_wall_clock_timestamps_are_predicted_by_the_preflight(ds, tmp_path):
    rewrite_parquet(data(ds, 2), lambda t: t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                                                        pa.array(1.7e9 + np.arange(12) / 30)))
    with pytest.raises(DatasetError) as refused:
        dask_stats.convert(ds, tmp_path / "out", **FAST)
    assert not isinstance(refused.value, dask_stats.errors.TaskError)  # the preflight, before any decoding
    [problem] = refused.value.problems
    assert "wall-clock" in problem.message and problem.episode == 2 and problem.fix == "--frame-lookup index"
    assert sum("wall-clock" in p.message for p in check(ds)) == 1  # said once, not again per camera


def test_jittered_timestamps_are_predicted_before_decoding(ds, tmp_path):
    """Timestamps whose span is right (first and last on the grid) but whose rows between are jittered: the video
    task would find no frame for them; the preflight says so before any video is decoded."""
    jitter = np.where(np.arange(35) % 2, 0.003, -0.002)
    jitter[[0, -1]] = 0
    rewrite_parquet(data(ds, 1), lambda t: t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                                                        pa.array((np.arange(35) / 30 + jitter).astype(np.float32))))
    problem = expect(ds, message="sampled timestamps are off the 30 fps frame grid", episode=1, feature="timestamp",
                     path_end="episode_000001.parquet", fix="--frame-lookup index")
    assert problem.message.startswith("33 of 35 sampled timestamps") and "row 1 at 0.036333 s" in problem.message
    assert not [p for p in check(ds) if "not spaced 1/fps" in p.message]  # the span alone cannot tell
    with pytest.raises(DatasetError) as refused:
        dask_stats.convert(ds, tmp_path / "out", **FAST)
    assert not isinstance(refused.value, dask_stats.errors.TaskError)
    assert [p for p in check(ds, frame_lookup="index") if p.severity == "error"] == []
    assert [p for p in check(ds, tolerance_s=0.005) if p.severity == "error"] == []
    assert dask_stats.convert(ds, tmp_path / "out", frame_lookup="index", skip_verify=True, **FAST).episodes == 3


def test_the_frame_grid_is_the_cameras_own_fps(ds):
    edit_json(ds / "meta/info.json", lambda i: i["features"][CAM]["info"].update({"video.fps": 15.0}))
    expect(ds, message="off the 15 fps frame grid of observation.images.top", episode=0, feature="timestamp")


def test_path_template_escaping_root_is_refused(ds):
    edit_json(ds / "meta/info.json", lambda i: i.update(data_path="../../{episode_index}.parquet"))
    expect(ds, message="outside the dataset root")


def test_symlinks_pointing_outside_are_followed(ds, tmp_path):
    """Shared storage and the Hugging Face cache link files and folders elsewhere: they convert, and a linked
    meta/info.json is replaced by a regular file (the file it pointed at is left alone)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    data(ds, 0).rename(shared / "episode.parquet")
    data(ds, 0).symlink_to(shared / "episode.parquet")
    (ds / "videos").rename(shared / "videos")
    (ds / "videos").symlink_to(shared / "videos")
    (ds / "meta/info.json").rename(shared / "info.json")
    (ds / "meta/info.json").symlink_to(shared / "info.json")
    before = tree_digest(shared)
    assert [p for p in check(ds) if p.severity == "error"] == []
    dask_stats.convert(ds, **FAST)
    assert not (ds / "meta/info.json").is_symlink()
    assert json.loads((ds / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    assert tree_digest(shared) == before


def test_nan_values_are_reported_and_follow_numpy(ds, tmp_path):
    def with_nan(t):
        values = t.column("observation.effort").combine_chunks().flatten().to_numpy().copy()
        values[4] = np.nan
        return t.set_column(t.schema.get_field_index("observation.effort"), "observation.effort",
                            pa.FixedSizeListArray.from_arrays(pa.array(values), 3))
    rewrite_parquet(data(ds, 0), with_nan)
    result = dask_stats.convert(ds, tmp_path / "out", skip_verify=True, **FAST)
    warnings = [w for w in result.warnings if "non-finite" in w.message]
    assert warnings and warnings[0].episode == 0 and warnings[0].feature == "observation.effort"
    stats = json.loads((tmp_path / "out/meta/episodes_stats.jsonl").read_text().splitlines()[0])["stats"]
    assert np.isnan(stats["observation.effort"]["mean"][1]) and not np.isnan(stats["observation.effort"]["mean"][0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_source_non_root(ds, tmp_path):
    os.chmod(ds / "meta", 0o555)
    try:
        expect(ds, message="read-only", fix="--output")
        assert dask_stats.convert(ds, tmp_path / "out", **FAST).episodes == 3
    finally:
        os.chmod(ds / "meta", 0o755)


def test_read_only_source(ds, tmp_path, monkeypatch):
    """As root, permissions are not enforced, so the check's access() probe is what decides."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).startswith(str(ds)) and mode == os.W_OK
                        else real_access(p, mode))
    problem = expect(ds, message="read-only", fix="--output DIR")
    assert problem.path.endswith("meta")
    assert [p for p in check(ds, output=tmp_path / "out") if p.severity == "error"] == []


def test_output_that_is_a_file_or_under_one(small_dataset, tmp_path):
    (tmp_path / "file").write_text("")
    for output, words in ((tmp_path / "file", "--output is a file"), (tmp_path / "file/out", "is inside")):
        assert any(words in p.message for p in check(small_dataset, output)), check(small_dataset, output)
        with pytest.raises(DatasetError, match=words):
            dask_stats.convert(small_dataset, output, **FAST)


# -- bad metadata: no crash, and check predicts it ----------------------------------------------------------------
def test_no_episodes(ds):
    (ds / "meta/episodes.jsonl").write_text("")
    expect(ds, message="lists no episodes", path_end="meta/episodes.jsonl")


def test_zero_sized_feature(ds):
    edit_json(ds / "meta/info.json", lambda i: i["features"]["action"].update(shape=[0]))
    expect(ds, message="zero-sized feature", feature="action", fix="--exclude-features action")


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"action": {"mean": "high"}}', "not an array of numbers"),
    ('{"action": {"mean": [[1, 2], [3]]}}', "not an array of numbers"),
    ('{"action": 3}', "not a JSON object"),
])
def test_malformed_stats_json_is_found_before_computing(ds, text, words):
    (ds / "meta/stats.json").write_text(text)
    expect(ds, message=words, path_end="meta/stats.json", fix="--skip-verify")
    assert dask_stats.convert(ds, skip_verify=True, **FAST).episodes == 3


@pytest.mark.parametrize("change, words", [
    (lambda i: i.update(data_path="data/{chunk}/episode_{episode_index:06d}.parquet"), "cannot be filled in"),
    (lambda i: i.update(data_path=["data"]), "not a path template string"),
    (lambda i: i.update(video_path=7), "not a path template string"),
    (lambda i: i.update(fps="thirty"), "fps is 'thirty'"),
    (lambda i: i.update(chunks_size="2"), "chunks_size is '2'"),
    (lambda i: i["features"].update(action="float32"), "not a JSON object"),
    (lambda i: i["features"]["action"].update(shape="4"), "not a list of non-negative integers"),
])
def test_malformed_info_json_fields(ds, change, words):
    edit_json(ds / "meta/info.json", change)
    expect(ds, message=words, path_end="meta/info.json")


def test_fifo_in_the_tree(ds):
    os.mkfifo(ds / "videos/notes.fifo")
    expect(ds, message="not a regular file", path_end="notes.fifo")


def test_fifo_as_metadata_file(ds):
    (ds / "meta/tasks.jsonl").unlink()
    os.mkfifo(ds / "meta/tasks.jsonl")
    expect(ds, message="not a regular file", path_end="meta/tasks.jsonl")


# -- errors name the right place ----------------------------------------------------------------------------------
def test_duplicate_episode_lines_are_called_duplicates(ds):
    edit_jsonl(ds / "meta/episodes.jsonl", lambda r: r.append(dict(r[1])))
    problem = expect(ds, message="listed twice", episode=1)
    assert "duplicate" in problem.message
    assert not [p for p in dask_stats.check(ds) if "not contiguous" in p.message]


def test_chunk_index_placeholder_is_accepted_with_a_warning(ds):
    edit_json(ds / "meta/info.json", lambda i: i.update(
        data_path=i["data_path"].replace("{episode_chunk", "{chunk_index"),
        video_path=i["video_path"].replace("{episode_chunk", "{chunk_index")))
    expect(ds, message="read as {episode_chunk}", severity="warning")
    assert not [p for p in dask_stats.check(ds) if p.severity == "error"]
    assert dask_stats.convert(ds, **FAST).episodes == 3


def test_episode_checks_on_a_cluster_find_the_same_problems_in_episode_order(ds, monkeypatch):
    """With a client whose workers run outside this process, the episodes' files are checked there in batches named
    by the episodes they cover; the problems are those found here, in the same order, each naming its file."""
    from distributed import Client, LocalCluster, get_task_stream

    data(ds, 2).write_bytes(data(ds, 2).read_bytes()[:-20])  # a damaged footer
    video(ds, 0).write_bytes(b"")
    video(ds, 1).unlink()
    here = check(ds)
    monkeypatch.setattr(importlib.import_module("dask_stats.check"), "CHECK_BATCH", 2)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client, get_task_stream(client) as stream:
        there = check(ds, client=client)
    keys = {task["key"] for task in stream.data}
    assert {key.rsplit("-", 1)[0] for key in keys} == {"check-ep000000-000001", "check-ep000002"}
    assert len({key.rsplit("-", 1)[1] for key in keys}) == 1  # one run, one token
    assert there == here
    found = [(p.episode, p.feature, p.message[:30], os.path.basename(p.path)) for p in there]
    assert found == [(1, CAM, "video file is missing", "episode_000001.mp4"),  # the plan's (here)
                     (0, CAM, "the video file is empty", "episode_000000.mp4"),  # the checks' (there)
                     (2, None, "the Parquet file cannot be rea", "episode_000002.parquet")]


@pytest.mark.parametrize("command", ["convert", "check"])
def test_episodes_are_checked_on_the_process_cluster_started_once(small_dataset, tmp_path, monkeypatch, command):
    """``--scheduler processes``: one local cluster is started (convert: before the preflight, and the stats run on
    it too), and the episodes are checked on its worker processes."""
    from dask_stats.engine import runner

    module = importlib.import_module("dask_stats.check")
    clusters, checked_on = [], []

    class Counted(runner.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            clusters.append(self)

    def on_cluster(client, *args):
        checked_on.append(client.scheduler.address)
        return checks(client, *args)

    checks = module._on_cluster
    monkeypatch.setattr(runner, "LocalCluster", Counted)
    monkeypatch.setattr(module, "_on_cluster", on_cluster)
    if command == "convert":
        dask_stats.convert(small_dataset, tmp_path / "out", scheduler="processes", num_workers=1, quiet=True)
    else:
        assert main(["check", "--root", str(small_dataset), "--scheduler", "processes", "--num-workers", "1"]) == 0
    assert [cluster.scheduler_address for cluster in clusters] == checked_on and len(checked_on) == 1


def test_a_remote_dataset_is_planned_from_one_listing(small_dataset, s3_server, monkeypatch):
    """Which files are missing comes from one listing of the dataset, not a request per file (400,000 of them for
    100,000 episodes); missing files are still reported with episode and path."""
    from dask_stats.formats import plan_dataset
    from dask_stats.options import StatsOptions
    from dask_stats.storage import Store

    fs, options = s3_server
    fs.put(str(small_dataset), "robots/listed", recursive=True)
    fs.rm("robots/listed/" + str(data(small_dataset, 1).relative_to(small_dataset)))
    fs.rm("robots/listed/" + str(video(small_dataset, 2).relative_to(small_dataset)))
    asked = []
    monkeypatch.setattr(Store, "is_file", lambda store, path: asked.append(path) or fs.isfile(path))
    _, problems = plan_dataset(Store("s3://robots/listed", options), StatsOptions())
    assert [(p.episode, p.message, p.path.rsplit("/", 1)[1]) for p in problems] == [
        (1, "Parquet file is missing", "episode_000001.parquet"), (2, "video file is missing", "episode_000002.mp4")]
    assert asked == ["robots/listed/meta/stats.json"]


def test_a_batch_of_remote_episodes_asks_for_listings_not_for_each_file(small_dataset, s3_server, monkeypatch):
    """On a worker (a filesystem without planning's listings), a batch lists its directories once instead of asking
    S3 about each file (is it there, how big) before reading it."""
    from dask_stats.check import EpisodeChecker
    from dask_stats.formats import plan_dataset
    from dask_stats.options import Options
    from dask_stats.storage import Store
    from dask_stats.video import get_backend

    fs, options = s3_server
    fs.put(str(small_dataset), "robots/batch", recursive=True)
    plan, _ = plan_dataset(Store("s3://robots/batch", options), Options().stats)
    fs.invalidate_cache()
    calls, call_s3 = [], fs._call_s3

    async def counted(method, *args, **kwargs):
        calls.append(method)
        return await call_s3(method, *args, **kwargs)

    monkeypatch.setattr(fs, "_call_s3", counted)
    assert EpisodeChecker(plan, Options(), get_backend("pyav")).batch(plan.episodes) == []
    assert "list_objects_v2" in calls and "head_object" not in calls, calls
