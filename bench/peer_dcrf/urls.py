"""tests.urls plus ``POST /bench/post``: the one write both stacks are driven by."""

from __future__ import annotations

import json
import time

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tests.testapp.models import Message
from tests.urls import urlpatterns as test_urlpatterns


@csrf_exempt
def post(request: HttpRequest) -> JsonResponse:
    """A plain ORM create: Django's signals fire (DCRF) and the capture trigger fires (ours).

    ``saved``: ``time.perf_counter()`` once the create returned, committed (autocommit) and
    its ``post_save`` receivers run: on Linux the same monotonic clock as the benchmark's."""
    body = json.loads(request.body)
    message = Message.objects.create(channel=body["channel"], body=body["body"])
    return JsonResponse({"id": message.pk, "saved": time.perf_counter()})


urlpatterns = [path("bench/post", post), *test_urlpatterns]
