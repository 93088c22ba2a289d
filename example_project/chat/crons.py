"""The chat's crons: a digest of the last hour, posted into #general."""

from reactive import crons

crons.hourly("chat digest", "chat:post_digest", minute=0)
