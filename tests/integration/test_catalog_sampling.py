"""The sensitive scan looks at a random sample no row layout can dodge: ID numbers in every other
row, in three rows of four, in every seventh, or only in the second half of a file are all found,
with a confidence near their real share, and no sample row shows one in clear."""

from __future__ import annotations

import json
import random

import pytest

from appliance.services.catalog import sensitive

ROWS = 20000
LAYOUTS = {
    "even rows": lambda i: i % 2 == 0,
    "odd rows": lambda i: i % 2 == 1,  # the old fixed stride never looked at one of these
    "three rows in four": lambda i: i % 4 != 3,
    "every seventh row": lambda i: i % 7 == 0,
    "second half only": lambda i: i >= ROWS // 2,
    "fifteen rows in each hundred": lambda i: i % 100 < 15,
}


def _cn_id(rng: random.Random) -> str:
    body = f"{rng.choice(['110101', '310104', '440305'])}{rng.randint(1960, 2005)}{rng.randint(1, 12):02d}" \
           f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + sensitive.cn_id_check_char(body)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_id_numbers_are_found_whatever_rows_they_sit_in_and_never_shown_in_clear(node, data, layout, fmt):
    rng = random.Random(7)
    has_id = LAYOUTS[layout]
    ids, rows = [], []  # the header says nothing: only the values can tell
    for i in range(ROWS):
        if has_id(i):
            ids.append(_cn_id(rng))
        rows.append({"编号": i, "内容": ids[-1] if has_id(i) else f"备注{i}", "金额": i % 97})
    path = data / f"people.{fmt}"
    if fmt == "csv":
        text = "编号,内容,金额\n" + "".join(f"{r['编号']},{r['内容']},{r['金额']}\n" for r in rows)
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    share = len(ids) / ROWS
    version = node.resources.register(path).version
    (finding,) = [f for f in version.sensitive if f["column"] == "内容"]
    assert finding["kind"] == "cn_id"
    assert abs(finding["confidence"] - share) < 0.08, (finding["confidence"], share)
    shown = [row[1] for row in version.samples]
    assert shown and not any(sensitive.is_cn_id(v) for v in shown)
    assert not any(v in ids for v in shown)


def test_a_lone_id_number_in_an_unlabelled_column_is_masked_in_the_samples(node, data):
    rng = random.Random(3)
    one = _cn_id(rng)
    lines = ["编号,内容"] + [f"0,{one}"] + [f"{i},备注{i}" for i in range(1, 3000)]
    path = data / "remarks.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    version = node.resources.register(path).version
    assert version.samples[0][1] != one and version.samples[0][1].startswith(one[:3])
    assert version.samples[1][1] == "备注1"  # what is not sensitive is shown as it is
    assert isinstance(version.quality["sample_seed"], int)  # the sample can be drawn again
