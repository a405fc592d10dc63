"""Readers of the activity SOURCE layouts, one module each, and the dispatcher that picks one.

Each reader module has `read(path, options) -> HarSource` and (but for `hapt`, named by the word)
`detect(path) -> bool`. A reader returns every window it can cut, labelled where the source knows
the label and tagged with the split the source gives it; what prepare keeps and what prediction
uses is decided by them, not here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dltrain.core.errors import DataError
from dltrain.tasks.har.readers import classroom, hapt_windows, long_csv, uci, uea
from dltrain.tasks.har.types import HarOptions, HarSource

logger = logging.getLogger("dltrain")
HAPT_SOURCE = "hapt"
# Asked in order, the first whose detect() is true reads: a .ts file before any other file, a UCI
# HAR folder before any other folder.
READERS = (uea, long_csv, uci, classroom)
LAYOUTS = {
    uea: "a UEA .ts file",
    long_csv: "a long CSV file",
    uci: "a 'UCI HAR Dataset' folder",
    classroom: "a folder of CSV series (in class folders, or under train/ validation/ test/)",
}


def source_path(source: str) -> Path:
    """The file or folder SOURCE reads: the package's recordings for `hapt` (never a folder of that name)."""
    if source == HAPT_SOURCE:
        from dltrain.tasks.har.readers.hapt import hapt_path

        return hapt_path()
    return Path(source)


def read_har_source(source: str, options: HarOptions) -> HarSource:
    """Read SOURCE: `hapt`, a UCI HAR folder, a classroom folder, a long CSV, or a .ts file."""
    if source == HAPT_SOURCE:
        path = source_path(source)
        shadowed = " (not the folder hapt here: that one is ./hapt)" if Path(source).exists() else ""
        logger.info("SOURCE hapt: the UCI HAPT recordings of an installed package%s, %s", shadowed, path)
        return hapt_windows.read(path, options)
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"{source}: no such file or folder "
            "(SOURCE is 'hapt', a UCI HAR folder, a folder of class folders, a CSV file or a .ts file)"
        )
    for reader in READERS:
        if reader.detect(path):
            logger.info("SOURCE %s: %s", source, LAYOUTS[reader])
            return reader.read(path, options)
    raise DataError(f"{source}: neither a file nor a folder")
