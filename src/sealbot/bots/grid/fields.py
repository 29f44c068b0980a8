"""Field types shared by the grid and signal bot configs.

``Money`` is ``bots.common.fields.Amount``: finite, at most 10^12, at most 12 decimal
places (JSON floats read through their shortest text; NaN, infinities, booleans refused).
"""

from __future__ import annotations

from sealbot.bots.common.fields import Amount as Money

BOT_ID_PATTERN = r"^[A-Za-z0-9]{1,12}$"

__all__ = ["BOT_ID_PATTERN", "Money"]
