"""Small frictions: global options after the command, help for every option, compact reprs."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from upscale_async import AcceptedRequest, BatchSubmission, FailedChunk, Lead, RejectedLead
from upscale_async.cli._main import _parser
from upscale_async.emulator.__main__ import _parser as emulator_parser
from upscale_async.testing import sample_leads

from .conftest import ExternalEmulator, run_cli


def test_global_options_after_the_command(tmp_path: Path, emulator: ExternalEmulator) -> None:
    """`account --api-key K --base-url U` works as `--api-key K --base-url U account` does."""
    result = run_cli(
        "account", "--api-key", emulator.api_key, "--base-url", emulator.base_url, cwd=tmp_path
    )
    assert result.code == 0, result.stderr
    assert "credits_remaining" in orjson.loads(result.stdout)


def test_global_options_before_the_command_are_kept() -> None:
    """Options before the command are not reset by the command's own (absent) copies."""
    args = _parser().parse_args(["--api-key", "k", "--base-url", "u", "--emulator", "account"])
    assert (args.api_key, args.base_url, args.emulator) == ("k", "u", True)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _actions() -> Iterator[object]:
    for root in (_parser(), emulator_parser()):
        for parser in _parsers(root):
            for action in parser._actions:
                name = "/".join(action.option_strings) or action.dest
                yield pytest.param(action, id=f"{parser.prog}:{name}")


@pytest.mark.parametrize("action", list(_actions()))
def test_every_option_has_help(action: argparse.Action) -> None:
    """Every option and argument of every command, the emulator's included, has a help text."""
    assert (action.help or "").strip()


def _leads(n: int) -> list[Lead]:
    return [Lead.from_mapping(lead) for lead in sample_leads(n)]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda leads: AcceptedRequest("r", tuple(x.automation_tool_lead_id for x in leads)),
            id="AcceptedRequest",
        ),
        pytest.param(
            lambda leads: FailedChunk(tuple(leads), "boom", "ServerError"), id="FailedChunk"
        ),
        pytest.param(
            lambda leads: RejectedLead(3, leads[0], (("lead_data[3].x", "x is bad"),)),
            id="RejectedLead",
        ),
        pytest.param(
            lambda leads: BatchSubmission(not_submitted=list(leads)), id="BatchSubmission"
        ),
    ],
)
def test_batch_result_reprs_are_one_short_line(make: object) -> None:
    """The repr of a batch result holding 1,000 leads is one line of under 120 characters."""
    assert callable(make)
    text = repr(make(_leads(1000)))
    assert "\n" not in text
    assert len(text) < 120, text


def test_failed_chunk_repr_counts_its_leads() -> None:
    """A FailedChunk's repr gives the number of its leads and the error, not the leads."""
    chunk = FailedChunk(tuple(_leads(3)), "boom", "ServerError", 503, 6)
    assert repr(chunk) == (
        "FailedChunk(leads=3, error_type='ServerError', status=503, first_index=6)"
    )


def test_to_json_returns_text_and_to_json_bytes_bytes() -> None:
    """to_json() is str, to_json_bytes() its UTF-8 bytes, and from_json reads both."""
    batch = BatchSubmission(not_submitted=[lead.to_wire() for lead in _leads(2)])
    text, data = batch.to_json(), batch.to_json_bytes()
    assert isinstance(text, str)
    assert data == text.encode()
    assert BatchSubmission.from_json(text) == BatchSubmission.from_json(data) == batch
