"""Standalone evidence-bundle verifier: ``python -m appliance.evidence_verify BUNDLE``.

Needs no node store and no passphrase: only the bundle file. Exit code 0 when it verifies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance import i18n
from appliance.errors import ApplianceError
from appliance.services.evidence_bundle import verify_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.evidence_verify",
                                     description=i18n.t("verify.description"))
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--lang", choices=i18n.LANGS)
    args = parser.parse_args(argv)
    i18n.set_lang(args.lang)
    try:
        report = verify_bundle(args.bundle)
    except ApplianceError as e:
        print(i18n.t("verify.failed", e.message()), file=sys.stderr)
        return e.exit_code
    print(i18n.t("verify.ok", report.entries, report.node, report.size, report.checkpoints + 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
