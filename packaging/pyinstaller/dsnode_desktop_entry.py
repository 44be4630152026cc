"""The frozen desktop build's entry point: the app (`dsnode-desktop`), or the command line when
started as `dsnode` (the package's /usr/bin/dsnode links to the same program), so one bundle
holds both and `dsnode selftest` checks its Qt."""

import os
import sys


def main() -> int:
    name = os.path.basename(sys.argv[0]).lower().removesuffix(".exe")
    if name == "dsnode":
        from edge.cli import main as run
    else:
        from ui.app import main as run
    return run()


if __name__ == "__main__":
    sys.exit(main())
