"""Who answers for GifLab's assets, shown on every asset in the Dagster UI.

One team owns the whole graph today; set ``GIFLAB_OWNERS`` (comma-separated Dagster owners:
``team:name`` or e-mail addresses) to show your own on a deployment.
"""

from __future__ import annotations

import os

OWNERS = [o.strip() for o in os.environ.get("GIFLAB_OWNERS", "team:giflab").split(",") if o.strip()]
