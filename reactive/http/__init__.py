"""The HTTP API the Convex HTTP clients call (``/api/query``, ``/api/mutation``, ...): the views
and the request plumbing (JSON bodies, CORS, CSRF, caller identity, error responses)."""
