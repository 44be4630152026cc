"""Regenerate docs/state-machines/negotiation.dot from the table: ``python -m appliance.domain.negotiation_diagram``."""

from pathlib import Path

from appliance.domain.negotiation import dot

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[2] / "docs" / "state-machines" / "negotiation.dot"
    path.write_text(dot())
    print(f"wrote {path}")
