"""Sign up, sign in, sign out (HTML forms)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import (
    AuthError,
    CurrentUser,
    OptionalUser,
    Throttled,
    client_address,
    sign_in,
    sign_in_attempt,
    sign_out,
    sign_out_everywhere,
    sign_up_attempt,
    verify_csrf,
)
from app.db import ReleasingRoute
from app.deps import SessionDep, SettingsDep
from app.models import User
from app.templating import render

router = APIRouter(tags=["accounts"], include_in_schema=False, route_class=ReleasingRoute)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never redirect a learner to another host.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, user: OptionalUser, next: str | None = None, signed_out: str | None = None
) -> Response:
    messages = (
        [("info", "You are signed out everywhere: every session of your account has ended.")]
        if signed_out == "everywhere"
        else []
    )
    return render(
        request,
        "auth.html",
        user,
        mode="signin",
        error=None,
        email="",
        next=_safe_next(next),
        messages=messages,
    )


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    return render(
        request, "auth.html", user, mode="signup", error=None, email="", next=_safe_next(next)
    )


Email = Annotated[str, Form()]
Password = Annotated[str, Form()]
Next = Annotated[str | None, Form()]


def _finish(
    request: Request,
    db: SessionDep,
    mode: str,
    attempt: Callable[[], User],
    email: str,
    next: str | None,
) -> Response:
    """Sign the user in and go on, or show the form again with what went wrong."""
    try:
        user = attempt()
    except AuthError as exc:
        retry = exc.retry_after if isinstance(exc, Throttled) else None
        return render(
            request,
            "auth.html",
            None,
            429 if retry else 400,
            mode=mode,
            error=str(exc),
            email=email,
            next=_safe_next(next),
            headers={"Retry-After": str(retry)} if retry else None,
        )
    sign_in(request, db, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    email: Email,
    password: Password,
    next: Next = None,
) -> Response:
    address = client_address(request)
    return _finish(
        request,
        db,
        "signin",
        lambda: sign_in_attempt(
            session=db, settings=settings, address=address, email=email, password=password
        ),
        email,
        next,
    )


@router.post("/signup", dependencies=[Depends(verify_csrf)])
def signup(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    email: Email,
    password: Password,
    next: Next = None,
) -> Response:
    address = client_address(request)
    return _finish(
        request,
        db,
        "signup",
        lambda: sign_up_attempt(
            session=db, settings=settings, address=address, email=email, password=password
        ),
        email,
        next,
    )


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request, db: SessionDep) -> Response:
    """End this browser's session (its cookie no longer works, wherever it was copied)."""
    sign_out(request, db)
    return RedirectResponse("/", status_code=303)


@router.post("/logout/everywhere", dependencies=[Depends(verify_csrf)])
def logout_everywhere(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    """End every session of the account: every browser, every copied cookie."""
    sign_out_everywhere(db, user)
    request.session.clear()
    return RedirectResponse("/login?signed_out=everywhere", status_code=303)


@router.get("/api/session", include_in_schema=True, tags=["accounts"])
def session_info(request: Request, user: OptionalUser) -> dict[str, object]:
    """Who is signed in, and the CSRF token to send as X-CSRF-Token with changes."""
    from app.auth import csrf_token

    return {
        "user": {"email": user.email, "role": user.role} if user else None,
        "csrf_token": csrf_token(request),
    }
