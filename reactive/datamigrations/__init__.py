"""Batched data migrations (``@migration``) run on Celery, resumable and exactly once per row."""
