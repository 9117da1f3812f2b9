"""Sign up, sign in, sign out (HTML forms)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import (
    AuthError,
    OptionalUser,
    authenticate,
    create_user,
    sign_in,
    sign_out,
    verify_csrf,
)
from app.deps import SessionDep
from app.models import User
from app.templating import render

router = APIRouter(tags=["accounts"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never redirect a learner to another host.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    return render(
        request, "auth.html", user, mode="signin", error=None, email="", next=_safe_next(next)
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
    request: Request, mode: str, attempt: Callable[[], User], email: str, next: str | None
) -> Response:
    """Sign the user in and go on, or show the form again with what went wrong."""
    try:
        user = attempt()
    except AuthError as exc:
        return render(
            request,
            "auth.html",
            None,
            400,
            mode=mode,
            error=str(exc),
            email=email,
            next=_safe_next(next),
        )
    sign_in(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request, db: SessionDep, email: Email, password: Password, next: Next = None
) -> Response:
    return _finish(
        request,
        "signin",
        lambda: authenticate(session=db, email=email, password=password),
        email,
        next,
    )


@router.post("/signup", dependencies=[Depends(verify_csrf)])
def signup(
    request: Request, db: SessionDep, email: Email, password: Password, next: Next = None
) -> Response:
    return _finish(
        request,
        "signup",
        lambda: create_user(session=db, email=email, password=password),
        email,
        next,
    )


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    sign_out(request)
    return RedirectResponse("/", status_code=303)


@router.get("/api/session", include_in_schema=True, tags=["accounts"])
def session_info(request: Request, user: OptionalUser) -> dict[str, object]:
    """Who is signed in, and the CSRF token to send as X-CSRF-Token with changes."""
    from app.auth import csrf_token

    return {
        "user": {"email": user.email, "role": user.role} if user else None,
        "csrf_token": csrf_token(request),
    }
