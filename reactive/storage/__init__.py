"""File storage: bytes in Django's storage, metadata in the tracked ``StoredFile`` table, signed
upload and download links, and the orphan sweep. ``ctx.storage`` wraps it
(:mod:`reactive.functions.storage`); the HTTP endpoints are :mod:`reactive.http.files`."""
