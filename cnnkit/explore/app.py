"""The explorer's web application: the page, and the JSON API under it.

Built on Starlette (the ASGI toolkit FastAPI itself is made of), served by
uvicorn. We chose Starlette over FastAPI: the API has a dozen small
GET routes whose few parameters :class:`~cnnkit.explore.session.Explorer`
checks itself, so FastAPI's request models (and pydantic) would add a
dependency and no safety; Starlette brings routing, responses and a test
client, and is as well kept.

API (every answer is JSON; an error is ``{"error": "one line"}`` with a 4xx status):

==============================  =====================================================================
``GET  /api/model``             the network: name, task, input shape, normalisation, depth
``GET  /api/images``            the images to pick from: ``id``, ``title``, true ``label`` (or null)
``POST /api/images``            upload an image file (the request body is the file's bytes) -> its entry
``GET  /api/images/ID``         the prepared input as a PNG data URL, its shape and value range
``GET  /api/predict?image=ID``  class probabilities, top first, and the true class
``GET  /api/layers``            the layer columns (``depth=N``): shape, parameters, MACs, receptive field
``GET  /api/maps``              ``image, layer, start, count``: feature maps as PNGs on one scale
``GET  /api/unit``              ``image, layer, at=c,y,x``: one unit worked (window, kernel, sums, bias, ...)
``GET  /api/attribution``       ``image, method=gradcam|saliency, target``: the overlay
``GET  /api/filters``           ``layer, start, count``: the learnt kernels of a convolution
==============================  =====================================================================

No parameter names a file on the server: images are picked by the ids the
server gave them. Uploads are limited in bytes and pixels
(:data:`~cnnkit.explore.session.MAX_UPLOAD_BYTES`) and decoded by the same
code (and the same decompression-bomb limit) as every dataset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cnnkit.explore.session import MAX_UPLOAD_BYTES, Explorer

Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(ValueError):
    """A request the API cannot answer as asked: 400, or ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _text(request: Request, key: str, default: str | None = None) -> str:
    value = request.query_params.get(key, default)
    if value is None:
        raise BadRequest(f"missing query parameter {key!r}")
    if len(value) > 200:
        raise BadRequest(f"query parameter {key!r} is longer than 200 characters")
    return value


def _int(request: Request, key: str, default: int | None = None) -> int | None:
    value = request.query_params.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"query parameter {key!r} must be a whole number. Received: {value[:40]!r}") from None


class _Hosts:
    """Answers only requests whose Host header names one of ``hosts`` (``*``: any), others a JSON 400: a page of
    another site that points its own DNS name at 127.0.0.1 (DNS rebinding) cannot read the API."""

    def __init__(self, app: Any, hosts: tuple[str, ...]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "*" not in self.hosts:
            host = Headers(scope=scope).get("host", "").rsplit(":", 1)[0].strip("[]")
            if host not in self.hosts:
                response = JSONResponse({"error": f"requests must be addressed to {' or '.join(self.hosts[:2])}, "
                                                  f"not {host[:60]!r}"}, status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def page() -> str:
    """The page: HTML with its script and style inlined (one response, works the same saved as a file)."""
    folder = resources.files("cnnkit.explore") / "page"
    html = (folder / "index.html").read_text(encoding="utf-8")
    return (html.replace("/*STYLE*/", (folder / "explore.css").read_text(encoding="utf-8"))
            .replace("/*SCRIPT*/", (folder / "explore.js").read_text(encoding="utf-8"))
            .replace("/*DATA*/", "null"))


def create_app(explorer: Explorer, hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1", "testserver")) -> Starlette:
    """The Starlette application serving ``explorer``, answering requests addressed to ``hosts`` only (a page of
    another site that points a DNS name at 127.0.0.1 cannot read the API)."""
    import anyio.to_thread

    def view(compute: Callable[[Request], Any]) -> Handler:
        async def handle(request: Request) -> Response:
            try:
                # the computation runs in a worker thread: the server keeps answering while a big network works
                return JSONResponse(await anyio.to_thread.run_sync(compute, request))
            except BadRequest as error:
                return JSONResponse({"error": str(error)}, status_code=error.status)
            except LookupError as error:
                return JSONResponse({"error": str(error).strip("'\"")}, status_code=404)
            except (ValueError, TypeError) as error:
                return JSONResponse({"error": str(error).splitlines()[0]}, status_code=400)
        return handle

    async def index(request: Request) -> Response:
        return HTMLResponse(page(), headers={"Cache-Control": "no-store"})

    async def upload(request: Request) -> Response:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_UPLOAD_BYTES:
            return JSONResponse({"error": f"the upload is {int(size):,} bytes, more than the {MAX_UPLOAD_BYTES:,} "
                                          f"allowed"}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                return JSONResponse({"error": f"the upload is more than the {MAX_UPLOAD_BYTES:,} bytes allowed"},
                                    status_code=413)
        if "x-filename" not in request.headers:  # a header a cross-site form cannot send without asking first
            return JSONResponse({"error": "an upload needs an X-Filename header (the file's name, URL-encoded)"},
                                status_code=400)
        name = unquote(request.headers["x-filename"])[:200]

        def add(_: Request) -> Any:
            with explorer.lock:
                picture = explorer.add_upload(bytes(body), name)
            return {"id": picture.id, "title": picture.title, "label": None, "label_name": None}

        return await view(add)(request)

    def unit(request: Request) -> Any:
        text = _text(request, "at")
        try:
            at = [int(part) for part in text.split(",")]
        except ValueError:
            raise BadRequest(f"at must be channel,y,x (or index) as whole numbers. Received: {text[:40]!r}") from None
        return explorer.unit(_text(request, "image"), _text(request, "layer"), at)

    routes = [
        Route("/", index),
        Route("/api/model", view(lambda r: explorer.about())),
        Route("/api/images", view(lambda r: explorer.images()), methods=["GET"]),
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/images/{image}", view(lambda r: explorer.image(r.path_params["image"]))),
        Route("/api/predict", view(lambda r: explorer.predict(_text(r, "image")))),
        Route("/api/layers", view(lambda r: explorer.layers(r.query_params.get("image"), _int(r, "depth")))),
        Route("/api/maps", view(lambda r: explorer.maps(_text(r, "image"), _text(r, "layer"), _int(r, "start", 0) or 0,
                                                        _int(r, "count", 8) or 8))),
        Route("/api/unit", view(unit)),
        Route("/api/attribution", view(lambda r: explorer.attribution(_text(r, "image"), _text(r, "method", "gradcam"),
                                                                      _int(r, "target")))),
        Route("/api/filters", view(lambda r: explorer.filters(_text(r, "layer"), _int(r, "start", 0) or 0,
                                                              _int(r, "count", 16) or 16))),
    ]

    async def not_found(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        message = error.detail if isinstance(error, HTTPException) else "internal error"
        return JSONResponse({"error": f"{message}: {request.url.path}"}, status_code=status)

    async def failed(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": f"internal error ({type(error).__name__}); this is a bug in cnnkit"},
                            status_code=500)

    return Starlette(routes=routes, exception_handlers={HTTPException: not_found, Exception: failed},
                     middleware=[Middleware(_Hosts, hosts=tuple(hosts))])


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765, quiet: bool = False) -> None:
    """Serve ``explorer`` until Ctrl-C (uvicorn); a host other than the loopback is warned about."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"cnnkit: warning: serving on {host}: anyone who can reach this machine on port {port} can use the "
              f"explorer and upload images to it")
    print(f"cnnkit explore: {explorer.subject.name} at http://{'localhost' if host == '127.0.0.1' else host}:{port}/ "
          f"(Ctrl-C stops it)", flush=True)
    hosts = ["127.0.0.1", "localhost", "::1"] if host in ("127.0.0.1", "localhost", "::1") else ["*"]
    uvicorn.run(create_app(explorer, hosts), host=host, port=port, log_level="warning" if quiet else "info",
                access_log=False)


def serve_in_thread(explorer: Explorer) -> tuple[str, Any]:
    """Serve ``explorer`` on a free port of 127.0.0.1 in a background thread (benchmarks, screenshots, browser
    tests): its URL and the uvicorn server (set ``should_exit`` to stop it)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(explorer), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(600):
        if server.started:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"the explorer's server did not start on port {port} within 30 s")
    return f"http://127.0.0.1:{port}/", server
