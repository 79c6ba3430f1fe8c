"""The installed datacarto version (also written into every run.json and Parquet shard)."""

__version__ = "0.1.0"
