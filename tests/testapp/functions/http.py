"""HTTP actions of the test app, served under /http/ (see tests/http/test_http_actions.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from reactive import ActionCtx, MutationCtx, SyncActionCtx, http_action, internal_mutation
from tests.testapp.models import Note

WEBHOOK_SECRET = b"tests-webhook-secret"


@internal_mutation
def record_payment(ctx: MutationCtx, order: str) -> str:
    return str(Note.objects.create(body=f"paid {order}").pk)


@http_action("/hooks/payment", methods=["POST"], cors=False)
async def payment_webhook(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    """The signed-webhook example of docs/guides/http-actions.md."""
    expected = hmac.new(WEBHOOK_SECRET, request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
        return HttpResponse("bad signature", status=401)
    event = json.loads(request.body)
    await ctx.run_mutation("testapp/http:record_payment", order=event["order"])
    return HttpResponse(status=204)


@http_action("/whoami", methods=["GET", "POST"])
def whoami(ctx: SyncActionCtx, request: HttpRequest) -> JsonResponse:
    identity = ctx.auth.get_user_identity()
    print(f"whoami {request.method}")  # reaches the log stream like any function's output
    notes = len(ctx.run_query("testapp:list_notes")) if request.GET.get("count") else None
    return JsonResponse({
        "method": request.method,
        "subject": identity.subject if identity else None,
        "issuer": identity.issuer if identity else None,
        "notes": notes,
    })


@http_action("/stream")
async def stream(ctx: ActionCtx, request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first\n"
        await asyncio.sleep(0.5)
        yield b"second\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


@http_action("/boom", methods=["GET"])
def boom(ctx: SyncActionCtx, request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a secret detail")


@http_action("/not-a-response")
async def not_a_response(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    return "hello"  # type: ignore[return-value]


@http_action("/files/", methods=["POST", "GET"], prefix=True)
async def files(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    """POST stores the body; GET /files/<id> redirects to its URL."""
    if request.method == "POST":
        storage_id = await ctx.storage.store(request.body, content_type=request.content_type)
        return JsonResponse({"storageId": storage_id})
    url = await ctx.storage.get_url(request.path.rsplit("/", 1)[-1])
    return HttpResponse(status=404) if url is None else JsonResponse({"url": url})
