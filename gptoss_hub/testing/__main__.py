"""`python -m gptoss_hub.testing build [--name NAME|all] [--force]` and `python -m gptoss_hub.testing path NAME`."""

from __future__ import annotations

import argparse
import sys
import time

from gptoss_hub.errors import GptOssHubError
from gptoss_hub.testing.checkpoints import CHECKPOINT_NAMES, build_checkpoint, checkpoint_path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m gptoss_hub.testing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the tiny reference checkpoints into the cache")
    build.add_argument("--name", default="all", choices=[*CHECKPOINT_NAMES, "all"])
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    path = commands.add_parser("path", help="print a checkpoint's folder (building it if missing)")
    path.add_argument("name", choices=CHECKPOINT_NAMES)
    path.add_argument("--no-build", action="store_true", help="print the path without building")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(checkpoint_path(args.name, build=not args.no_build))
            return 0
        names = CHECKPOINT_NAMES if args.name == "all" else (args.name,)
        for name in names:
            started = time.monotonic()
            folder = build_checkpoint(name, force=args.force)
            print(f"{name}: {folder} ({time.monotonic() - started:.1f}s)")
    except GptOssHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
