"""Words for people: validation problems, evaluation failures and offer summaries, in zh_CN and en.

Pure data (the domain layer reads no files), so the contracts and usage-control features can give
the same reasons in both languages wherever a policy is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LANGS = ("zh_CN", "en")


def pick(lang: str | None) -> str:
    return "en" if (lang or "").startswith("en") else "zh_CN"


# code -> (zh_CN, en); fields in braces come from the problem's or failure's args
PROBLEMS: dict[str, tuple[str, str]] = {
    "not_an_object": ("{where} 不是 JSON 对象", "{where} is not a JSON object"),
    "missing": ("{where} 缺少 {name}", "{where} has no {name}"),
    "too_many": ("{where} 有 {n} 项，最多 {max} 项", "{where} has {n} items; at most {max} are allowed"),
    "unknown_type": ("未知的策略类型“{name}”（可用：Offer、Agreement、Set）",
                     "unknown policy type \"{name}\" (use Offer, Agreement or Set)"),
    "empty": ("策略中既没有许可也没有禁止", "the policy has neither a permission nor a prohibition"),
    "unknown_action": ("{where}：未知的动作“{name}”", "{where}: unknown action \"{name}\""),
    "duty_action_in_rule": ("{where}：“{name}”是义务（duty），不能作为许可或禁止的动作",
                            "{where}: \"{name}\" is a duty, not something to permit or prohibit"),
    "unknown_duty_action": ("{where}：未知的义务动作“{name}”（可用：delete、inform、compensate）",
                            "{where}: unknown duty \"{name}\" (use delete, inform or compensate)"),
    "unknown_left_operand": ("{where}：未知的约束条件“{name}”", "{where}: unknown constraint \"{name}\""),
    "unknown_operator": ("{where}：未知的运算符“{name}”", "{where}: unknown operator \"{name}\""),
    "operator_not_allowed": ("{where}：约束条件 {left} 不能使用运算符“{name}”",
                             "{where}: constraint {left} cannot use operator \"{name}\""),
    "left_operand_not_here": ("{where}：约束条件 {name} 不能用在这里",
                              "{where}: constraint {name} does not belong here"),
    "logical_constraint": ("{where}：不支持组合约束（and/or/xone），请拆成多个约束",
                           "{where}: combined constraints (and/or/xone) are not supported; "
                           "list the constraints one by one"),
    "refinement": ("{where}：不支持带细化条件的动作", "{where}: actions with refinements are not supported"),
    "bad_value": ("{where}：{left} 的取值有误：{detail}", "{where}: the value of {left} is wrong: {detail}"),
    "period_empty": ("{where}：有效期开始（{start}）不早于结束（{end}），任何时间都无法使用",
                     "{where}: the validity period starts ({start}) no earlier than it ends ({end}), "
                     "so it can never be used"),
    "count_not_positive": ("{where}：使用次数上限为 {n}，一次也用不了",
                           "{where}: the use count limit is {n}, so it can never be used"),
    "duration_not_positive": ("{where}：期限为 {value}，必须大于零",
                              "{where}: the time limit is {value}; it must be more than zero"),
    "range_empty": ("{where}：{left} 的条件互相矛盾（{detail}）",
                    "{where}: the conditions on {left} contradict each other ({detail})"),
    "values_conflict": ("{where}：{left} 的条件互相矛盾，没有任何取值能满足",
                        "{where}: the conditions on {left} contradict each other; no value satisfies them all"),
    "permit_and_prohibit": ("同一动作“{name}”既被许可（{permission}）又被禁止（{prohibition}）",
                            "action \"{name}\" is both permitted ({permission}) and prohibited ({prohibition})"),
    "aggregate_with_raw": ("“仅聚合计算”不能与交付原始数据的许可（{name}，{where}）同时出现",
                           "aggregate-only computation cannot be combined with a permission that hands over "
                           "raw data ({name}, {where})"),
    "payment_missing": ("{where}：支付义务需要一个金额（payAmount eq …）",
                        "{where}: a payment duty needs an amount (payAmount eq …)"),
    "payment_not_positive": ("{where}：支付金额 {value} 必须大于零",
                             "{where}: the amount to pay, {value}, must be more than zero"),
    "delete_before_use_ends": ("删除期限（{delete}）早于允许使用的期限（{use}）结束", 
                               "the data must be deleted ({delete}) before the time allowed to use it ({use}) is over"),
    "template_unknown_param": ("没有参数“{name}”（可用：{known}）",
                               "there is no parameter \"{name}\" (known: {known})"),
    "template_missing_param": ("缺少参数“{name}”", "parameter \"{name}\" is required"),
    "template_bad_value": ("参数 {name} 的值“{value}”有误：{detail}",
                           "parameter {name} = \"{value}\" is wrong: {detail}"),
}

# a zh failure says its condition in words only; the raw constraint stays in the English text and
# in Failure.constraint (the timeline's JSON)
FAILURES: dict[str, tuple[str, str]] = {
    "unknown_action": ("未知的动作“{action}”", "unknown action \"{action}\""),
    "not_permitted": ("本策略没有许可：{action}（{name}）", "this policy does not permit you to {action} ({name})"),
    "prohibited": ("本策略禁止：{action}（{name}，{where}）", "this policy forbids you to {action} ({name}, {where})"),
    "not_yet_valid": ("尚未到有效期：要求{condition}",
                      "not valid yet ({constraint}): it may be used {condition}"),
    "expired": ("已过有效期：要求{condition}", "expired ({constraint}): it could be used {condition}"),
    "count_used_up": ("使用次数已用完：上限 {limit} 次，已用 {used} 次",
                      "all uses are used up ({constraint}): the limit is {limit}, {used} used"),
    "no_start": ("不知道协议何时生效，无法检查期限：要求{condition}",
                 "the agreement's start is unknown, so the time limit ({constraint}) cannot be checked"),
    "elapsed": ("已超过期限：要求{condition}",
                "the time is over ({constraint}): it could be used {condition}"),
    "not_stated": ("未说明{what}，而本策略要求：{condition}",
                   "no {what} was given, but this policy allows use {condition} ({constraint})"),
    "mismatch": ("{what}“{value}”不符合要求：{condition}",
                 "{what} \"{value}\" does not meet the condition: {condition} ({constraint})"),
    "unknown_constraint": ("无法检查约束（{constraint}）", "cannot check the constraint ({constraint})"),
}

SUBJECTS = {  # what a context value is called in a failure
    "purpose": ("使用目的", "purpose"),
    "recipient": ("接收方", "recipient"),
    "spatial": ("使用地区", "region"),
    "urn:dsnode:odrl:recipientOrg": ("接收方单位", "recipient organisation"),
    "urn:dsnode:odrl:recipientGrade": ("接收方等级", "recipient grade"),
}


@dataclass(frozen=True)
class Message:
    """A reason with a code, where it applies, and its words in both languages."""

    code: str
    where: str = ""
    args: dict = field(default_factory=dict)

    TABLE = PROBLEMS

    def message(self, lang: str | None = None) -> str:
        """The text in ``lang``; an arg ``x_zh``/``x_en`` pair fills ``{x}`` in the matching language."""
        zh, en = self.TABLE[self.code]
        lang = pick(lang)
        suffix = "_en" if lang == "en" else "_zh"
        args = {k: v for k, v in self.args.items() if not k.endswith(("_zh", "_en"))}
        args.update({k[:-3]: v for k, v in self.args.items() if k.endswith(suffix)})
        args.setdefault("where", self.where)
        return (en if lang == "en" else zh).format(**args)

    @property
    def zh(self) -> str:
        return self.message("zh_CN")

    @property
    def en(self) -> str:
        return self.message("en")

    def to_json(self) -> dict:
        return {"code": self.code, "where": self.where, "zh_CN": self.zh, "en": self.en}


class Problem(Message):
    """Why a policy is not valid (from :func:`validate` or parsing)."""

    TABLE = PROBLEMS


class Failure(Message):
    """Why a policy does not allow an action in a context (from :func:`evaluate`)."""

    TABLE = FAILURES

    @property
    def constraint(self) -> str:
        """The constraint as written (``count lteq 10``), empty when the failure is about the action."""
        return self.args.get("constraint", "")
