"""Where things are in a LeRobot v2.x dataset: metadata paths and the path templates of its files."""

from __future__ import annotations

INFO = "meta/info.json"
EPISODES = "meta/episodes.jsonl"
TASKS = "meta/tasks.jsonl"
EPISODES_STATS = "meta/episodes_stats.jsonl"  # what v2.1 adds
STATS = "meta/stats.json"

# The templates lerobot writes into info.json (data_path, video_path)
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
DEFAULT_CHUNKS_SIZE = 1000
