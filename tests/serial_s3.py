"""A moto S3 endpoint that answers one request at a time, for tests of racing conditional writes.

S3 lets exactly one of two racing `If-None-Match: *` (or `If-Match`) PUTs to a key succeed.
moto checks the condition and then writes without a lock, so under concurrent requests both
can succeed; answering one request at a time gives moto S3's guarantee back. With
`ignore_conditions` the endpoint drops those headers, as S3-compatible servers without
conditional writes do.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH")


class SerialS3Server:
    """``with SerialS3Server() as url:`` an S3 endpoint URL on 127.0.0.1 (moto's in-process backends)."""

    def __init__(self, ignore_conditions: bool = False) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serial_app(environ: dict[str, Any], start_response: Any) -> Any:
            if ignore_conditions:
                for name in _CONDITIONS:
                    environ.pop(name, None)
            with lock:
                return list(app(environ, start_response))  # the whole answer made under the lock

        self._server = make_server("127.0.0.1", 0, serial_app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join()
