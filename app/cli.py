"""The ``torchdojo`` command."""

from __future__ import annotations

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Until the web app lands, the runner service is what `torchdojo serve` serves.
    uvicorn.run("runner.service:create_app", factory=True, host=args.host, port=args.port)
    return 0


def _content(args: argparse.Namespace) -> int:
    from app.content_check import main as content_main

    return content_main(args.paths)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchdojo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve torchdojo at http://HOST:PORT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

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
