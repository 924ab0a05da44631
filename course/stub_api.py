"""A small JSON API on 127.0.0.1 for lesson DAGs to call, served from a background thread.

    from course import stub_api
    api = stub_api.serve_json({"/users": [{"id": 1, "name": "Ada"}]})
    requests.get(api.url + "/users").json()    # [{'id': 1, 'name': 'Ada'}]
    api.stop()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonApi:
    """A running server: GET on one of its paths answers that path's value as JSON, others 404."""

    def __init__(self, routes: Mapping[str, Any], host: str = "127.0.0.1", port: int = 0) -> None:
        bodies = {path: json.dumps(value).encode() for path, value in routes.items()}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                body = bodies.get(self.path)
                if body is None:
                    self.send_error(404, f"try {' or '.join(sorted(bodies))}")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # keep the notebook quiet
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)  # port 0: any free port
        self.url = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, name=f"stub API {self.url}", daemon=True).start()

    def stop(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __repr__(self) -> str:
        return f"<JsonApi {self.url}>"


def serve_json(routes: Mapping[str, Any], port: int = 0) -> JsonApi:
    """Serve each path's value as JSON on 127.0.0.1 (any free port unless given); see JsonApi."""
    return JsonApi(routes, port=port)
