"""The live display in a real terminal 80 columns wide (tmux), read back from the screen."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import clean_env

TMUX = shutil.which("tmux")
WIDTH = 80
DEADLINE = 60.0

pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux")


def _tmux(socket: str, *args: str) -> str:
    assert TMUX is not None
    done = subprocess.run(
        [TMUX, "-L", socket, *args], capture_output=True, text=True, timeout=10, env=clean_env()
    )
    return done.stdout


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[str]:
    """A tmux server of our own (its socket name), killed at the end whatever happens."""
    socket = f"upscale-test-{uuid.uuid4().hex[:8]}"
    try:
        yield socket
    finally:
        _tmux(socket, "kill-server")


def _run_demo(socket: str, cwd: Path) -> tuple[str, str]:
    """Run the demo in an 80x24 terminal; the screen as shown and with wrapped lines joined."""
    command = (
        f"cd {shlex.quote(str(cwd))} && {shlex.quote(sys.executable)} -m upscale_async "
        "demo --leads 120 --out d; echo EXIT=$?; sleep 60"
    )
    _tmux(socket, "new-session", "-d", "-x", str(WIDTH), "-y", "24", "-s", "t", command)
    end = time.monotonic() + DEADLINE
    screen = ""
    while time.monotonic() < end and "EXIT=" not in screen:
        time.sleep(0.3)
        screen = _tmux(socket, "capture-pane", "-p", "-t", "t")
    assert "EXIT=0" in screen, screen
    return screen, _tmux(socket, "capture-pane", "-p", "-J", "-t", "t")


def test_live_display_fits_80_columns(terminal: str, tmp_path: Path) -> None:
    """At 80 columns the display and the messages around it fit: no line longer, none wrapped."""
    screen, joined = _run_demo(terminal, tmp_path)
    lines = screen.rstrip("\n").splitlines()
    assert any("/~120 completed" in line for line in lines), screen
    assert any(line.startswith("submitted ") and "not generated" in line for line in lines)
    assert any("leads/s" in line for line in lines), screen
    assert all(len(line) <= WIDTH for line in lines), screen
    # capture-pane -J joins the lines the terminal wrapped: the same lines means none wrapped.
    assert [line.rstrip() for line in joined.rstrip("\n").splitlines()] == [
        line.rstrip() for line in lines
    ], joined
