"""The base of every configuration section: the config's own and each network's model section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # Unknown keys are errors, assignment re-validates so nothing slips in after loading, and
    # NaN or infinite numbers are refused (a comparison with NaN is always false: it would switch
    # checks off rather than fail them).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
