"""Regenerate docs/state-machines/transfer.dot (and .png, where Graphviz is installed) from the table:
``python -m appliance.domain.transfer_diagram``."""

import shutil
import subprocess
from pathlib import Path

from appliance.domain.transfer import dot

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[2] / "docs" / "state-machines" / "transfer.dot"
    path.write_text(dot())
    print(f"wrote {path}")
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tpng", "-o", str(path.with_suffix(".png")), str(path)], check=True)
        print(f"wrote {path.with_suffix('.png')}")
