"""Helpers of the test suite, imported by tests as `helpers.<module>` (never a test module or conftest)."""
