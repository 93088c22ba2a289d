"""The app's own tables. Each submodule owns one concern; import models from here."""

from __future__ import annotations

from .sessions import SessionRequest

__all__ = ["SessionRequest"]
