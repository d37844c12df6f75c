"""The Redis URL the suite runs against (the root conftest's, importable by name)."""

from __future__ import annotations

import os

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
