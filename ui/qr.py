"""Invitation QR images: the text in the first QR code of a picture (a PNG from
`dsnode operator invite --qr`, a screenshot, a photo of a printed code).

Qt reads the picture (every format it knows); zxing-cpp finds and decodes the code. zxing-cpp comes
with the desktop package; it is imported only here and only when a picture is read, so the rest of
the app works without it and a missing one is said plainly.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from appliance.errors import InvitationInvalid, LocalText

MAX_SIDE = 4000  # a larger photo is scaled down first: the code stays readable and decoding stays quick


def read_qr_text(path: Path | str) -> str:
    """The text of the first QR code in the image at ``path``; InvitationInvalid when there is none."""
    image = QImage(str(path))
    if image.isNull():
        raise InvitationInvalid(LocalText("ui.qr.reason.not_image", str(path)))
    return read_qr_image(image, str(path))


def read_qr_image(image: QImage, where: str) -> str:
    """The text of the first QR code in ``image`` (``where`` names it in the error when there is none)."""
    if max(image.width(), image.height()) > MAX_SIDE:
        image = image.scaled(MAX_SIDE, MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
    try:
        import zxingcpp
    except ImportError:
        raise InvitationInvalid(LocalText("ui.qr.reason.no_reader")) from None
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
    texts = [b.text for b in found if b.text]
    if not texts:
        raise InvitationInvalid(LocalText("ui.qr.reason.no_code", where))
    return texts[0]


def image_filter() -> str:
    """The open dialog's filter: pictures."""
    from appliance.i18n import t

    return f"{t('ui.qr.filter')} ({' '.join('*' + e for e in IMAGE_SUFFIXES)})"


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
