"""Schema-free JSON document tables (``ctx.db``): names and validation, the queryset-like
reader, writes, and the tracked shape of each table. See docs/internals/documents.md."""
