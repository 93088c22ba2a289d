"""The chat page, and a local stand-in for an outside summarizing service."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/index.html", {"username": request.user.get_username()})


@csrf_exempt
@require_POST
def summarizer(request: HttpRequest) -> JsonResponse:
    """Stands in for an outside API (no internet here): a crude extractive summary."""
    try:
        texts = [str(t) for t in json.loads(request.body)["texts"]]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "expected {\"texts\": [...]}"}, status=400)
    if not texts:
        return JsonResponse({"summary": "Nothing to summarize yet."})
    words = sum(len(t.split()) for t in texts)
    longest = max(texts, key=len)
    return JsonResponse(
        {"summary": f"{len(texts)} messages, {words} words. Longest: “{longest[:80]}”"}
    )
