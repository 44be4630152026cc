"""Sensitive fields: validators with real check digits, header keywords, and per-column detection.

Detection looks at a column's header and at a bounded sample of its values. Content kinds are
confirmed by validators (GB 11643 identity numbers with their check digit, GB 32100 unified social
credit codes with their check character, Luhn for bank cards, mobile numbers, e-mail, licence
plates incl. 8-character new-energy plates, IPv4/IPv6). Person names and addresses are found by
header and their values only checked for plausibility. A report carries kinds, confidence and
counts: never a value.

confidence = values that validate / non-empty values sampled.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

# --- GB 11643-1999: citizen identity numbers ------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
_ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11
_PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
              50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91}
_ID18 = re.compile(r"\d{17}[\dXx]")
_ID15 = re.compile(r"\d{15}")


def cn_id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of an identity number."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _valid_birth(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1800 <= born.year <= 2100


def is_cn_id(value: str) -> bool:
    """An 18-character identity number (region, birth date, check digit) or a legacy 15-digit one."""
    if len(value) == 18 and _ID18.fullmatch(value):
        return (int(value[:2]) in _PROVINCES and _valid_birth(value[6:14])
                and cn_id_check_char(value[:17]) == value[17].upper())
    if len(value) == 15 and _ID15.fullmatch(value):  # before 1999: 19YYMMDD, no check digit
        return int(value[:2]) in _PROVINCES and _valid_birth("19" + value[6:12])
    return False


# --- GB 32100-2015: unified social credit codes ---------------------------------------------------

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def is_uscc(value: str) -> bool:
    value = value.upper()
    return len(value) == 18 and bool(_USCC.fullmatch(value)) and uscc_check_char(value[:17]) == value[17]


# --- bank cards (Luhn), mobile numbers, e-mail, plates, IP addresses ------------------------------

_CARD = re.compile(r"\d{15,19}")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_bank_card(value: str) -> bool:
    value = value.replace(" ", "").replace("-", "")
    return bool(_CARD.fullmatch(value)) and value[0] in "3456" and luhn_ok(value)


_MOBILE = re.compile(r"(?:\+?86)?1[3-9]\d{9}")
_PHONE = re.compile(r"(?:\+?86)?(?:1[3-9]\d{9}|0\d{2,3}\d{7,8}(?:\d{1,6})?|\d{7,8})")


def _digits_only(value: str) -> str:
    return value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")


def is_mobile(value: str) -> bool:
    return bool(_MOBILE.fullmatch(_digits_only(value)))


def is_phone(value: str) -> bool:
    return bool(_PHONE.fullmatch(_digits_only(value)))


_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}")


def is_email(value: str) -> bool:
    return len(value) <= 254 and bool(_EMAIL.fullmatch(value))


_PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_CHAR = "[A-HJ-NP-Z0-9]"
_PLATE = re.compile(
    rf"[{_PROVINCE_CHARS}][A-HJ-NP-Z]"
    rf"(?:{_PLATE_CHAR}{{4}}[A-HJ-NP-Z0-9挂学警港澳]"  # ordinary 7-character plates
    rf"|[DF]{_PLATE_CHAR}\d{{4}}"  # new-energy small vehicles: 8 characters, D/F third
    rf"|\d{{5}}[DF])"  # new-energy large vehicles: 8 characters, D/F last
)


def is_license_plate(value: str) -> bool:
    return bool(_PLATE.fullmatch(value.replace(" ", "").replace("·", "").replace("-", "").upper()))


def is_ip_address(value: str) -> bool:
    if not (2 <= len(value) <= 45) or not (":" in value or value.count(".") == 3):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_NAME = re.compile(r"[\u4e00-\u9fff·]{2,6}|[A-Za-z][A-Za-z .'\-]{1,48}")
_ADDRESS = re.compile(r".*(?:[省市区县镇乡村路街道巷弄号楼室栋]|\d+\s+\w+).*", re.S)


def plausible_name(value: str) -> bool:
    return bool(_NAME.fullmatch(value))


def plausible_address(value: str) -> bool:
    return len(value) >= 4 and bool(_ADDRESS.fullmatch(value))


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "cn_id": is_cn_id,
    "uscc": is_uscc,
    "bank_card": is_bank_card,
    "mobile": is_mobile,
    "email": is_email,
    "license_plate": is_license_plate,
    "ip_address": is_ip_address,
}
HEADER_ONLY: dict[str, Callable[[str], bool]] = {
    "person_name": plausible_name,
    "address": plausible_address,
    "phone": is_phone,
}
# The order breaks ties: an 18-digit number valid as both is taken for an identity number.
_TIE_ORDER = ("cn_id", "uscc", "bank_card", "mobile", "email", "license_plate", "ip_address")

# Values found inside free text (a remark column holding phone numbers).
_EMBEDDED = {
    "mobile": (re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"), is_mobile),
    "cn_id": (re.compile(r"(?<![\dXx])\d{17}[\dXx](?![\dXx])"), is_cn_id),
    # a match starts only where a run of address characters starts: a long run without "@"
    # is passed over once, not tried from each of its characters (quadratic)
    "email": (re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,24}"), is_email),
}

# --- header keywords ------------------------------------------------------------------------------

_HEADER_ZH = (
    ("cn_id", ("身份证", "证件号", "身份号码", "公民身份")),
    ("uscc", ("信用代码", "统一社会", "营业执照号")),
    ("bank_card", ("银行卡", "卡号", "银行账号", "银行帐号", "账户号", "开户账号")),
    ("mobile", ("手机", "移动电话")),
    ("phone", ("电话", "联系方式", "传真", "座机")),
    ("email", ("邮箱", "电子邮件", "邮件")),
    ("license_plate", ("车牌", "号牌")),
    ("ip_address", ("ip地址",)),
    ("address", ("地址", "住址", "住所", "居住地", "收货地")),
    ("person_name", ("姓名", "联系人", "收件人", "收货人", "法定代表人", "法人代表", "负责人", "患者", "客户名",
                     "员工名")),
)
_HEADER_EN = {
    "cn_id": {"idcard", "idno", "idnumber", "idcardno", "identityno", "identitynumber", "citizenid", "nationalid",
              "sfz", "sfzh"},
    "uscc": {"uscc", "creditcode", "socialcreditcode", "unifiedsocialcreditcode", "tyshxydm"},
    "bank_card": {"bankcard", "cardno", "cardnumber", "bankaccount", "accountno", "accountnumber", "iban"},
    "mobile": {"mobile", "mobileno", "mobilephone", "cellphone", "cell", "sjh", "shouji"},
    "phone": {"phone", "phoneno", "phonenumber", "tel", "telephone", "fax", "contactphone"},
    "email": {"email", "mail", "emailaddress", "mailaddress"},
    "license_plate": {"plate", "plateno", "platenumber", "licenseplate", "carplate", "vehicleplate", "cph"},
    "ip_address": {"ip", "ipaddr", "ipaddress", "clientip", "srcip", "dstip", "remoteip", "sourceip"},
    "address": {"address", "addr", "street", "homeaddress", "shippingaddress", "deliveryaddress", "dz"},
    "person_name": {"name", "fullname", "firstname", "lastname", "surname", "givenname", "familyname",
                    "customername", "contactname", "contact", "personname", "patientname", "employeename",
                    "realname", "xm"},
}
_SPLIT = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")


def header_kind(name: str) -> str | None:
    """The sensitive kind a column header names, or None."""
    lowered = name.strip().lower()
    for kind, words in _HEADER_ZH:
        if any(w in lowered for w in words):
            return kind
    squashed = _SPLIT.sub("", lowered)
    for kind, names in _HEADER_EN.items():
        if squashed in names:
            return kind
    tokens = set(_SPLIT.split(re.sub(r"([a-z])([A-Z])", r"\1 \2", name.strip()).lower()))
    for kind in ("ip_address", "email", "mobile", "phone"):
        if tokens & _HEADER_EN[kind]:
            return kind
    return None


# --- detection ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    column: str
    kind: str
    confidence: float  # values that validate / non-empty values sampled
    sampled: int  # non-empty values looked at
    matched: int
    by: str  # "content", "header" or "header+content"
    embedded: bool = False  # found inside free text rather than as the whole value

    def to_json(self) -> dict:
        return {"column": self.column, "kind": self.kind, "confidence": self.confidence, "sampled": self.sampled,
                "matched": self.matched, "by": self.by, "embedded": self.embedded}


CONTENT_THRESHOLD = 0.5  # without a header hint, most sampled values must validate
EMBEDDED_THRESHOLD = 0.1


def _count(values: Sequence[str], check: Callable[[str], bool]) -> int:
    return sum(1 for v in values if check(v))


def detect_column(name: str, values: Sequence[str]) -> Finding | None:
    """The sensitive kind of one column from its header and sampled values, or None."""
    sample = [v.strip() for v in values if v is not None and str(v).strip()]
    hint = header_kind(name)
    n = len(sample)
    if n == 0:
        return Finding(name, hint, 0.0, 0, 0, "header") if hint else None
    scores = {kind: _count(sample, check) for kind, check in VALIDATORS.items()}
    best = max(_TIE_ORDER, key=lambda k: (scores[k], -_TIE_ORDER.index(k)))
    if hint in ("phone",) and scores["mobile"] >= max(1, scores[best]):
        best = "mobile"
    if scores[best] and (scores[best] / n >= CONTENT_THRESHOLD or best == hint):
        by = "header+content" if hint == best or (hint == "phone" and best == "mobile") else "content"
        return Finding(name, best, round(scores[best] / n, 3), n, scores[best], by)
    if hint:
        check = HEADER_ONLY.get(hint) or VALIDATORS[hint]
        matched = _count(sample, check)
        return Finding(name, hint, round(matched / n, 3), n, matched, "header")
    return _embedded(name, sample)


def _embedded(name: str, sample: list[str]) -> Finding | None:
    for kind, (pattern, check) in _EMBEDDED.items():
        matched = sum(1 for v in sample if any(check(m) for m in pattern.findall(v)))
        if matched / len(sample) >= EMBEDDED_THRESHOLD:
            return Finding(name, kind, round(matched / len(sample), 3), len(sample), matched, "content", True)
    return None


def cell_kind(value: str) -> str | None:
    """The sensitive kind one value is, or holds inside free text, if any (checked in tie order)."""
    for kind in _TIE_ORDER:
        if VALIDATORS[kind](value):
            return kind
    for kind, (pattern, check) in _EMBEDDED.items():
        if any(check(m) for m in pattern.findall(value)):
            return kind
    return None


def detect(columns: Sequence[str], samples: Sequence[Sequence[str]]) -> list[Finding]:
    """Findings for every column that looks sensitive (``samples[j]`` are column j's sampled values)."""
    found = []
    for name, values in zip(columns, samples, strict=True):
        finding = detect_column(name, values)
        if finding is not None:
            found.append(finding)
    return found
