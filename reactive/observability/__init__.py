"""Observability: the function log stream, metrics and error reporting."""
