"""The test app's models in the Django admin, so tests can write through its change forms."""

from __future__ import annotations

from django.contrib import admin

from tests.testapp.models import Account, Note, Sample

admin.site.register(Note)
admin.site.register(Account)
admin.site.register(Sample)
