"""Server-side reactions to committed changes (``@on_change``), read from the change log."""
