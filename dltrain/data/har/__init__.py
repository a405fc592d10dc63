"""Activity recognition data: SOURCE layouts (HAPT, UCI HAR, classroom CSV folders, long CSV, UEA .ts)
read into labelled windows (readers/), split (splits.py) and written to a DATA_DIR (prepare.py)."""
