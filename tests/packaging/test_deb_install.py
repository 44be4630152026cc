"""The dsnode-edge package installed into a clean Debian root: the installed program runs and
passes its selftest, its store was made at install and opens as the `dsnode` user, the daemon
comes up and stops on SIGTERM, an upgrade keeps the data and a changed conffile, and a purge
leaves nothing behind but what Debian policy keeps (the system user, dpkg's own records).

The clean root is made once with debootstrap (minbase) and cached outside the checkout
(DSNODE_TEST_ROOTS, default /var/cache/dsnode-test); each test run works on a copy of it, in a
private mount namespace (unshare) so nothing stays mounted. Needs root and debootstrap (installed
with apt-get when missing); the first run also needs a Debian mirror (DSNODE_TEST_MIRROR).
Measured on this project's 2-core CI machine kind: cold (debootstrap about 30 s, bundle and
package about 45 s) about 110 s; warm (cached root, dist/ up to date) about 30 s for both tests.
The desktop and operator-host tests use roots with more installed (apt, once, cached beside it):
about 20 s and 16 s warm, on a busy machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SUITE = "bookworm"
CACHE = Path(os.environ.get("DSNODE_TEST_ROOTS", "/var/cache/dsnode-test"))
MIRROR = os.environ.get("DSNODE_TEST_MIRROR", "http://deb.debian.org/debian")
FREE_NEEDED = 2 * 1024**3  # bytes: the root (~210 MB), its copy, the package and room to spare

# what may differ between the root before the install and after the purge (Debian policy keeps
# the system user; dpkg and the tools keep their records and logs)
KEPT = ("/var/lib/dpkg/", "/var/log/", "/var/cache/", "/tmp/", "/root/", "/etc/passwd", "/etc/group",
        "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid", "/etc/.pwd.lock")


def clean_root() -> Path:
    """The cached clean root, made with debootstrap on the first run."""
    root, done = CACHE / SUITE, CACHE / f"{SUITE}.ok"
    if done.exists() and (root / "usr" / "bin" / "dpkg").exists():
        return root
    if os.geteuid() != 0:
        pytest.skip("making a Debian root with debootstrap needs root")
    if not shutil.which("debootstrap"):
        apt = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
                             capture_output=True, text=True, timeout=600) if shutil.which("apt-get") else None
        if not shutil.which("debootstrap"):
            pytest.skip("debootstrap is not installed and apt-get could not install it: "
                        + (apt.stderr.strip()[-300:] if apt else "no apt-get"))
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free
    if free < FREE_NEEDED:
        pytest.skip(f"{CACHE} has {free // 2**20} MiB free; a Debian root needs {FREE_NEEDED // 2**20} MiB")
    partial = CACHE / f"{SUITE}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    proc = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(partial), MIRROR],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        shutil.rmtree(partial, ignore_errors=True)
        pytest.skip(f"debootstrap {SUITE} from {MIRROR} failed (no mirror reachable?): {proc.stdout[-500:]}")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    done.touch()
    return root


# what every desktop has that registers file types (their dpkg triggers: update-mime-database,
# update-desktop-database) and the tools to ask it (gio, desktop-file-validate)
DESKTOP_TOOLS = "shared-mime-info, desktop-file-utils, libglib2.0-bin"


def desktop_root(deb: Path) -> Path:
    """The clean root with what the desktop package depends on installed (apt, once per Depends)."""
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout.strip() + ", " + DESKTOP_TOOLS
    return root_with("desktop", depends)


def root_with(name: str, depends: str) -> Path:
    """The clean root with the packages ``depends`` (a Depends field) installed, cached as <suite>-<name>."""
    root, done = CACHE / f"{SUITE}-{name}", CACHE / f"{SUITE}-{name}.ok"
    if done.exists() and done.read_text() == depends:
        return root
    names = [alt.split("|")[0].split("(")[0].strip() for alt in depends.replace("\n", " ").split(",")]
    partial = CACHE / f"{SUITE}-{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["cp", "-a", str(clean_root()), str(partial)], check=True)
    shutil.copy("/etc/resolv.conf", partial / "etc" / "resolv.conf")
    box = Chroot.__new__(Chroot)
    box.root = partial
    got = box.sh("apt-get update -qq && apt-get install -y -qq --no-install-recommends " + " ".join(names)
                 + " >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }; apt-get clean", ok=False, timeout=1200)
    if got.returncode:
        shutil.rmtree(partial, ignore_errors=True)
        pytest.skip(f"apt-get could not install {names} in the root: {got.stdout[-500:]}")
    (partial / "etc" / "resolv.conf").unlink()
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    done.write_text(depends)
    return root


class Chroot:
    """A copy of the clean root; :meth:`sh` runs a shell script in it (own mount namespace, /proc)."""

    def __init__(self, base: Path, where: Path) -> None:
        self.root = where / "root"
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(self.root)], check=True, timeout=300)

    def sh(self, script: str, *, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        root = shlex.quote(str(self.root))
        outer = (f"mount -t proc proc {root}/proc && exec chroot {root} /usr/bin/env -i "
                 "PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root sh -ec \"$0\"")
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", outer, script],
                              capture_output=True, text=True, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"in the chroot: {script}\n--- out\n{proc.stdout}\n--- err\n{proc.stderr}"
        return proc

    def files(self) -> set[str]:
        return set(self.sh("find / -xdev -path /proc -prune -o -print").stdout.split("\n")) - {""}

    def put(self, path: Path) -> str:
        shutil.copy(path, self.root / "tmp" / path.name)
        return f"/tmp/{path.name}"


AS_DSNODE = ('DSNODE_PASSPHRASE="$(cat /etc/dsnode/store.key)" setpriv --reuid dsnode --regid dsnode --init-groups '
             "env DSNODE_HOME=/var/lib/dsnode DSNODE_CONFIG=/etc/dsnode/dsnode.toml DSNODE_KEY_ENV=DSNODE_PASSPHRASE "
             "DSNODE_LANG=en")


def newer_package(deb: Path, where: Path) -> Path:
    """The same package with a higher version: what an upgrade installs."""
    tree = where / "newer"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    control.write_text(control.read_text().replace(f"Version: {version()}\n", f"Version: {version()}+1\n"))
    out = where / f"dsnode-edge_{version()}+1.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "--build", str(tree), str(out)], check=True,
                   capture_output=True)
    return out


def test_the_package_installs_runs_upgrades_and_purges_cleanly(deb, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installing into a chroot needs root")
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    box = Chroot(clean_root(), tmp_path)
    before = box.files()

    installed = box.sh(f"dpkg -i {box.put(deb)}")
    assert "已创建节点 did:key:" in installed.stdout  # postinst made the store, in the box's language
    assert box.sh("dsnode --version").stdout.strip() == f"dsnode {version()}"
    selftest = box.sh("dsnode --lang en selftest")
    assert selftest.stdout.strip().splitlines()[-1] == "All 5 checks passed.", selftest.stdout
    listing = box.sh("stat -c '%a %U %n' /var/lib/dsnode /etc/dsnode/store.key; readlink -f /usr/bin/dsnode").stdout
    assert "700 dsnode /var/lib/dsnode" in listing and "600 root /etc/dsnode/store.key" in listing
    assert "/usr/lib/dsnode/dsnode" in listing
    assert box.sh("test -f /lib/systemd/system/dsnode.service && grep -c '^ExecStart=/usr/bin/dsnode run' "
                  "/lib/systemd/system/dsnode.service").stdout.strip() == "1"
    did = box.sh(f"{AS_DSNODE} dsnode identity show").stdout
    assert "did:key:" in did

    # the daemon as the unit runs it (the dsnode user, the key handed over), up and down again
    daemon = box.sh(f"""{AS_DSNODE} dsnode run 2>/tmp/run.log & pid=$!
        for i in $(seq 300); do [ -S /var/lib/dsnode/control.sock ] && break; sleep 0.1; done
        {AS_DSNODE} dsnode status
        kill -TERM $pid; rc=0; wait $pid || rc=$?; echo "daemon exit $rc" """)
    assert "daemon exit 0" in daemon.stdout, daemon.stdout + box.sh("cat /tmp/run.log").stdout

    # upgrade: the data stays, a locally changed conffile stays, the new program opens the store
    box.sh("sed -i 's/^# log_level = .*/log_level = \"INFO\"/' /etc/dsnode/dsnode.toml")
    box.sh(f"dpkg -i {box.put(newer_package(deb, tmp_path))}")
    assert box.sh("dpkg-query -W -f '${Version}' dsnode-edge").stdout == f"{version()}+1"
    assert 'log_level = "INFO"' in box.sh("cat /etc/dsnode/dsnode.toml").stdout
    assert box.sh(f"{AS_DSNODE} dsnode identity show").stdout == did

    # remove keeps the data and the settings; purge deletes them
    box.sh("dpkg --remove dsnode-edge")
    assert box.sh("test ! -e /usr/bin/dsnode && test -d /var/lib/dsnode && test -f /etc/dsnode/dsnode.toml "
                  "&& echo kept").stdout.strip() == "kept"
    box.sh("dpkg --purge dsnode-edge")
    left = sorted(p for p in box.files() - before if not p.startswith(KEPT) and p not in ("/tmp", "/root"))
    assert left == [], f"left behind after the purge: {left}"
    assert box.sh("getent passwd dsnode").stdout.startswith("dsnode:")  # policy: the system user stays
    assert "dsnode-edge" not in box.sh("dpkg-query -W -f '${Package} ${Status}\\n' || true").stdout


FIXTURE_STORE = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "schema1"  # a released store


def test_an_upgrade_migrates_a_released_store_and_an_older_program_refuses_a_newer_one(deb, tmp_path):
    from appliance.storage import Store, latest_version

    if os.geteuid() != 0:
        pytest.skip("installing into a chroot needs root")
    box = Chroot(clean_root(), tmp_path)
    box.sh(f"DSNODE_NO_INIT=1 dpkg -i {box.put(deb)}")
    assert box.sh("ls -A /var/lib/dsnode").stdout == ""  # the operator makes (here: restores) the store
    for name in ("node.header", "node.sqlite"):
        box.put(FIXTURE_STORE / name)
    box.sh("install -o dsnode -g dsnode -m 0600 /tmp/node.header /tmp/node.sqlite /var/lib/dsnode/ && "
           "printf 'fixture passphrase v1\\n' > /etc/dsnode/store.key")

    box.sh(f"dpkg -i {box.put(newer_package(deb, tmp_path))}")
    status = box.sh(f"{AS_DSNODE} dsnode status --json").stdout
    assert f'"schema_version": {latest_version()}' in status  # the new program ran the migrations

    # a store written by a newer dsnode than the one installed: refused, untouched
    home = box.root / "var" / "lib" / "dsnode"
    with Store.open(home, b"fixture passphrase v1") as store:
        store.db.write(lambda conn: conn.execute(f"PRAGMA user_version = {latest_version() + 1}"))
    box.sh("chown -R dsnode:dsnode /var/lib/dsnode")
    before = (home / "node.sqlite").read_bytes()
    refused = box.sh(f"{AS_DSNODE} dsnode identity show", ok=False)
    assert refused.returncode == 24, refused.stderr
    assert f"written by a newer dsnode (schema {latest_version() + 1}" in refused.stderr
    assert (home / "node.sqlite").read_bytes() == before


def test_the_desktop_package_installs_with_its_menu_entry_passes_its_selftest_with_qt_and_purges(desktop_deb,
                                                                                                   tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installing into a chroot needs root")
    box = Chroot(desktop_root(desktop_deb), tmp_path)
    before = box.files()
    box.sh(f"dpkg -i {box.put(desktop_deb)}")
    selftest = box.sh("dsnode --lang en selftest").stdout  # no display: the Qt check runs offscreen
    assert "desktop (Qt offscreen, QR pictures)" in selftest, selftest
    assert selftest.strip().endswith("All 6 checks passed."), selftest
    assert box.sh("dsnode-desktop --help >/dev/null 2>&1 || true; readlink -f /usr/bin/dsnode-desktop").stdout.strip() \
        == "/usr/lib/dsnode-desktop/dsnode-desktop"
    entry = box.sh("cat /usr/share/applications/dsnode.desktop").stdout
    assert "Exec=dsnode-desktop %f" in entry and "Icon=dsnode" in entry and "Name[zh_CN]=" in entry
    assert box.sh("desktop-file-validate /usr/share/applications/dsnode.desktop").stdout == ""
    assert box.sh("test -s /usr/share/icons/hicolor/256x256/apps/dsnode.png && echo icon").stdout.strip() == "icon"
    check_invitation_files_open_the_app(box, tmp_path)
    box.sh("dpkg --purge dsnode-desktop")
    left = sorted(p for p in box.files() - before if not p.startswith(KEPT) and p not in ("/tmp", "/root"))
    assert left == [], f"left behind after the purge: {left}"


INVITATION = "application/x-dsnode-invitation"


def check_invitation_files_open_the_app(box: Chroot, tmp_path: Path) -> None:
    """The package's MIME type is in the system's database (rebuilt by shared-mime-info's dpkg trigger,
    no maintainer script of ours) and its handler is the app: a ``*.dsinvite`` file, or one that
    starts with the code's prefix, is an invitation, and opening one runs ``dsnode-desktop FILE``."""
    assert box.sh(f"test -s /usr/share/mime/{INVITATION}.xml && echo registered").stdout.strip() == "registered"
    assert f"{INVITATION}=dsnode.desktop" in box.sh("cat /usr/share/applications/mimeinfo.cache").stdout
    code = "DSI1-eNqrVkrLz1eyUkpKLFKqBQAdegQ0\n"  # what `dsnode operator invite --out` writes (its start)
    for name in ("invite.dsinvite", "invite-without-a-suffix"):  # "invite.txt" stays text/plain: globs come first
        (tmp_path / name).write_text(code)
        path = box.put(tmp_path / name)
        kind = box.sh(f"gio info -a standard::content-type {path}").stdout
        assert f"standard::content-type: {INVITATION}" in kind, (name, kind)
    handlers = box.sh(f"gio mime {INVITATION}").stdout
    assert "dsnode.desktop" in handlers, handlers


def test_an_operator_host_gets_mosquitto_configured_and_its_broker_runs_the_space(deb, tmp_path):
    """The Recommends installed (mosquitto), `operator broker-config --install` as the docs say, and
    Debian's own mosquitto started from its main file: it reads our snippet, drops to its user, loads
    the accounts from the folder that user owns, and the operator's daemon logs in."""
    from tests.brokers import free_port

    if os.geteuid() != 0:
        pytest.skip("installing into a chroot needs root")
    assert "mosquitto" in subprocess.run(["dpkg-deb", "-f", str(deb), "Recommends"], capture_output=True, text=True,
                                         check=True).stdout
    box = Chroot(root_with("mosquitto", "mosquitto"), tmp_path)  # the chroot shares this host's network
    port = free_port()
    box.sh(f"DSNODE_NO_INIT=1 dpkg -i {box.put(deb)}")
    box.sh(f"{AS_DSNODE} dsnode operator init --space host-space --name 主机空间 --broker-host 127.0.0.1 "
           f"--broker-port {port}")
    done = box.sh("dsnode --lang en --home /var/lib/dsnode --key-file /etc/dsnode/store.key "
                  f"operator broker-config --install --port {port}").stdout  # as root, as docs/install.md says
    assert "/etc/mosquitto/conf.d/dsnode.conf" in done
    modes = box.sh("stat -c '%a %U %n' /etc/mosquitto/conf.d/dsnode.conf /etc/mosquitto/dsnode "
                   "/etc/mosquitto/dsnode/dynamic-security.json").stdout
    assert "644 root /etc/mosquitto/conf.d/dsnode.conf" in modes and "700 mosquitto /etc/mosquitto/dsnode\n" in modes
    assert "600 mosquitto /etc/mosquitto/dsnode/dynamic-security.json" in modes
    assert box.sh("find /var/lib/dsnode ! -user dsnode").stdout == "", "root left files the daemon cannot open"

    logged = box.sh(f"""install -d -o mosquitto -g mosquitto /run/mosquitto
        mosquitto -c /etc/mosquitto/mosquitto.conf -d
        {AS_DSNODE} dsnode run 2>/tmp/run.log & pid=$!
        for i in $(seq 150); do grep -q "u'did:key:" /var/log/mosquitto/mosquitto.log && break; sleep 0.2; done
        kill -TERM $pid; wait $pid || true
        broker=$(cat /run/mosquitto/mosquitto.pid); kill -TERM "$broker"
        while kill -0 "$broker" 2>/dev/null; do sleep 0.1; done
        cat /var/log/mosquitto/mosquitto.log""").stdout
    assert f"Opening ipv4 listen socket on port {port}" in logged, logged
    assert "u'did:key:" in logged, logged + box.sh("cat /tmp/run.log").stdout
