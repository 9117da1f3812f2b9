"""Accounts: argon2 password hashes, server-side sessions, the throttle, CSRF tokens, roles.

The session cookie (Starlette's SessionMiddleware: signed with the secret key, HttpOnly,
SameSite=Lax, Secure in production) holds a random session token and a CSRF token; the
`user_sessions` table holds the token's digest and whose it is. Signing out deletes that row
(signing out everywhere, every row of the account), so a copied cookie stops working at once.
Every state-changing request must echo the CSRF token: forms in a hidden ``csrf_token`` field,
JavaScript in the ``X-CSRF-Token`` header.

Failed sign-ins and sign-ups are counted in the database per address and per account (so
every web process counts the same), and past the limits answered 429; a sign-in takes as long
for an account that does not exist as for one that does.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pwdlib import PasswordHash
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.deps import SessionDep
from app.models import ROLES, AuthAttempt, User, UserSession

password_hash = PasswordHash.recommended()  # argon2id
# Verified against when the account does not exist, so that answer takes as long as a wrong
# password for a real account (otherwise the timing says which accounts exist).
_NOBODY = password_hash.hash(secrets.token_urlsafe(16))
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MIN_PASSWORD = 8
SESSION_DAYS = 14
SEEN_EVERY = timedelta(minutes=10)  # how often a session's last use is written down
THROTTLE_WINDOW = timedelta(minutes=15)


class AuthError(ValueError):
    """A sign-up or sign-in problem, worded for the person at the keyboard."""


class Throttled(AuthError):
    """Too many attempts; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(
            f"Too many attempts from here or for this account. Wait {minutes} minute"
            f"{'s' if minutes != 1 else ''} and try again."
        )
        self.retry_after = retry_after


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def throttle(*, session: Session, limits: dict[str, int]) -> None:
    """Raise Throttled if any key (`ip:…`, `email:…`, `signup:…`) has as many attempts in the
    window as its limit allows."""
    since = _now() - THROTTLE_WINDOW
    for key, limit in limits.items():
        count, first = session.execute(
            select(func.count(), func.min(AuthAttempt.at)).where(
                AuthAttempt.key == key, AuthAttempt.at > since
            )
        ).one()
        if count >= limit:
            wait = THROTTLE_WINDOW - (_now() - _aware(first))
            raise Throttled(max(1, int(wait.total_seconds())))


def count_attempt(*, session: Session, keys: list[str]) -> None:
    session.add_all(AuthAttempt(key=key[:400]) for key in keys)
    # Old attempts are nobody's business: the table holds the last window only.
    session.execute(delete(AuthAttempt).where(AuthAttempt.at < _now() - THROTTLE_WINDOW))
    session.commit()


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
        email = ""
    user = session.scalar(select(User).where(User.email == email)) if email else None
    # Always one argon2 verification: a missing account answers as slowly as a wrong password.
    valid = password_hash.verify(password, user.password_hash if user else _NOBODY)
    if user is None or not valid:
        raise AuthError("Wrong email or password.")
    return user


def sign_in_attempt(
    *, session: Session, settings: Settings, address: str, email: str, password: str
) -> User:
    """authenticate(), throttled: failures count per address and per account."""
    keys = {
        f"signin-ip:{address}": settings.signin_failures_per_address,
        # A digest: what anyone typed is not stored (nor a NUL, which PostgreSQL refuses).
        f"signin-email:{_digest(email.strip().lower())[:32]}": settings.signin_failures_per_account,
    }
    throttle(session=session, limits=keys)
    try:
        return authenticate(session=session, email=email, password=password)
    except AuthError:
        count_attempt(session=session, keys=list(keys))
        raise


def sign_up_attempt(
    *, session: Session, settings: Settings, address: str, email: str, password: str
) -> User:
    """create_user(), throttled: every sign-up counts per address."""
    key = f"signup-ip:{address}"
    throttle(session=session, limits={key: settings.signups_per_address})
    count_attempt(session=session, keys=[key])
    return create_user(session=session, email=email, password=password)


def client_address(request: Request) -> str:
    """The browser's address (behind the proxy: what uvicorn took from its forwarded headers,
    which it trusts from the proxy alone)."""
    return request.client.host if request.client else "unknown"


# --- session and CSRF ------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(request: Request, db: Session, user: User) -> None:
    """A new server-side session (and CSRF token) for this browser."""
    token = secrets.token_urlsafe(32)
    db.add(UserSession(id=_digest(token), user_id=user.id))
    db.commit()
    request.session.clear()
    request.session["sid"] = token
    csrf_token(request)


def sign_out(request: Request, db: Session) -> None:
    token = request.session.get("sid")
    if isinstance(token, str):
        db.execute(delete(UserSession).where(UserSession.id == _digest(token)))
        db.commit()
    request.session.clear()


def sign_out_everywhere(db: Session, user: User) -> int:
    """End every session of the account (this browser's too); how many there were."""
    ended = db.scalar(select(func.count()).where(UserSession.user_id == user.id)) or 0
    db.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.commit()
    return int(ended)


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
    token = request.session.get("sid")
    if not isinstance(token, str):
        return None
    try:
        row = db.get(UserSession, _digest(token))
        if row is None:
            return None  # signed out (here or everywhere), or never signed in
        seen = _aware(row.seen_at)
        if _now() - seen > timedelta(days=SESSION_DAYS):
            db.delete(row)
            db.commit()
            return None
        user = db.get(User, row.user_id)
        if _now() - seen > SEEN_EVERY:
            row.seen_at = _now()
        return user
    finally:
        # The connection goes back now, not when the request ends (app/db.py); a commit, not a
        # rollback, so the user's attributes stay loaded (no query when a route reads them).
        db.commit()


def require_user(user: Annotated[User | None, Depends(current_user)]) -> User:
    if user is None:
        raise HTTPException(
            401, "Sign in to do that: your session has ended or you are not signed in."
        )
    return user


OptionalUser = Annotated[User | None, Depends(current_user)]
CurrentUser = Annotated[User, Depends(require_user)]
