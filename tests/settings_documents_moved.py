"""tests.settings with the schema-free table ``notes`` routed to ``testapp.MovedNote``
(DOCUMENTS_MODELS): the servers a move-to-a-model test restarts into, as a deploy would."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import REACTIVE

REACTIVE = {**REACTIVE, "DOCUMENTS_MODELS": {"notes": "testapp.MovedNote"}}
