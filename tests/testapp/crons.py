"""The test app's crons: two fast ones for the beat test, the rest for `reactive_crons`."""

from __future__ import annotations

from reactive import crons

crons.interval("note every second", "testapp/jobs:cron_note", seconds=1, args={"body": "cron tick"})
crons.interval("slow every second", "testapp/jobs:cron_slow", seconds=1, args={"seconds": 2.5})
crons.cron("weekday mornings", "0 9 * * 1-5", "testapp/jobs:cron_note", args={"body": "morning"})
crons.hourly("hourly", "testapp/jobs:cron_note", minute=15)
crons.daily("nightly", "testapp/jobs:cron_note", hour=3, minute=30)
crons.weekly("weekly", "testapp/jobs:cron_note", day="sunday", hour=12)
