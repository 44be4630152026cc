"""`dsnode demo`: what exists, working, on a throwaway node in a temporary folder.

It grows with the product; today it shows the foundation (an encrypted store, a did:key identity,
the evidence log with signed checkpoints, an offline-verifiable bundle, tamper detection, key
rotation, backup and restore), then a whole data space on this machine (`edge/demo_space.py`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from appliance import i18n
from appliance.errors import ApplianceError
from appliance.node import KDF_PROFILES, Node
from appliance.services.evidence_bundle import verify_bundle
from edge.demo_space import run_space_demo
from edge.terminal import bold

t = i18n.t
PASSPHRASE = b"demo-passphrase-not-secret"


def step(text: str) -> None:
    print("\n" + bold(f"▶ {text}", sys.stdout))


def run_demo(*, keep: bool = False, yes: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="dsnode-demo-"))
    try:
        _run(workdir)
        run_space_demo(workdir / "space", step, yes=yes, passphrase=PASSPHRASE)
    finally:
        if keep:
            print("\n" + t("demo.kept", workdir))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            print("\n" + t("demo.cleaned"))
    return 0


def _run(workdir: Path) -> None:
    home = workdir / "node"
    step(t("demo.step.init"))
    node = Node.init(home, PASSPHRASE, name=t("demo.node_name"), org=t("demo.org_name"), kdf=KDF_PROFILES["minimum"]())
    print(t("demo.identity", node.identity.did))
    print(t("demo.files", ", ".join(sorted(p.name for p in home.iterdir()))))

    step(t("demo.step.evidence"))
    for i, action in enumerate(["settings.changed", "resource.registered", "resource.classified"], 1):
        entry = node.evidence.record(action, f"urn:dsnode:demo:{i}", {"step": i})
        print(f"  #{entry.index} {entry.action} {entry.subject}")
    cp = node.evidence.checkpoint()
    print(t("demo.checkpoint"))
    print("    " + cp.note.replace("\n", "\n    ").rstrip())

    step(t("demo.step.rotate"))
    record = node.identity.rotate_key()
    print(t("demo.rotated", record.seq, record.did))

    step(t("demo.step.export"))
    bundle = workdir / "evidence.jsonl"
    count = node.export_evidence(bundle)
    report = verify_bundle(bundle)
    print(t("demo.bundle_ok", count, report.size))

    step(t("demo.step.tamper"))
    tampered = workdir / "evidence-tampered.jsonl"
    lines = bundle.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[2])
    entry["action"] = "resource.deleted"
    lines[2] = json.dumps(entry, ensure_ascii=False)
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        verify_bundle(tampered)
        print(t("demo.tamper_missed"))
    except ApplianceError as e:
        print(t("demo.tamper_caught", e.message()))

    step(t("demo.step.backup"))
    backup = workdir / "node.backup"
    node.backup(backup)
    node.close()
    restored = Node.restore(backup, workdir / "restored", PASSPHRASE)
    audit = restored.verify_evidence()
    same = t("demo.yes") if restored.identity.did == node.identity.did else t("demo.no")
    print(t("demo.restored", same, audit.size, t("demo.yes") if audit.ok else "; ".join(audit.messages())))
    restored.close()
