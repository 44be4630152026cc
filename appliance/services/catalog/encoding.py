"""Which text encoding a file uses, decided on a sample from its start.

Order: a byte-order mark (UTF-8-BOM, UTF-16) decides; then a sample that is valid UTF-8 is UTF-8;
then a sample that decodes as GB18030 into mostly Chinese characters is GB18030 (the superset of
GBK and GB2312, so a GBK file never fails to decode with it); otherwise ``charset-normalizer``
chooses. The GB family is tried before charset-normalizer because short GBK samples look like
other double-byte encodings (cp949, big5) to a general detector, and in the files of Chinese SMEs
GBK is by far the most likely one. The sample is cut at a line end so a character split by the
sample boundary cannot fail the check. The same detection serves CSV/TSV, JSON and JSON Lines
(a JSON file exported by Chinese software is often GBK, though JSON is meant to be UTF-8).

An encoding the user names (``--encoding``) is checked with :func:`codec_of`: an unknown name, or
a codec that is not a text encoding (``rot13``, ``zlib``), is a ResourceError, not a LookupError.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from appliance.errors import LocalText, ResourceError

SAMPLE_BYTES = 256 * 1024
GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "hz", "euc_cn", "ms936"}
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef\u2014-\u201d\u00b7]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@dataclass(frozen=True)
class Detected:
    encoding: str  # a Python codec name: utf-8, utf-8-sig, utf-16, gb18030, ...
    bom: int  # bytes of byte-order mark to skip before decoding chunks with `chunk_codec`
    confidence: float


def _cut_at_line(sample: bytes, complete: bool) -> bytes:
    if complete:
        return sample
    end = sample.rfind(b"\n")
    return sample[: end + 1] if end > 0 else sample


def _decodes(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _mostly_chinese(text: str) -> float:
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii:
        return 0.0
    return len(_CJK.findall(text)) / non_ascii


def detect(sample: bytes, *, complete: bool = False) -> Detected:
    """The encoding of a file starting with ``sample`` (``complete``: the sample is the whole file)."""
    if sample.startswith(codecs.BOM_UTF8):
        return Detected("utf-8-sig", len(codecs.BOM_UTF8), 1.0)
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Detected("utf-16", 0, 1.0)  # the utf-16 codec reads and drops the BOM itself
    data = _cut_at_line(sample, complete)
    if _decodes(data, "utf-8") is not None:
        return Detected("utf-8", 0, 1.0)
    text = _decodes(data, "gb18030")
    if text is not None and _mostly_chinese(text) >= 0.9:
        return Detected("gb18030", 0, round(_mostly_chinese(text), 3))
    return _ask_charset_normalizer(data)


def _ask_charset_normalizer(data: bytes) -> Detected:
    from charset_normalizer import from_bytes  # imported on first use: it is only the fallback

    best = from_bytes(data).best()
    if best is None:
        return Detected("utf-8", 0, 0.0)  # undecidable: read as UTF-8 and report the bad lines
    name = codecs.lookup(best.encoding).name
    if name in GB_FAMILY or best.encoding in GB_FAMILY:
        name = "gb18030"
    return Detected(name, 0, round(1.0 - float(best.chaos), 3))


def codec_of(name: str) -> str:
    """``name`` if it is a text encoding Python knows; ResourceError naming it otherwise."""
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ResourceError(LocalText("resource.reason.unknown_encoding", str(name)[:40]))
    return name


def byte_oriented(encoding: str) -> bool:
    """True for encodings in which the bytes of ``\\n``, ``\\r``, ``,``, ``\\t`` and ``"`` never occur
    inside another character: the file can be split into lines and fields before decoding."""
    return codecs.lookup(encoding).name not in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                                                "utf-32-be")


def chunk_codec(encoding: str) -> str:
    """The codec for decoding pieces of the file after the first ``bom`` bytes were skipped."""
    return "utf-8" if encoding == "utf-8-sig" else encoding
