from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from tests.testapp.models import Note


@csrf_exempt
def plain_note(request: HttpRequest) -> JsonResponse:
    """The benchmark baseline: the same ORM write as testapp:add_note, in a plain view."""
    body = json.loads(request.body)["args"]
    note = Note.objects.create(body=body["body"])
    return JsonResponse({"status": "success", "value": str(note.pk)})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("plain/note", plain_note),
    path("", include("reactive.urls")),
]
