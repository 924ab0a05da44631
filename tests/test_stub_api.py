"""The notebooks' stand-in for an internet API: JSON on 127.0.0.1, 404 elsewhere, stops cleanly."""

from __future__ import annotations

import httpx
import pytest

from course import stub_api


def test_serves_each_path_as_json_and_404_with_the_known_paths_elsewhere():
    api = stub_api.serve_json({"/users": [{"id": 1, "email": "Ada@Example.com"}]})
    try:
        answer = httpx.get(api.url + "/users", timeout=5)
        assert answer.json() == [{"id": 1, "email": "Ada@Example.com"}]
        assert answer.headers["content-type"] == "application/json"
        missing = httpx.get(api.url + "/orders", timeout=5)
        assert missing.status_code == 404 and "try /users" in missing.text
    finally:
        api.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(api.url + "/users", timeout=5)
