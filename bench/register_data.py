"""A realistic order table for the registration benchmark: ids, Chinese names, identity numbers,
mobile numbers, amounts, dates, addresses and Chinese free text, generated quickly and repeatably.

Identity numbers are made up: random region, birth date and sequence with a correct GB 11643 check
digit. They belong to no one.
"""

from __future__ import annotations

import random
from pathlib import Path

from appliance.services.catalog.sensitive import cn_id_check_char

HEADER = "order_id,customer,id_card,mobile,amount,qty,order_date,created_at,address,product,note\n"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"  # noqa: E501
CITIES = ("上海市浦东新区张江路", "广东省深圳市南山区科技园", "浙江省杭州市西湖区文三路",
          "江苏省苏州市工业园区星湖街", "北京市海淀区中关村大街", "四川省成都市高新区天府大道",
          "湖北省武汉市洪山区珞喻路", "山东省青岛市崂山区海尔路")
PRODUCTS = ("不锈钢法兰盘", "精密轴承套件", "数控刀具", "液压阀组", "注塑模具配件", "工业传感器",
            "伺服电机", "铝合金型材")
NOTES = ("", "", "", "加急发货", "客户要求开具增值税专用发票", "分两批交付", "质检合格后付款", "请提前电话联系")
REGIONS = ("310115", "440305", "330106", "320571", "110108", "510107", "420111", "370212")


def _id_numbers(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        body = (f"{rng.choice(REGIONS)}{rng.randrange(1950, 2005)}{rng.randrange(1, 13):02d}"
                f"{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}")
        out.append(body + cn_id_check_char(body))
    return out


def _row_pool(rng: random.Random, n: int) -> list[str]:
    """Row tails after the order id (most columns vary independently, so few rows repeat)."""
    ids = _id_numbers(rng, 5000)
    rows = []
    for _ in range(n):
        month, day = rng.randrange(1, 13), rng.randrange(1, 29)
        rows.append(
            f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)}{rng.choice(GIVEN) if rng.random() < 0.6 else ''},"
            f"{rng.choice(ids)},1{rng.choice('3456789')}{rng.randrange(10**9):09d},"
            f"{rng.randrange(1, 10**7) / 100:.2f},{rng.randrange(1, 200)},2025-{month:02d}-{day:02d},"
            f"2025-{month:02d}-{day:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d},"
            f"{rng.choice(CITIES)}{rng.randrange(1, 999)}号,{rng.choice(PRODUCTS)}{rng.randrange(10, 99)}型,"
            f"{rng.choice(NOTES)}\n"
        )
    return rows


def generate_csv(path: Path, size: int, seed: int = 2026) -> int:
    """Write about ``size`` bytes of order rows to ``path``; returns the number of rows."""
    rng = random.Random(seed)
    pool = _row_pool(rng, 50_000)
    written, rows = 0, 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        while written < size:
            batch = "".join(f"{rows + i + 1}," + pool[rng.randrange(len(pool))] for i in range(20_000))
            f.write(batch)
            written += len(batch.encode("utf-8"))
            rows += 20_000
    return rows
