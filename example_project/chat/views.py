from django.http import HttpRequest, HttpResponse


def index(request: HttpRequest) -> HttpResponse:
    """A placeholder home page until the live chat page lands (issue 5)."""
    return HttpResponse(
        "<h1>django-reactivity example</h1><p>The HTTP API is at <code>/api/query</code>, "
        "<code>/api/mutation</code> and <code>/api/action</code>; the data is in the "
        '<a href="/admin/">admin</a>.</p>'
    )
