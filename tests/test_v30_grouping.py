"""v3.0 grouping: episodes -> files by size (and stream signature), file indices at every rollover."""

import itertools
import random

import pytest

from dask_stats.formats.v30.grouping import group_by_size, locate
from dask_stats.formats.v30.layout import MB, FileIndex, data_path, episodes_path, video_path


def check_invariants(groups, sizes, limit_mb, chunks_size, signatures=None):
    assert [p for g in groups for p in g.episodes] == list(range(len(sizes)))  # all, in order, once
    assert groups[0].index == FileIndex(0, 0)
    for before, after in itertools.pairwise(groups):
        assert after.index == before.index.next(chunks_size)
    for g in groups:
        assert 0 <= g.index.file < chunks_size
        assert g.nbytes == sum(sizes[p] for p in g.episodes)
        if len(g.episodes) > 1:
            assert g.nbytes < limit_mb * MB
            if signatures is not None:
                assert len({signatures[p] for p in g.episodes}) == 1


def test_file_index_advances_and_rolls_over():
    assert FileIndex(0, 0).next() == FileIndex(0, 1)
    assert FileIndex(0, 998).next() == FileIndex(0, 999)
    assert FileIndex(0, 999).next() == FileIndex(1, 0)
    assert FileIndex(3, 1).next(chunks_size=2) == FileIndex(4, 0)
    assert FileIndex(0, 0).next(chunks_size=1) == FileIndex(1, 0)
    with pytest.raises(ValueError):
        FileIndex().next(0)


def test_templates():
    assert data_path(FileIndex(1, 23)) == "data/chunk-001/file-023.parquet"
    assert video_path("observation.images.top", FileIndex(0, 999)) == \
        "videos/observation.images.top/chunk-000/file-999.mp4"
    assert episodes_path(FileIndex(12, 3)) == "meta/episodes/chunk-012/file-003.parquet"


def test_rolls_over_several_times():
    sizes = [400] * 9  # 0.001 MB = 1048.576 bytes: two episodes per file
    groups = group_by_size(sizes, 0.001)
    assert [g.episodes for g in groups] == [(0, 1), (2, 3), (4, 5), (6, 7), (8,)]
    assert [g.index for g in groups] == [FileIndex(0, i) for i in range(5)]
    check_invariants(groups, sizes, 0.001, 1000)


def test_first_episode_larger_than_limit_gets_file_000():
    sizes = [5000, 100, 100, 5000, 100]
    groups = group_by_size(sizes, 0.001)
    assert [g.episodes for g in groups] == [(0,), (1, 2), (3,), (4,)]
    assert groups[0].index == FileIndex(0, 0)
    assert locate(groups)[1] == (FileIndex(0, 1), 0)
    assert locate(groups)[2] == (FileIndex(0, 1), 1)
    check_invariants(groups, sizes, 0.001, 1000)


def test_reaching_the_limit_exactly_closes_the_file():
    groups = group_by_size([MB // 2, MB // 2, 1], 1)
    assert [g.episodes for g in groups] == [(0,), (1, 2)]


def test_chunk_rollover_with_tiny_chunks_size():
    groups = group_by_size([300] * 10, 0.0005, chunks_size=2)  # 524 bytes: one episode per file
    assert [g.index for g in groups] == [FileIndex(c, f) for c in range(5) for f in range(2)]
    groups = group_by_size([300] * 5, 0.0005, chunks_size=2, start=FileIndex(0, 1))
    assert [g.index for g in groups] == [FileIndex(0, 1), FileIndex(1, 0), FileIndex(1, 1), FileIndex(2, 0),
                                         FileIndex(2, 1)]


def test_fractional_limit():
    groups = group_by_size([52429] * 10, 0.2)  # just over 0.05 MB: 3 fit below 0.2 MB, a 4th would pass it
    assert [len(g.episodes) for g in groups] == [3, 3, 3, 1]


def test_signature_change_starts_a_new_file():
    sizes = [10] * 7
    sigs = ["a", "a", "b", "b", "a", "a", "a"]
    groups = group_by_size(sizes, 1, signatures=sigs)
    assert [g.episodes for g in groups] == [(0, 1), (2, 3), (4, 5, 6)]
    check_invariants(groups, sizes, 1, 1000, sigs)
    # both rules together, with a chunk rollover
    groups = group_by_size([400] * 7, 0.001, chunks_size=2, signatures=sigs)
    assert [g.episodes for g in groups] == [(0, 1), (2, 3), (4, 5), (6,)]
    assert [g.index for g in groups] == [FileIndex(0, 0), FileIndex(0, 1), FileIndex(1, 0), FileIndex(1, 1)]


def test_randomized_invariants():
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 40)
        sizes = [rng.choice([0, 1, 50, 500, 3000]) + rng.randint(0, 100) for _ in range(n)]
        sigs = [rng.choice("xy") for _ in range(n)] if rng.random() < 0.5 else None
        limit = rng.choice([0.001, 0.002, 0.01])
        chunks = rng.choice([1, 2, 3, 1000])
        groups = group_by_size(sizes, limit, chunks_size=chunks, signatures=sigs)
        check_invariants(groups, sizes, limit, chunks, sigs)
        # greedy: a file closes only because the next episode would reach the limit or change signature
        for before, after in itertools.pairwise(groups):
            nxt = after.episodes[0]
            assert before.nbytes + sizes[nxt] >= limit * MB or (sigs and sigs[nxt] != sigs[before.first])


def test_bad_arguments():
    with pytest.raises(ValueError):
        group_by_size([1], 0)
    with pytest.raises(ValueError):
        group_by_size([1, 2], 1, signatures=["a"])
    assert group_by_size([], 1) == []
