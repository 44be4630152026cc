#!/bin/sh
# Build the installers into dist/ (one command, from anywhere in the checkout):
#   dist/dsnode/                  the headless `dsnode`, one-dir bundle (PyInstaller)
#   dist/dsnode-edge              the same, one file
#   dist/dsnode-edge_<v>_<arch>.deb   the Debian package of the one-dir bundle
#   dist/dsnode-desktop/          the desktop app (PySide6) and, started as `dsnode`, the CLI
#   dist/dsnode-desktop-onefile   the same, one file
#   dist/dsnode-desktop_<v>_<arch>.deb   the Debian package of the desktop one-dir bundle
# Usage: packaging/build.sh [edge|deb|desktop|desktop-deb|all]  (default: all, the desktop when
# PySide6 is installed; "deb" and "desktop-deb" pack an existing bundle)
# Needs the virtual environment with the "build" extra (bash packaging/quickstart.sh setup, then
# .venv/bin/pip install -e '.[build]'), and dpkg-deb for the package (Debian, Ubuntu, UOS, Kylin).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DIST=$ROOT/dist
WORK=$ROOT/build
WHAT=${1:-all}

version() {
    "$PYTHON" -c 'import appliance; print(appliance.__version__)'
}

build_edge() {
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK/pyinstaller" \
        packaging/pyinstaller/dsnode-edge.spec
    "$DIST/dsnode/dsnode" --version
}

libc_needed() {
    # the newest GLIBC_x.y symbol version the bundle's programs and libraries use (the C library is
    # the one thing the bundle takes from the system); without objdump, the builder's own version
    if command -v objdump >/dev/null; then
        find "$1" -type f \( -name '*.so*' -o -perm -u+x \) -exec objdump -T {} + 2>/dev/null \
            | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n 1
    else
        dpkg-query -W -f '${Version}' libc6 | sed 's/-.*//'
    fi
}

build_desktop() {
    "$PYTHON" -m PyInstaller --noconfirm --log-level ERROR --distpath "$DIST" --workpath "$WORK/pyinstaller" \
        packaging/pyinstaller/dsnode-desktop.spec
    ln -sfn dsnode-desktop "$DIST/dsnode-desktop/dsnode"  # started as `dsnode`: the command line
    "$DIST/dsnode-desktop/dsnode" --version
}

has_qt() {
    "$PYTHON" -c 'import PySide6' 2>/dev/null
}

# pack <package> <stage> <bundle>: control (from packaging/debian/<package>/control.in), md5sums,
# then dist/<package>_<version>_<arch>.deb
pack() {
    package=$1 stage=$2 bundle=$3
    version=$(version)
    arch=$(dpkg --print-architecture)
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@LIBC@/$(libc_needed "$bundle")/" \
        "packaging/debian/$package/control.in" > "$stage/DEBIAN/control"
    find "$stage" -path "$stage/DEBIAN" -prune -o -type f -print | sort | sed "s|^$stage/||" \
        | grep -v '^etc/' | xargs -d '\n' sh -c 'cd "$0" && md5sum "$@"' "$stage" > "$stage/DEBIAN/md5sums"
    mkdir -p "$DIST"
    deb=$DIST/${package}_${version}_${arch}.deb
    # DEB_LEVEL: xz's level (6, the default, is slow on the desktop's 160 MB; the tests use 1)
    dpkg-deb --root-owner-group -Zxz -z"${DEB_LEVEL:-6}" --threads-max="$(nproc)" --build "$stage" "$deb.partial" \
        >/dev/null
    mv -f "$deb.partial" "$deb"  # whole or not at all, for whoever copies it meanwhile
    echo "$deb"
}

build_deb() {
    bundle=$DIST/dsnode
    [ -x "$bundle/dsnode" ] || { echo "build.sh: no $bundle/dsnode: build the bundle first" >&2; exit 1; }
    stage=$WORK/deb/dsnode-edge
    src=packaging/debian/dsnode-edge
    rm -rf "$stage"
    install -d "$stage/DEBIAN" "$stage/usr/lib" "$stage/usr/bin" "$stage/lib/systemd/system" \
        "$stage/etc/dsnode" "$stage/usr/share/doc/dsnode-edge"
    cp -a "$bundle" "$stage/usr/lib/dsnode"
    ln -s ../lib/dsnode/dsnode "$stage/usr/bin/dsnode"
    install -m 0644 packaging/systemd/dsnode.service "$stage/lib/systemd/system/dsnode.service"
    install -m 0644 packaging/dsnode.toml "$stage/etc/dsnode/dsnode.toml"
    for doc in docs/install.md docs/operations.md docs/running-node.md; do
        [ -f "$doc" ] && install -m 0644 "$doc" "$stage/usr/share/doc/dsnode-edge/"
    done
    install -m 0644 "$src/copyright" "$stage/usr/share/doc/dsnode-edge/copyright"
    install -m 0644 "$src/conffiles" "$stage/DEBIAN/conffiles"
    for script in postinst prerm postrm; do
        install -m 0755 "$src/$script" "$stage/DEBIAN/$script"
    done
    pack dsnode-edge "$stage" "$bundle"
}

build_desktop_deb() {
    bundle=$DIST/dsnode-desktop
    [ -x "$bundle/dsnode-desktop" ] || { echo "build.sh: no $bundle/dsnode-desktop: build it first" >&2; exit 1; }
    stage=$WORK/deb/dsnode-desktop
    src=packaging/debian/dsnode-desktop
    rm -rf "$stage"
    install -d "$stage/DEBIAN" "$stage/usr/lib" "$stage/usr/bin" "$stage/usr/share/applications" \
        "$stage/usr/share/icons/hicolor" "$stage/usr/share/doc/dsnode-desktop"
    cp -a "$bundle" "$stage/usr/lib/dsnode-desktop"
    ln -s ../lib/dsnode-desktop/dsnode-desktop "$stage/usr/bin/dsnode-desktop"
    ln -s ../lib/dsnode-desktop/dsnode "$stage/usr/bin/dsnode"
    install -m 0644 "$src/dsnode.desktop" "$stage/usr/share/applications/dsnode.desktop"
    install -D -m 0644 "$src/dsnode-invitation.xml" "$stage/usr/share/mime/packages/dsnode.xml"
    PYTHONPATH=$ROOT "$PYTHON" "$src/render_icon.py" "$stage/usr/share/icons/hicolor"
    for doc in docs/install.md; do
        [ -f "$doc" ] && install -m 0644 "$doc" "$stage/usr/share/doc/dsnode-desktop/"
    done
    install -m 0644 "$src/copyright" "$stage/usr/share/doc/dsnode-desktop/copyright"
    pack dsnode-desktop "$stage" "$bundle"
}

case "$WHAT" in
edge) build_edge ;;
deb) build_deb ;;
desktop) build_desktop; build_desktop_deb ;;
desktop-deb) build_desktop_deb ;;
all)
    build_edge
    build_deb
    if has_qt; then
        build_desktop
        build_desktop_deb
    else
        echo "build.sh: PySide6 is not installed: no desktop build" >&2
    fi
    ;;
*) echo "usage: packaging/build.sh [edge|deb|desktop|desktop-deb|all]" >&2; exit 2 ;;
esac
