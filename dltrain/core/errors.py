"""The one exception type the CLI turns into a clean, one-line exit.

Exit codes (documented in the README): 2 for usage errors (bad option value, unknown config key,
wrong type), 1 for data errors (missing file, wrong layout, malformed values).
"""

USAGE_EXIT_CODE = 2
DATA_EXIT_CODE = 1


class DltrainError(Exception):
    """A problem the user can fix; the message is shown as is, without a traceback."""

    exit_code = DATA_EXIT_CODE


class DataError(DltrainError):
    """Missing path, wrong layout, malformed or inconsistent data."""

    exit_code = DATA_EXIT_CODE


class UsageError(DltrainError):
    """Bad option value, unknown config key, impossible combination of settings."""

    exit_code = USAGE_EXIT_CODE
