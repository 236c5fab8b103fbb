"""Every ```python and ```bash block of README.md runs as printed, against the emulator.

Each block is one test, its id the README line of its opening fence (``README.md:42``), and a
failure names that line. The block's text is run exactly as the README shows it:

- A ```python block is compiled with top-level ``await`` allowed and with the README's line
  numbers (a traceback points into README.md), then run in a fresh namespace against its own
  emulator (``EmulatorThread``: 127.0.0.1, a random port). The namespace is the setup a fragment
  may rely on, and nothing more:

  - ``client``: an ``UpscaleClient(emu.api_key, base_url=emu.base_url)``, open;
  - ``hub``: an open ``CompletionHub`` whose ``WebhookReceiver`` (a random port) is listening;
  - ``campaign``: ``make_campaign(completion_notification_url=<that receiver's url>)``;
  - ``leads``: ``make_leads(10, no_web_presence_every=5)`` (8 generated, 2 failed);
  - ``secret``: the emulator's webhook secret.

  ``UPSCALE_API_KEY`` and ``UPSCALE_BASE_URL`` name the emulator, so a self-contained block
  (``UpscaleClient()`` under ``asyncio.run``) runs as a script would. The working directory is
  a temporary one.
- A ```bash block runs under ``bash -e -u -o pipefail`` in a temporary directory holding
  ``leads.csv`` (20 valid sample leads), ``campaign.json`` (the sample campaign) and
  ``examples/`` (the repository's), with this interpreter's ``bin`` first on ``PATH`` and no
  ``UPSCALE_*`` variable set (so the CLI and the examples use their embedded emulator).
- A block right after ``<!-- not run: <reason> -->`` is not run, and the reason is required.

A block fails when it raises or exits non-zero, when it calls ``print`` but prints nothing (its
point, an ``except`` branch for instance, was never reached), when it prints ``None`` (it shows
a field that is empty for what it printed), or when a python block made the emulator send a
webhook that found nobody listening (a receiver started after the submission).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import orjson
import pytest

from upscale_async import UpscaleClient
from upscale_async.testing import EmulatorThread, make_campaign, make_leads, sample_campaign
from upscale_async.testing import sample_leads as sample_lead_dicts
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LANGUAGES = ("python", "bash")
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:(.*?)-->\s*$")
SNIPPET_SECONDS = 60
LEAD_CSV_FIELDS = (
    "automation_tool_lead_id",
    "lead_linkedin",
    "lead_company",
    "first_name",
    "last_name",
    "lead_company_website_url",
    "lead_specified_url",
)


class Block(NamedTuple):
    """One fenced block of the README."""

    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the reason given by a `<!-- not run: ... -->` line right before it


def _blocks(text: str) -> Iterator[Block]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        marker = NOT_RUN.match(lines[i - 1]) if i else None
        reason = marker.group(1).strip() if marker else None
        yield Block(i + 1, opening.group(1), "\n".join(lines[i + 1 : end]) + "\n", reason)
        i = end + 1


BLOCKS = [b for b in _blocks(README.read_text(encoding="utf-8")) if b.language in LANGUAGES]
RUN = [pytest.param(b, id=f"README.md:{b.line}") for b in BLOCKS if b.not_run is None]


def check_output(block: Block, out: str) -> None:
    where = f"README.md line {block.line}"
    if "print(" in block.code:
        assert out.strip(), f"{where}: the block calls print but printed nothing"
    assert not re.search(r"\bNone\b", out), f"{where}: the block printed None:\n{out}"


# -- python ----------------------------------------------------------------------------------


def _compile(block: Block) -> Any:
    # Blank lines first, so that line numbers in a traceback are the README's.
    source = "\n" * block.line + block.code
    return compile(source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


async def _run_fragment(code: Any, emu: EmulatorThread) -> None:
    """Run a block with top-level await in the documented setup (see the module docstring)."""
    secret = emu.webhook_secret
    assert secret is not None
    async with (
        UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        CompletionHub() as hub,
        WebhookReceiver(hub, verifier=StandardWebhooksVerifier(secret), port=0) as receiver,
    ):
        namespace: dict[str, Any] = {
            "__name__": "__readme__",
            "client": client,
            "hub": hub,
            "campaign": make_campaign(completion_notification_url=receiver.url),
            "leads": make_leads(10, no_web_presence_every=5),
            "secret": secret,
        }
        try:
            with anyio.fail_after(SNIPPET_SECONDS):
                await eval(code, namespace)
        except TimeoutError as exc:
            raise TimeoutError(f"not finished after {SNIPPET_SECONDS} s") from exc
        # Read while the setup's receiver still listens: a failed attempt found nobody there.
        unheard = [d.url for d in list(emu.state.deliveries) if d.outcome == "failed"]
        assert unheard == [], f"webhooks sent while nobody listened: {unheard}"


def _run_python(block: Block, emu: EmulatorThread) -> None:
    code = _compile(block)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(_run_fragment(code, emu))
    else:  # a whole script: it runs its own event loop
        exec(code, {"__name__": "__readme__"})


# -- bash ------------------------------------------------------------------------------------


def _prepare_shell_dir(directory: Path) -> dict[str, str]:
    """The directory a bash block runs in, and its environment (see the module docstring)."""
    with (directory / "leads.csv").open("w", encoding="utf-8") as f:
        f.write(",".join(LEAD_CSV_FIELDS) + "\n")
        for lead in sample_lead_dicts(20):
            f.write(",".join(lead[k] or "" for k in LEAD_CSV_FIELDS) + "\n")
    (directory / "campaign.json").write_bytes(orjson.dumps(sample_campaign()))
    (directory / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSCALE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "error"
    return env


def assert_bash_runs(block: Block, directory: Path) -> str:
    env = _prepare_shell_dir(directory)
    done = subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", block.code],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=SNIPPET_SECONDS,
    )
    assert done.returncode == 0, (
        f"README.md line {block.line}: exit status {done.returncode}\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, f"README.md line {block.line}:\n{done.stderr}"
    return done.stdout


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("block", RUN)
def test_readme_block_runs_as_printed(
    block: Block,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README block runs to the end against the emulator and prints what it means to."""
    monkeypatch.chdir(tmp_path)
    if block.language == "bash":
        out = assert_bash_runs(block, tmp_path)
    else:
        with EmulatorThread() as emu:
            monkeypatch.setenv("UPSCALE_API_KEY", emu.api_key)
            monkeypatch.setenv("UPSCALE_BASE_URL", emu.base_url)
            try:
                _run_python(block, emu)
            except Exception as exc:
                raise AssertionError(f"README.md line {block.line}: {exc!r}") from exc
        out = capsys.readouterr().out
    check_output(block, out)


def test_every_block_not_run_says_why() -> None:
    """Every block the test does not run is marked `<!-- not run: reason -->` with a reason."""
    unexplained = [b.line for b in BLOCKS if b.not_run is not None and not b.not_run]
    assert unexplained == []
    assert len(RUN) + sum(b.not_run is not None for b in BLOCKS) == len(BLOCKS)


def test_every_not_run_marker_sits_right_before_a_block() -> None:
    """A `not run` marker is on the line before a python or bash block, never stray."""
    lines = README.read_text(encoding="utf-8").splitlines()
    markers = [
        i + 1 for i, line in enumerate(lines) if line.startswith("<!--") and "not run" in line
    ]
    marked = [b.line - 1 for b in BLOCKS if b.not_run is not None]
    assert markers == marked


def test_the_readme_has_python_and_bash_blocks_to_run() -> None:
    """The extraction finds the README's blocks (a broken fence pattern would run none)."""
    fences = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("```")
    ]
    opened = [f for f in fences if f.removeprefix("```").strip() in LANGUAGES]
    assert len(opened) == len(BLOCKS)
    assert {b.language for b in BLOCKS if b.not_run is None} == set(LANGUAGES)
