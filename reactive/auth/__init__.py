"""Who is calling: credentials (Django session, JWT, admin key) made into an ``Identity``, and
``ctx.auth``. Provider settings stay in :mod:`reactive.conf`, which validates them at start-up."""

from typing import Any


def __getattr__(name: str) -> Any:
    from reactive.compat import forwarded

    return forwarded(__name__, name)
