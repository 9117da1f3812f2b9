"""Accounts: argon2 password hashes, the signed session cookie, CSRF tokens, roles.

The session cookie (Starlette's SessionMiddleware: signed with the secret key, HttpOnly,
SameSite=Lax, Secure in production) holds the user's id and a CSRF token. Every state-changing
request must echo that token: forms in a hidden ``csrf_token`` field, JavaScript in the
``X-CSRF-Token`` header.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import SessionDep
from app.models import ROLES, User

password_hash = PasswordHash.recommended()  # argon2id
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MIN_PASSWORD = 8


class AuthError(ValueError):
    """A sign-up or sign-in problem, worded for the person at the keyboard."""


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    bad = "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@")
    if bad or any(c.isspace() or not c.isprintable() for c in email):
        raise AuthError("Enter a valid email address, like ada@example.com.")
    return email


def create_user(*, session: Session, email: str, password: str, role: str = "learner") -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise AuthError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"Choose a password of at least {MIN_PASSWORD} characters.")
    if session.scalar(select(User).where(User.email == email)):
        raise AuthError("An account with this email already exists. Sign in instead.")
    user = User(email=email, password_hash=password_hash.hash(password), role=role)
    session.add(user)
    session.commit()
    return user


def authenticate(*, session: Session, email: str, password: str) -> User:
    try:
        email = normalise_email(email)
    except AuthError:
        raise AuthError("Wrong email or password.") from None
    user = session.scalar(select(User).where(User.email == email))
    if user is None or not password_hash.verify(password, user.password_hash):
        raise AuthError("Wrong email or password.")
    return user


# --- session and CSRF ------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def sign_in(request: Request, user: User) -> None:
    request.session.clear()  # a fresh session (and CSRF token) on every sign-in
    request.session["uid"] = user.id
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request whose token does not match the session's."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get("csrf_token")  # type: ignore[assignment]
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise HTTPException(
            403, "This form has expired or came from another site. Reload the page and try again."
        )


def current_user(request: Request, db: SessionDep) -> User | None:
    uid = request.session.get("uid")
    if uid is None:
        return None
    return db.get(User, uid)


def require_user(user: Annotated[User | None, Depends(current_user)]) -> User:
    if user is None:
        raise HTTPException(
            401, "Sign in to do that: your session has ended or you are not signed in."
        )
    return user


OptionalUser = Annotated[User | None, Depends(current_user)]
CurrentUser = Annotated[User, Depends(require_user)]
