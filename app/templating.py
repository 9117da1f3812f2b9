"""Jinja2 templates, with what every page needs (the user, the CSRF token)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.auth import csrf_token
from app.config import ROOT
from app.models import User

templates = Jinja2Templates(directory=str(ROOT / "templates"))
# Links to static files are paths, never absolute URLs: the same page works over http, behind an
# https proxy and under any host name.
templates.env.globals["static"] = lambda path: f"/static/{path}"


def render(
    request: Request,
    name: str,
    user: User | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("messages", [])
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "csrf_token": csrf_token(request), **context},
        status_code=status_code,
        headers=headers,
    )
