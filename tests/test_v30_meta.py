"""v3.0 metadata writers, round-tripped through the reader, on a small dataset converted end to end."""

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dask_stats.errors import DatasetError
from dask_stats.formats.v30 import layout
from dask_stats.formats.v30.data import write_data_file
from dask_stats.formats.v30.grouping import group_by_size, locate
from dask_stats.formats.v30.meta import (
    episode_row,
    episodes_schema,
    info_v30,
    write_episodes,
    write_info,
    write_stats,
    write_tasks,
)
from dask_stats.formats.v30.reader import read_dataset, read_episode_stats, read_stats
from dask_stats.storage import Store
from dask_stats.synthetic import DATA_PATH, VIDEO_PATH, Camera, SampleSpec
from dask_stats.video.frames import verify_episode_frames
from dask_stats.video.remux import concat_videos, stream_signature

CAMS = {"observation.images.top": Camera(48, 64), "observation.images.wrist": Camera(32, 32)}
LENGTHS = [8, 1, 12, 5, 3, 6, 1]


def fake_stats(ep, length):
    image = {"min": np.zeros((3, 1, 1)), "max": np.ones((3, 1, 1)), "mean": np.full((3, 1, 1), 0.5),
             "std": np.full((3, 1, 1), 0.1), "count": np.array([length])}
    return {"episode_index": ep, "stats": {
        "observation.state": {"min": [-1.0] * 6, "max": [float(ep)] * 6, "mean": [0.0] * 6, "std": [1.0] * 6,
                              "count": [length], "q01": [-0.9] * 6, "q99": [0.9] * 6},
        "timestamp": {"min": [0.0], "max": [(length - 1) / 30], "mean": [0.1], "std": [0.2], "count": [length]},
        **{key: image for key in CAMS},
    }}


@pytest.fixture(scope="module")
def converted(make_sample, tmp_path_factory):
    """A v2.0 dataset and its v3.0 conversion made with the building blocks (tiny limits: many rollovers)."""
    src = make_sample(SampleSpec(lengths=LENGTHS, chunks_size=3, cameras=CAMS, image_column=None,
                                 write_stats_json=False), "meta")
    out = tmp_path_factory.mktemp("meta") / "v30"
    store = Store(str(src))
    info2 = json.loads((src / "meta/info.json").read_text())
    n = len(LENGTHS)
    data_sources = [DATA_PATH.format(episode_chunk=e // 3, episode_index=e) for e in range(n)]
    data_groups = group_by_size([store.size(store.path(p)) for p in data_sources], 0.012, chunks_size=2)
    starts = np.concatenate([[0], np.cumsum(LENGTHS)]).tolist()
    for g in data_groups:
        write_data_file(store, [data_sources[i] for i in g.episodes], str(out / layout.data_path(g.index)),
                        starts[g.first])
    videos = {}
    for key in CAMS:
        paths = [str(src / VIDEO_PATH.format(episode_chunk=e // 3, video_key=key, episode_index=e)) for e in range(n)]
        groups = group_by_size([os.path.getsize(p) for p in paths], 0.004, chunks_size=2,
                               signatures=[stream_signature(p) for p in paths])
        for g in groups:
            spans = concat_videos([paths[i] for i in g.episodes], str(out / layout.video_path(key, g.index)))
            for i, (a, b) in zip(g.episodes, spans):
                videos.setdefault(i, {})[key] = (g.index, a, b)
        videos.setdefault("groups", {})[key] = groups
    data_at = locate(data_groups)
    tasks = ["pick the cube", "place the cube"]
    rows = [episode_row(e, [tasks[e % 2]], LENGTHS[e], data_at[e][0], starts[e], videos[e],
                        fake_stats(e, LENGTHS[e])["stats"]) for e in range(n)]
    written = write_episodes(str(out), rows, limit_mb=0.001, chunks_size=2)
    write_tasks(str(out / layout.TASKS_PATH), tasks)
    info = info_v30(info2, data_files_size_in_mb=0.012, video_files_size_in_mb=0.004)
    write_info(str(out / layout.INFO_PATH), info)
    write_stats(str(out / layout.STATS_PATH), {"observation.state": {"min": np.zeros(6), "count": np.array([5])}})
    return {"src": src, "out": out, "info2": info2, "data_groups": data_groups, "videos": videos, "rows": written}


def test_every_kind_rolls_over(converted):
    out = converted["out"]
    assert len(converted["data_groups"]) >= 3
    assert any(g.index.chunk >= 1 for g in converted["data_groups"])
    for key in CAMS:
        assert len(converted["videos"]["groups"][key]) >= 3, key
    meta_files = sorted(p.relative_to(out).as_posix() for p in (out / "meta/episodes").rglob("*.parquet"))
    assert len(meta_files) >= 3 and meta_files[:3] == [
        "meta/episodes/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-001.parquet",
        "meta/episodes/chunk-001/file-000.parquet"]


def test_reader_round_trip(converted):
    out, rows = converted["out"], converted["rows"]
    ds = read_dataset(str(out))
    assert ds.tasks == {0: "pick the cube", 1: "place the cube"}
    assert [e.index for e in ds.episodes] == list(range(len(LENGTHS)))
    assert [e.length for e in ds.episodes] == LENGTHS
    for e, row in zip(ds.episodes, rows):
        assert e.tasks == tuple(row["tasks"])
        assert (e.dataset_from_index, e.dataset_to_index) == (row["dataset_from_index"], row["dataset_to_index"])
        assert e.data_path == layout.data_path(e.data_index) and (out / e.data_path).is_file()
        table = pq.read_table(out / e.data_path, filters=[("episode_index", "=", e.index)])
        assert table["index"].to_pylist() == list(range(e.dataset_from_index, e.dataset_to_index))
        for key in CAMS:
            ref = e.videos[key]
            assert (ref.index, ref.from_timestamp, ref.to_timestamp) == converted["videos"][e.index][key]
            source = converted["src"] / VIDEO_PATH.format(episode_chunk=e.index // 3, video_key=key,
                                                          episode_index=e.index)
            assert verify_episode_frames(str(source), [0.0, (e.length - 1) / 30], str(out / ref.path),
                                         ref.from_timestamp) == []
    stats = read_episode_stats(str(out))
    assert stats[3]["observation.state"]["max"] == [3.0] * 6
    assert stats[3]["observation.state"]["q99"] == [0.9] * 6
    assert stats[2]["observation.images.top"]["mean"] == [[[0.5]], [[0.5]], [[0.5]]]
    assert stats[2]["observation.images.top"]["count"] == [12]
    assert read_stats(str(out)) == {"observation.state": {"min": [0.0] * 6, "count": [5]}}


def test_episodes_columns_and_types(converted):
    path = converted["out"] / "meta/episodes/chunk-000/file-000.parquet"
    schema = pq.read_schema(path)
    key = "observation.images.top"
    assert schema.names[:5] == ["episode_index", "data/chunk_index", "data/file_index", "dataset_from_index",
                                "dataset_to_index"]
    assert schema.names[-2:] == ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    for name in ("episode_index", "length", "dataset_from_index", f"videos/{key}/chunk_index",
                 "meta/episodes/file_index"):
        assert schema.field(name).type == pa.int64(), name
    assert schema.field("tasks").type == pa.list_(pa.string())
    assert schema.field(f"videos/{key}/from_timestamp").type == pa.float64()
    assert schema.field(f"videos/{key}/to_timestamp").type == pa.float64()
    assert schema.field(f"stats/{key}/mean").type == pa.list_(pa.list_(pa.list_(pa.float64())))
    assert schema.field(f"stats/{key}/count").type == pa.list_(pa.int64())
    assert schema.field("stats/observation.state/q01").type == pa.list_(pa.float64())
    table = pq.read_table(converted["out"] / "meta/episodes/chunk-001/file-000.parquet")
    assert set(table["meta/episodes/chunk_index"].to_pylist()) == {1}


def test_tasks_index_survives(converted):
    frame = pd.read_parquet(converted["out"] / layout.TASKS_PATH)
    assert frame.index.tolist() == ["pick the cube", "place the cube"]
    assert frame.index.name == "task"
    assert frame["task_index"].tolist() == [0, 1]
    assert frame.iloc[1].name == "place the cube"  # how lerobot looks a task up


def test_info_fields(converted):
    text = (converted["out"] / layout.INFO_PATH).read_text()
    assert text.startswith('{\n    "codebase_version": "v3.0"')  # indent 4
    info, info2 = json.loads(text), converted["info2"]
    assert "total_chunks" not in info and "total_videos" not in info
    assert info["chunks_size"] == 1000
    assert info["data_files_size_in_mb"] == 0.012 and info["video_files_size_in_mb"] == 0.004
    assert info["data_path"] == layout.DATA_PATH and info["video_path"] == layout.VIDEO_PATH
    for name in ("robot_type", "total_episodes", "total_frames", "total_tasks", "splits"):
        assert info[name] == info2[name]
    assert list(info) == [k for k in info2 if k not in ("total_chunks", "total_videos")][:6] + [
        "data_files_size_in_mb", "video_files_size_in_mb"] + [
        k for k in info2 if k not in ("total_chunks", "total_videos")][6:]
    for name, ft in info["features"].items():
        if ft["dtype"] == "video":
            assert "fps" not in ft and ft["info"] == info2["features"][name]["info"]
        else:
            assert ft["fps"] == 30
    assert list(info["features"]) == list(info2["features"])
    no_video = info_v30({**info2, "video_path": None,
                         "features": {k: v for k, v in info2["features"].items() if v["dtype"] != "video"}})
    assert no_video["video_path"] is None and no_video["data_files_size_in_mb"] == 100


def test_file_modes_follow_umask(converted):
    mask = os.umask(0)
    os.umask(mask)
    for path in list((converted["out"] / "meta").rglob("*")) + list((converted["out"] / "data").rglob("*")):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


@pytest.fixture
def copy(converted, tmp_path):
    import shutil

    target = tmp_path / "ds"
    shutil.copytree(converted["out"], target)
    return target


def test_reader_rejects_a_v21_info(copy):
    info = json.loads((copy / layout.INFO_PATH).read_text())
    info["codebase_version"] = "v2.1"
    del info["data_path"]
    (copy / layout.INFO_PATH).write_text(json.dumps(info))
    with pytest.raises(DatasetError) as err:
        read_dataset(str(copy))
    assert "v2.1" in str(err.value) and "data_path" in str(err.value) and "info.json" in str(err.value)


def test_reader_names_the_bad_episodes_file(copy):
    path = copy / "meta/episodes/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["length"]), path)
    with pytest.raises(DatasetError, match="file-001.parquet") as err:
        read_dataset(str(copy))
    assert "length" in str(err.value)


def test_reader_rejects_a_gap_in_row_ranges(copy):
    path = copy / "meta/episodes/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    shifted = pa.compute.add(table["dataset_from_index"], 1)
    table = table.set_column(table.schema.get_field_index("dataset_from_index"), "dataset_from_index", shifted)
    pq.write_table(table, path)
    with pytest.raises(DatasetError, match="dataset_from_index|length"):
        read_dataset(str(copy))


def test_reader_rejects_tasks_without_strings(copy):
    pq.write_table(pa.table({"task_index": [0, 1]}), copy / layout.TASKS_PATH)
    with pytest.raises(DatasetError, match="tasks.parquet"):
        read_dataset(str(copy))


def test_schema_of_a_row():
    row = episode_row(0, ["t"], 3, layout.FileIndex(0, 0), 0, None, fake_stats(0, 3)["stats"])
    schema = episodes_schema(row)
    assert "videos/observation.images.top/from_timestamp" not in schema.names
    assert schema.field("stats/timestamp/count").type == pa.list_(pa.int64())
