"""v3.0 data files: episodes streamed into one Parquet file, index rewritten, everything else unchanged."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dask_stats.errors import DatasetError
from dask_stats.formats.v30.data import write_data_file
from dask_stats.formats.v30.grouping import group_by_size
from dask_stats.formats.v30.layout import data_path
from dask_stats.storage import Store
from dask_stats.synthetic import DATA_PATH, SampleSpec


@pytest.fixture(scope="module")
def v20(make_sample):
    spec = SampleSpec(lengths=[30, 140, 1, 45, 12, 7], chunks_size=2, cameras={}, string_column=True,
                      image_column="observation.images.cam_png", write_stats_json=False)
    return make_sample(spec, "data")


def sources(n):
    return [DATA_PATH.format(episode_chunk=ep // 2, episode_index=ep) for ep in range(n)]


def test_files_concatenate_episodes_with_global_index(v20, tmp_path):
    store = Store(str(v20))
    paths = sources(6)
    sizes = [store.size(store.path(p)) for p in paths]
    groups = group_by_size(sizes, 0.06, chunks_size=2)
    assert len(groups) >= 3 and any(len(g.episodes) > 1 for g in groups)  # rolls over across chunks
    originals = [pq.read_table(v20 / p) for p in paths]
    first, written = 0, []
    for g in groups:
        dest = tmp_path / data_path(g.index)
        summary = write_data_file(store, [paths[i] for i in g.episodes], str(dest), first)
        assert summary.rows == sum(originals[i].num_rows for i in g.episodes)
        assert summary.episode_rows == tuple(originals[i].num_rows for i in g.episodes)
        assert summary.nbytes == os.path.getsize(dest)
        table = pq.read_table(dest)
        # index = global row position; every other column unchanged
        assert table["index"].to_pylist() == list(range(first, first + summary.rows))
        expected = pa.concat_tables([originals[i] for i in g.episodes])
        for name in expected.column_names:
            if name != "index":
                assert table[name].equals(expected[name]), name
        # same types and the Hugging Face metadata (Image feature) kept
        assert table.schema.equals(originals[0].schema, check_metadata=False)
        hf = json.loads(table.schema.metadata[b"huggingface"])
        assert hf["info"]["features"]["observation.images.cam_png"] == {"_type": "Image"}
        first += summary.rows
        written.append(dest)
    assert first == sum(t.num_rows for t in originals)
    assert sorted(str(p.relative_to(tmp_path)) for p in written)[:3] == [
        "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet", "data/chunk-001/file-000.parquet"]
    # timestamps stay episode-relative
    t0 = pq.read_table(written[0])
    assert t0["timestamp"][0].as_py() == 0.0


def test_streams_row_group_by_row_group(tmp_path):
    """Sources with several row groups: one row group in memory at a time, so the output keeps them."""
    schema = pa.schema([("index", pa.int64()), ("episode_index", pa.int64()), ("timestamp", pa.float32()),
                        ("frame_index", pa.int64())], metadata={b"huggingface": b'{"info": {}}'})
    paths = []
    for ep, n in enumerate([250, 1, 120]):
        table = pa.table({"index": np.arange(n) + 1000, "episode_index": np.full(n, ep),
                          "timestamp": (np.arange(n) / 30).astype(np.float32), "frame_index": np.arange(n)},
                         schema=schema)
        rel = f"data/episode_{ep:06d}.parquet"
        (tmp_path / "src" / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp_path / "src" / rel, row_group_size=100)
        paths.append(rel)
    dest = tmp_path / "out" / "file-000.parquet"
    summary = write_data_file(str(tmp_path / "src"), paths, str(dest), 500)
    meta = pq.read_metadata(dest)
    assert meta.num_row_groups == 3 + 1 + 2  # streamed, never concatenated in memory
    table = pq.read_table(dest)
    assert table["index"].to_pylist() == list(range(500, 500 + 371)) and summary.rows == 371
    assert table["frame_index"].to_pylist() == list(range(250)) + [0] + list(range(120))
    assert table.schema.metadata[b"huggingface"] == b'{"info": {}}'


def test_bad_source_leaves_nothing_behind(v20, tmp_path):
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    good = pq.read_table(v20 / sources(1)[0])
    pq.write_table(good, src / "data" / "a.parquet")
    pq.write_table(good.drop_columns(["action"]), src / "data" / "b.parquet")
    (src / "data" / "c.parquet").write_bytes(b"not parquet")
    dest = tmp_path / "out" / "file-000.parquet"
    with pytest.raises(DatasetError, match="b.parquet") as err:
        write_data_file(str(src), ["data/a.parquet", "data/b.parquet"], str(dest), 0)
    assert "missing ['action']" in str(err.value)
    with pytest.raises(DatasetError, match="c.parquet"):
        write_data_file(str(src), ["data/a.parquet", "data/c.parquet"], str(dest), 0)
    assert not dest.exists() and list((tmp_path / "out").iterdir()) == []


def test_compatible_types_are_cast_to_the_first_schema(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    fixed = pa.table({"index": [0, 1], "v": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32(), 2))})
    loose = pa.table({"index": [0], "v": pa.array([[5.0, 6.0]], pa.list_(pa.float32()))})
    pq.write_table(fixed, src / "a.parquet")
    pq.write_table(loose, src / "b.parquet")
    write_data_file(str(src), ["a.parquet", "b.parquet"], str(tmp_path / "o.parquet"), 0)
    out = pq.read_table(tmp_path / "o.parquet")
    assert out.schema.field("v").type == pa.list_(pa.float32(), 2)
    assert out["v"].to_pylist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def test_reads_through_an_fsspec_store(v20, tmp_path):
    """Sources behind a URL (memory://) are read through the Store, like s3:// or hf:// ones."""
    import fsspec

    fs = fsspec.filesystem("memory")
    paths = sources(3)
    for p in paths:
        fs.pipe_file(f"/v30src/{p}", (v20 / p).read_bytes())
    dest = tmp_path / "file-000.parquet"
    summary = write_data_file(Store("memory://v30src"), paths, str(dest), 0)
    local = write_data_file(Store(str(v20)), paths, str(tmp_path / "local.parquet"), 0)
    assert summary.rows == local.rows
    assert pq.read_table(dest).equals(pq.read_table(tmp_path / "local.parquet"))
