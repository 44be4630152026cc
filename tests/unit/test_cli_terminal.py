"""Escape codes only reach a person at a terminal: never a log file, a pipe or NO_COLOR users."""

import io
import os

from edge.terminal import BOLD, bold, styled


def _terminal():
    main_fd, sub_fd = os.openpty()
    return main_fd, os.fdopen(sub_fd, "w")


def test_a_terminal_gets_bold_text():
    main_fd, tty = _terminal()
    try:
        assert styled(tty, env={"TERM": "xterm"})
        assert bold("▶ step", tty, env={}) == f"{BOLD}▶ step\033[0m"
    finally:
        tty.close()
        os.close(main_fd)


def test_no_color_and_a_dumb_terminal_get_plain_text():
    main_fd, tty = _terminal()
    try:
        assert bold("▶ step", tty, env={"NO_COLOR": "1"}) == "▶ step"
        assert bold("▶ step", tty, env={"TERM": "dumb"}) == "▶ step"
        assert styled(tty, env={"NO_COLOR": ""})  # set but empty does not count (no-color.org)
    finally:
        tty.close()
        os.close(main_fd)


def test_a_file_or_pipe_gets_plain_text():
    assert bold("▶ step", io.StringIO(), env={}) == "▶ step"
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "w") as pipe:
        assert not styled(pipe, env={})
    os.close(read_fd)
    closed = io.StringIO()
    closed.close()
    assert not styled(closed, env={})
