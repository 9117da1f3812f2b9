"""The ``torchdojo`` command."""

from __future__ import annotations

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    import ipaddress

    from app.config import DEV_SECRET, get_settings
    from runner import configure_logging, serve_app

    settings = get_settings()
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if settings.secret_key == DEV_SECRET and not loopback:
        # The development secret is in this repository: anyone could sign a session cookie.
        print(
            f"torchdojo: refusing to serve on {args.host} with the development secret key, "
            "which anyone can read in the repository and use to forge sessions. Set "
            "TORCHDOJO_SECRET_KEY to a random value (python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'), or serve on 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level, settings.log_format)
    serve_app(
        "app.main:create_app",
        args.host,
        args.port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return 0


def _create_user(args: argparse.Namespace) -> int:
    import getpass

    from app.auth import AuthError, create_user
    from app.config import get_settings
    from app.db import make_engine, make_sessionmaker, migrate

    settings = get_settings()
    migrate(settings.database_url)
    password = args.password or getpass.getpass(f"Password for {args.email}: ")
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        try:
            user = create_user(session=session, email=args.email, password=password, role=args.role)
        except AuthError as exc:
            print(f"torchdojo: {exc}", file=sys.stderr)
            return 1
    print(f"Created {user.role} {user.email}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.db import migrate

    migrate(get_settings().database_url)
    return 0


def _purge(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.db import make_engine, make_sessionmaker, migrate
    from app.retention import purge

    settings = get_settings()
    migrate(settings.database_url)
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        report = purge(
            session,
            keep_days=args.days if args.days is not None else settings.keep_run_events_days,
            budget_bytes=int(settings.run_events_budget_mb * 1e6),
        )
    print(f"torchdojo: {report}")
    return 0


def _content(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.content_check import main as content_main

    # Recorded for the instructor dashboard ("verified in the sandbox", "changed since"), where
    # TORCHDOJO_CONTENT_CHECK_FILE says: the dashboard reads the same setting.
    return content_main(args.paths, results=get_settings().content_check_file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchdojo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve torchdojo at http://HOST:PORT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    user = sub.add_parser("create-user", help="create an account (e.g. the first admin)")
    user.add_argument("email")
    user.add_argument("--role", choices=["learner", "instructor", "admin"], default="learner")
    user.add_argument("--password", help="default: asked for without echo")
    user.set_defaults(func=_create_user)

    migrate_cmd = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate_cmd.set_defaults(func=_migrate)

    purge_cmd = sub.add_parser(
        "purge",
        help="remove old run events (and a learner's oldest past their budget); drafts, "
        "progress and accounts are kept",
    )
    purge_cmd.add_argument(
        "--days", type=float, help="keep this many days (default TORCHDOJO_KEEP_RUN_EVENTS_DAYS)"
    )
    purge_cmd.set_defaults(func=_purge)

    content = sub.add_parser("content", help="instructors: work with lessons")
    content_sub = content.add_subparsers(dest="content_command", required=True)
    check = content_sub.add_parser(
        "check",
        help="validate lessons: front matter, Python files, solutions and starters in the sandbox",
    )
    check.add_argument("paths", nargs="*", default=["content"], help="course or lesson folders")
    check.set_defaults(func=_content)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
