"""`python -m bench [NAME] [--quick]`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import bench


def available() -> dict[str, str]:
    names = {}
    for mod in pkgutil.iter_modules(bench.__path__):
        if mod.name.startswith("bench_"):
            module = importlib.import_module(f"bench.{mod.name}")
            names[mod.name.removeprefix("bench_")] = module.DESCRIPTION
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", nargs="?")
    parser.add_argument("--quick", action="store_true", help="a smaller size that finishes in well under a minute")
    args = parser.parse_args(argv)
    benches = available()
    if not args.name:
        for name, text in sorted(benches.items()):
            print(f"{name:<12} {text}")
        return 0
    if args.name not in benches:
        print(f"unknown benchmark {args.name!r}; choose one of: {', '.join(sorted(benches))}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.bench_{args.name}")

    def say(text: str) -> None:
        print(text, flush=True)

    result = module.run(args.quick, say)
    print(result.line(args.name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
