"""Plain-language summaries of a policy, generated from its rules (never written by hand).

``summarize(policy, "zh_CN")`` -> "您可以在协议生效后 7 天内使用数据，最多 10 次。不得向他人分发数据……"
``summarize(policy, "en")``    -> "You may use the data at most 10 times, within 7 days after … ."
Dates are shown in ``tz`` (UTC unless given) with the offset written out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

from appliance.domain.odrl.model import Constraint, Duty, Policy, typed
from appliance.domain.odrl.text import pick
from appliance.domain.odrl.vocab import (AGGREGATE_ONLY, CURRENCIES, PURPOSES, RECIPIENT_GRADE, RECIPIENT_ORG, REGIONS,
                                         short)

ACTIONS = {
    "use": ("使用数据", "use the data"),
    "read": ("读取（查看、下载）数据", "read (view and download) the data"),
    "reproduce": ("复制数据", "make copies of the data"),
    "distribute": ("向他人分发数据", "pass the data on to others"),
    "commercialize": ("将数据用于商业目的", "use the data commercially"),
    "derive": ("基于数据加工形成新数据", "create new data derived from it"),
    "aggregate": ("将数据汇编进其他数据集合", "put the data into a collection with other data"),
    AGGREGATE_ONLY: ("在提供方本地对数据进行计算并只获得汇总结果（不交付原始数据）",
                     "run computations on the data at the provider and receive only aggregated results "
                     "(no raw records are delivered)"),
}
DUTIES = {"delete": ("删除数据", "delete the data"),
          "inform": ("每次使用后通知数据提供方", "notify the provider of each use")}

SENTENCES = {
    "may": ("您可以{pre}{action}{post}。", "You may {action}{post}."),
    "may_not": ("不得{pre}{action}{post}。", "You may not {action}{post}."),
    "must": ("您须{pre}{action}{post}。", "You must {action}{post}."),
    "in_return": ("作为条件，您须{duties}。", "In return, you must {duties}."),
    "pay_each": ("每次使用支付 {amount}", "pay {amount} for each use"),
    "pay": ("支付 {amount}", "pay {amount}"),
}


def summarize(policy: Policy, lang: str | None = "zh_CN", tz: tzinfo | None = None) -> str:
    """What the policy allows, forbids and requires, in sentences a non-lawyer reads."""
    z = 1 if pick(lang) == "en" else 0
    tz = tz or timezone.utc
    out: list[str] = []
    for rule in policy.permissions:
        out.append(_sentence("may", _label(ACTIONS, rule.action, z), rule.constraints, z, tz))
        duties = [_duty_phrase(d, z, tz, per_use=True) for d in rule.duties]
        if duties:
            out.append(SENTENCES["in_return"][z].format(duties=(" and " if z else "，并").join(duties)))
    plain = [r for r in policy.prohibitions if not r.constraints]
    if plain:
        if z:
            actions = _join([_label(ACTIONS, r.action, 1) for r in plain], 1, "or")
            out.append(SENTENCES["may_not"][1].format(action=actions, post=""))
        else:
            out.append("，".join("不得" + _label(ACTIONS, r.action, 0) for r in plain) + "。")
    for rule in policy.prohibitions:
        if rule.constraints:
            out.append(_sentence("may_not", _label(ACTIONS, rule.action, z), rule.constraints, z, tz))
    for duty in policy.obligations:
        if duty.action == "compensate":
            out.append(SENTENCES["must"][z].format(pre="", action=_duty_phrase(duty, z, tz, per_use=False), post=""))
        else:
            out.append(_sentence("must", _label(DUTIES, duty.action, z), duty.constraints, z, tz))
    return (" " if z else "").join(out)


def _sentence(kind: str, action: str, constraints, z: int, tz) -> str:
    pre: list[str] = []
    post: list[str] = []
    for c in constraints:
        if c.left == "payAmount":
            continue
        text, before = _condition(c, z, tz)
        (pre if before and not z else post).append(text)
    post_text = (" " + ", ".join(post)) if z and post else ("，" + "，".join(post) if post else "")
    return SENTENCES[kind][z].format(pre="".join(pre), action=action, post=post_text)


def _duty_phrase(duty: Duty, z: int, tz, *, per_use: bool) -> str:
    if duty.action == "compensate":
        amount = next((c for c in duty.constraints if c.left == "payAmount"), None)
        money = _money(amount, z) if amount else "?"
        return SENTENCES["pay_each" if per_use else "pay"][z].format(amount=money)
    text = _label(DUTIES, duty.action, z)
    conds = [_condition(c, z, tz)[0] for c in duty.constraints]
    if conds:
        text = (text + " " + ", ".join(conds)) if z else ("".join(conds) + text)
    return text


def _money(c: Constraint, z: int) -> str:
    code = CURRENCIES.get(c.unit or "", short(c.unit or "").rsplit("/", 1)[-1] or "")
    if code == "CNY" and not z:
        return f"{c.right} 元"
    return f"{c.right} {code}".strip()


def describe_condition(c: Constraint, lang: str | None, tz: tzinfo | None = None) -> str:
    """One constraint in words (\"最多 10 次\", \"at most 10 times\")."""
    return _condition(c, 1 if pick(lang) == "en" else 0, tz or timezone.utc)[0]


def _condition(c: Constraint, z: int, tz) -> tuple[str, bool]:
    """The phrase for one constraint, and whether Chinese puts it before the verb."""
    try:
        value = typed(c)
    except ValueError:
        return c.describe(), False
    op, left = c.operator, c.left
    if left == "dateTime":
        when = value.astimezone(tz).strftime("%Y-%m-%d %H:%M") + " " + _offset(tz)
        zh, en = {"gteq": ("自 {} 起", "from {}"), "gt": ("{} 之后", "after {}"),
                  "lteq": ("至 {} 止", "until {}"), "lt": ("在 {} 之前", "before {}")}[op]
        return (en if z else zh).format(when), True
    if left == "count":
        n = value if op == "lteq" else value - 1
        return (f"at most {n} time{'s' if n != 1 else ''}" if z else f"最多 {n} 次"), False
    if left == "elapsedTime":
        d = _duration(value, z)
        if op == "eq":
            return (f"once {d} have passed since the agreement took effect" if z else f"在协议生效满 {d}时"), True
        return (f"within {d} after the agreement takes effect" if z else f"在协议生效后 {d}内"), True
    if left == RECIPIENT_GRADE:
        zh, en = {"gteq": ("不低于 {}", "{} or higher"), "gt": ("高于 {}", "higher than {}"),
                  "lteq": ("不高于 {}", "{} or lower"), "lt": ("低于 {}", "lower than {}"), "eq": ("为 {}", "{}")}[op]
        return (f"only by members of grade {en.format(value)}" if z else f"仅限等级{zh.format(value)}的成员"), False
    values = value if isinstance(value, tuple) else (value,)
    positive = op in ("eq", "isAnyOf", "isPartOf")
    if left == "purpose":
        names = _join([_label(PURPOSES, v, z) for v in values], z, "or")
        return ((f"only for {names}" if positive else f"not for {names}") if z else
                (f"仅限用于{names}" if positive else f"不得用于{names}")), False
    if left == "spatial":
        names = _join([_label(REGIONS, v.upper(), z) for v in values], z, "or")
        return ((f"only in {names}" if positive else f"not in {names}") if z else
                (f"仅限在{names}境内" if positive else f"不得在{names}使用")), False
    if left == RECIPIENT_ORG:
        names = _join(list(values), z, "or")
        return ((f"only within {names}" if positive else f"not by {names}") if z else
                (f"仅限{names}内部使用" if positive else f"{names}除外")), False
    names = _join(list(values), z, "or")  # recipient
    return ((f"only by {names}" if positive else f"not by {names}") if z else
            (f"仅限 {names} 使用" if positive else f"{names} 除外")), False


def _label(table: dict, key: str, z: int) -> str:
    entry = table.get(key)
    return entry[z] if entry else key


def _join(items: list[str], z: int, word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    if z:
        return ", ".join(items[:-1]) + f" {word} " + items[-1]
    return "、".join(items[:-1]) + ("或" if word == "or" else "和") + items[-1]


def _duration(value: timedelta, z: int) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for size, zh, en in ((86400, "天", "day"), (3600, "小时", "hour"), (60, "分钟", "minute"), (1, "秒", "second")):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {en}{'s' if n != 1 else ''}" if z else f"{n} {zh}")
    return (" and " if z else " ").join(parts) or ("0 seconds" if z else "0 秒")


def _offset(tz) -> str:
    delta = datetime(2026, 1, 1, tzinfo=timezone.utc).astimezone(tz).utcoffset() or timedelta(0)
    if not delta:
        return "UTC"
    minutes = int(delta.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

