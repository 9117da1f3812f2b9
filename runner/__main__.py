"""``python -m runner``: run a file in the sandbox, or serve the runner over HTTP.

    python -m runner run FILE.py [--checks CHECKS.py] [--mode run|check]
                                 [--summary FACTORY --input-size 1,64]
    python -m runner serve [--host 127.0.0.1] [--port 8001]

`run` prints the protocol's NDJSON events on stdout and exits 0 whatever the code did;
non-zero only when the runner itself failed (no sandbox, unreadable file).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from runner import logs
from runner.config import get_settings
from runner.protocol import Done, RunRequest, SummarySpec, dump_event


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner", description="torchdojo's sandboxed runner"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run FILE in a sandbox and print NDJSON events")
    run.add_argument("file", type=Path)
    run.add_argument("--checks", type=Path, help="a checks file (pytest) to run after the code")
    run.add_argument(
        "--mode", choices=["run", "check"], help="default: check when --checks is given"
    )
    run.add_argument(
        "--summary",
        metavar="FACTORY",
        help="name of the model (or function building it) to summarise",
    )
    run.add_argument("--input-size", default="1,64", help="input size for --summary, e.g. 1,64")
    serve = sub.add_parser("serve", help="serve POST /v1/runs, /healthz and /metrics")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    from runner.pool import WarmPool

    request = RunRequest(
        code=args.file.read_text(),
        mode=args.mode or ("check" if args.checks else "run"),
        checks=args.checks.read_text() if args.checks else None,
        summary=SummarySpec(
            factory=args.summary, input_size=[int(n) for n in args.input_size.split(",")]
        )
        if args.summary
        else None,
    )
    async with WarmPool(get_settings(), size=1) as pool:
        async for event in pool.run(request):
            sys.stdout.write(dump_event(event) + "\n")
            sys.stdout.flush()
            if isinstance(event, Done) and event.status == "internal_error":
                return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "serve":
        logs.serve("runner.service:create_app", args.host, args.port)
        return 0
    try:
        return asyncio.run(_run(args))
    except (OSError, ValueError) as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from runner.sandbox import SandboxStartError, SandboxUnavailable

        if isinstance(exc, SandboxUnavailable | SandboxStartError):
            print(f"runner: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
