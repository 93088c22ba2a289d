"""Scheduled functions and crons on Celery: running jobs exactly or at most once, retry
policies, the sweeper, cron declarations and their ticks, and the Celery tasks."""
