"""`python -m gptoss_hub.testing build [--name NAME|all] [--force]`, `python -m gptoss_hub.testing path NAME` and
`python -m gptoss_hub.testing shaped {20b,120b} OUT [--layers N] [--seed S] [--force]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gptoss_hub.errors import GptOssHubError
from gptoss_hub.released import RELEASED_REPOS
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
    shaped = commands.add_parser(
        "shaped", help="write random weights with a released model's shapes and layout (MXFP4 experts) to a folder"
    )
    shaped.add_argument("size", choices=sorted(RELEASED_REPOS), help="the released model whose shapes to copy")
    shaped.add_argument("out", type=Path, help="the folder to create")
    shaped.add_argument("--layers", type=int, default=None, help="keep only the first N layers")
    shaped.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    shaped.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(checkpoint_path(args.name, build=not args.no_build))
            return 0
        if args.command == "shaped":
            return _shaped(args)
        names = CHECKPOINT_NAMES if args.name == "all" else (args.name,)
        for name in names:
            started = time.monotonic()
            folder = build_checkpoint(name, force=args.force)
            print(f"{name}: {folder} ({time.monotonic() - started:.1f}s)")
    except GptOssHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _shaped(args: argparse.Namespace) -> int:
    from gptoss_hub.testing.shaped import write_shaped_checkpoint

    try:
        folder = write_shaped_checkpoint(args.size, args.out, layers=args.layers, seed=args.seed, force=args.force)
    except ValueError as exc:  # --layers below 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    print(f"{folder} ({size / 2**30:.2f} GiB, {size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
