"""The fake Telegram behind real HTTP, for tests that run gridgate as a separate process.

PTB posts form fields whose complex values are JSON text; they are decoded by the declared
types in the spec, so a String parameter such as a message text "123" stays a string.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.telegram_fake.transport import TelegramServer, Upload


def _decode(field_types: list[str] | None, raw: str) -> Any:
    if field_types == ["String"]:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def make_app(server: TelegramServer, fields: dict[str, dict[str, list[str]]]) -> web.Application:
    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        uploads: dict[str, Upload] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[name] = Upload(value.filename, value.file.read(),
                                           value.content_type)
                else:
                    params[name] = _decode(fields.get(method, {}).get(name), value)
        status, body = await server.call(method, params, uploads)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api)
    return app


def spec_fields(spec_json: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return {name: {f["name"]: f["types"] for f in method.get("fields", [])}
            for name, method in spec_json["methods"].items()}
