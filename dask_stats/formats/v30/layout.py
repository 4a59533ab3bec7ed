"""The v3.0 layout: constants, path templates, and the (chunk, file) index that advances."""

from __future__ import annotations

from typing import NamedTuple

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
EPISODES_FILES_SIZE_IN_MB = 100  # lerobot rolls meta/episodes over at the data limit

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_DIR = "meta/episodes"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"

MB = 1024 * 1024  # lerobot's "MB" (file size / 1024**2)


class FileIndex(NamedTuple):
    """Where a file sits: ``chunk-{chunk:03d}/file-{file:03d}``."""

    chunk: int = 0
    file: int = 0

    def next(self, chunks_size: int = CHUNKS_SIZE) -> FileIndex:
        """The following file: file ``chunks_size - 1`` of a chunk is followed by file 0 of the next chunk."""
        if chunks_size < 1:
            raise ValueError(f"chunks_size must be positive, got {chunks_size}")
        if self.file >= chunks_size - 1:
            return FileIndex(self.chunk + 1, 0)
        return FileIndex(self.chunk, self.file + 1)


def data_path(index: FileIndex) -> str:
    return DATA_PATH.format(chunk_index=index.chunk, file_index=index.file)


def video_path(video_key: str, index: FileIndex) -> str:
    return VIDEO_PATH.format(video_key=video_key, chunk_index=index.chunk, file_index=index.file)


def episodes_path(index: FileIndex) -> str:
    return EPISODES_PATH.format(chunk_index=index.chunk, file_index=index.file)
