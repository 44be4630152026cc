"""The dsnode-edge unit under systemd. systemd does not run as PID 1 on this machine, so the unit is
checked the way systemd reads it (`systemd-analyze verify`, the offline security score) in a Debian
root with systemd, and then really started: that root, with the package installed, boots in a
systemd-nspawn container (run from a second root that has systemd-container, since the host has
none, over a cgroup2 hierarchy mounted in a private mount namespace, since the host's is cgroup v1
without systemd's). In there the unit starts (Type=notify: started once the node serves), reloads,
answers `dsnode status` through its socket, restarts when a newer package is installed, and stops
cleanly, all under its full hardening (syscall filter, no capabilities, read-only system).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import version
from tests.packaging.test_deb_install import Chroot, newer_package, root_with

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

EXPOSURE_GOAL = 2.0  # systemd-analyze security: 0 (locked down) to 10 (unprotected); Debian's mosquitto: 9.6


def test_the_installed_unit_passes_systemd_analyze_verify_and_its_hardening_scores_low(deb, tmp_path):
    """`verify`: every setting known and valid, the program and the user exist; and the exposure score."""
    if os.geteuid() != 0:
        pytest.skip("installing into a chroot needs root")
    box = Chroot(root_with("systemd", "systemd"), tmp_path)
    box.sh(f"dpkg -i {box.put(deb)}")
    unit = "/lib/systemd/system/dsnode.service"
    verify = box.sh(f"systemd-analyze verify {unit}", ok=False)
    assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stdout + verify.stderr
    security = box.sh(f"systemd-analyze security --offline=true --no-pager {unit}", ok=False)
    overall = [line for line in security.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, security.stdout + security.stderr
    exposure = float(overall[0].split(":")[1].split()[0])
    assert exposure <= EXPOSURE_GOAL, security.stdout


CHECK_UNIT = """[Unit]
Description=the packaging test: dsnode under systemd, then power off
After=dsnode.service
[Service]
Type=oneshot
StandardOutput=file:/root/check.out
StandardError=inherit
ExecStart=/bin/sh -c '/bin/sh /root/checks.sh; systemctl poweroff'
[Install]
WantedBy=multi-user.target
"""

CHECKS = ("for i in $(seq 100); do systemctl is-active -q dsnode && break; sleep 0.1; done",
          "systemctl show -p ActiveState,SubState,NRestarts,Type dsnode",
          "systemctl reload dsnode && echo reloaded",
          "setpriv --reuid dsnode --regid dsnode --init-groups env DSNODE_LANG=en dsnode --home /var/lib/dsnode status",
          # an upgrade restarts the daemon (postinst's try-restart, now that systemd runs)
          "before=$(systemctl show -p MainPID --value dsnode); dpkg -i /root/newer.deb >/dev/null",
          "[ \"$(systemctl show -p MainPID --value dsnode)\" != \"$before\" ] && systemctl is-active -q dsnode "
          "&& echo restarted by the upgrade to $(dpkg-query -W -f '${Version}' dsnode-edge)",
          "systemctl stop dsnode; systemctl show -p ActiveState,Result dsnode",
          "journalctl -u dsnode --no-pager -o cat")


def boot(host: Chroot, machine: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Boot ``machine`` (a root with systemd) with systemd-nspawn from ``host``; returns when it powered off."""
    r, m = shlex.quote(str(host.root)), shlex.quote(str(machine))
    script = f"""mount --bind {r} {r} && mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys
        mount --rbind /dev {r}/dev && mount -t tmpfs tmpfs {r}/run && mount -t cgroup2 none {r}/sys/fs/cgroup
        mkdir -p {r}/var/lib/machines/box && mount --bind {m} {r}/var/lib/machines/box
        exec chroot {r} /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin systemd-nspawn --quiet --register=no \\
            --keep-unit --link-journal=no --console=pipe -D /var/lib/machines/box -b"""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
                          capture_output=True, text=True, timeout=timeout)


def test_the_unit_starts_reloads_serves_and_stops_under_systemd_in_a_container(deb, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    for where in ("host", "box"):
        (tmp_path / where).mkdir()
    host = Chroot(root_with("nspawn", "systemd-container"), tmp_path / "host")
    box = Chroot(root_with("systemd", "systemd"), tmp_path / "box")
    box.sh(f"dpkg -i {box.put(deb)} && : > /etc/machine-id")  # a fresh machine id: the box is not its host
    shutil.copy(newer_package(deb, tmp_path), box.root / "root" / "newer.deb")
    (box.root / "root" / "checks.sh").write_text("\n".join(CHECKS) + "\n")
    (box.root / "etc/systemd/system/dsnode-check.service").write_text(CHECK_UNIT)
    wants = box.root / "etc/systemd/system/multi-user.target.wants"
    # what postinst's `systemctl enable` does where systemd runs (not in the chroot it was installed in)
    (wants / "dsnode.service").symlink_to("/lib/systemd/system/dsnode.service")
    (wants / "dsnode-check.service").symlink_to("/etc/systemd/system/dsnode-check.service")
    booted = boot(host, box.root)
    out = box.root / "root" / "check.out"
    if not out.exists():
        pytest.skip(f"systemd-nspawn could not boot the root here (rc {booted.returncode}): {booted.stderr[-800:]}")
    report = out.read_text()
    running, _, stopped = report.partition("\nreloaded\n")  # systemctl show's lines come in its own order
    assert {"Type=notify", "ActiveState=active", "SubState=running", "NRestarts=0"} <= set(running.split()), report
    assert "configuration reloaded" in stopped, report  # SIGHUP reached the daemon
    assert "Node id           did:key:" in stopped, report  # answered through the control socket
    assert f"restarted by the upgrade to {version()}+1" in stopped, report
    assert {"ActiveState=inactive", "Result=success"} <= set(stopped.splitlines()), report
