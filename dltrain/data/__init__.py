"""Data on disk: prepared DATA_DIRs and the readers of every raw source layout."""
