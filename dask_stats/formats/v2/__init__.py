"""LeRobot v2.0 / v2.1: one Parquet file and one MP4 per episode; v2.1 adds ``meta/episodes_stats.jsonl``."""
