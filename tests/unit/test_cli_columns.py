"""CLI columns line up with Chinese text: a CJK character takes two cells, a combining mark none."""

from edge.columns import display_width, pad, print_columns


def test_display_width_counts_terminal_cells():
    assert display_width("abc") == 3
    assert display_width("车间一号") == 8
    assert display_width("ＡＢ") == 4  # fullwidth Latin
    assert display_width("é") == 1  # e + combining acute
    assert display_width("·—") == 2  # narrow punctuation above U+2E7F is not wide (counted 2 each before)
    assert display_width("，。") == 4


def test_columns_line_up_whatever_the_script(capsys):
    print_columns([["名称", "类型"], ["车间一号温度", "表"], ["line-a", "file"]])
    lines = capsys.readouterr().out.splitlines()
    starts = [display_width(line[: line.index(cell)]) for line, cell in zip(lines, ["类型", "表", "file"], strict=True)]
    assert len(set(starts)) == 1
    assert pad("表", 4) == "表  "
