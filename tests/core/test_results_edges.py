"""BatchSubmission's accounting, persistence and the completion/batch errors, field by field."""

from __future__ import annotations

from collections import UserDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchProgress,
    BatchSubmission,
    CompletionError,
    CompletionTimeoutError,
    FailedChunk,
    Lead,
    RejectedLead,
    StopReason,
)
from upscale_async.testing import sample_lead


def _full() -> BatchSubmission:
    """A batch with something in every bucket, each list out of input order."""
    return BatchSubmission(
        accepted=[
            AcceptedRequest("req-b", ("l5", "l6"), 5),
            AcceptedRequest("req-a", ("l0", "l1", "l2"), 0),
        ],
        rejected=[
            RejectedLead(7, sample_lead(7), (("lead_data[7].first_name", "first bad"),)),
            RejectedLead(3, {"first_name": "x"}, (("a", "m1"), ("b", "m2"))),
        ],
        failed=[FailedChunk((sample_lead(8), sample_lead(9)), "boom", "ServerError", 503, 8)],
        not_submitted=[sample_lead(10)],
        stopped_by=StopReason.AUTHENTICATION,
    )


def test_counts_name_every_bucket_and_the_requests() -> None:
    """counts() gives the leads in each bucket and the number of accepted requests."""
    assert _full().counts() == {
        "accepted": 5,
        "rejected": 2,
        "failed": 2,
        "not_submitted": 1,
        "requests": 2,
    }


def test_total_adds_up_every_bucket() -> None:
    """total is accepted + rejected + failed + not submitted leads."""
    assert _full().total == 10


def test_repr_shows_the_counts_and_the_stop_reason() -> None:
    """The repr of a stopped batch shows its counts and why it stopped."""
    assert repr(_full()) == (
        "BatchSubmission(accepted=5, rejected=2, failed=2, not_submitted=1, requests=2, "
        "stopped_by='authentication')"
    )
    assert repr(BatchSubmission()) == (
        "BatchSubmission(accepted=0, rejected=0, failed=0, not_submitted=0, requests=0)"
    )


@pytest.mark.parametrize(
    ("batch", "complete"),
    [
        pytest.param(BatchSubmission(), True, id="empty"),
        pytest.param(BatchSubmission(rejected=[RejectedLead(0, {}, ())]), True, id="only-rejected"),
        pytest.param(BatchSubmission(not_submitted=[{}]), False, id="not-submitted"),
        pytest.param(
            BatchSubmission(failed=[FailedChunk(({},), "e", "E")]), False, id="failed-chunk"
        ),
    ],
)
def test_complete_means_nothing_failed_or_unsent(batch: BatchSubmission, complete: bool) -> None:
    """complete is False as soon as a chunk failed or a lead was left unsent."""
    assert batch.complete is complete


def test_accepted_lead_ids_pair_each_lead_with_its_request() -> None:
    """accepted_lead_ids yields (request id, lead id) for every accepted lead, request by request."""
    assert list(_full().accepted_lead_ids()) == [
        ("req-b", "l5"),
        ("req-b", "l6"),
        ("req-a", "l0"),
        ("req-a", "l1"),
        ("req-a", "l2"),
    ]


def test_failed_leads_flatten_every_failed_chunk() -> None:
    """failed_leads lists the leads of every failed chunk, chunk by chunk."""
    batch = BatchSubmission(
        failed=[FailedChunk(("a", "b"), "e", "E", None, 0), FailedChunk(("c",), "e", "E", None, 2)]
    )
    assert batch.failed_leads() == ["a", "b", "c"]


def test_sort_puts_every_list_in_input_order() -> None:
    """sort() orders accepted, rejected and failed by their position in the input."""
    batch = _full()
    batch.failed.insert(0, FailedChunk(("x",), "e", "E", None, 9))
    batch.sort()
    assert [r.first_index for r in batch.accepted] == [0, 5]
    assert [r.index for r in batch.rejected] == [3, 7]
    assert [c.first_index for c in batch.failed] == [8, 9]
    assert batch.request_ids == ["req-a", "req-b"]


def test_rejected_lead_exposes_its_id_and_messages() -> None:
    """A RejectedLead gives its lead's id (None when unreadable) and the messages alone."""
    rejected = RejectedLead(4, sample_lead(4), (("p1", "m1"), ("p2", "m2")))
    assert rejected.lead_id == sample_lead(4)["automation_tool_lead_id"]
    assert rejected.messages == ["m1", "m2"]
    assert RejectedLead(0, 42, ()).lead_id is None


def test_to_json_round_trips_every_field() -> None:
    """from_json(to_json()) gives back every bucket, index, error, status and the stop reason."""
    batch = _full()
    back = BatchSubmission.from_json(batch.to_json())
    assert back == batch
    assert back.stopped_by is StopReason.AUTHENTICATION
    assert back.failed[0].status == 503
    assert back.failed[0].first_index == 8


def test_to_json_saves_lead_models_as_wire_objects() -> None:
    """Lead models are saved as their wire objects and come back as mappings with the wire keys."""
    lead = Lead.from_mapping(sample_lead(1))
    batch = BatchSubmission(
        rejected=[RejectedLead(0, lead, (("p", "m"),))],
        failed=[FailedChunk((lead,), "e", "E")],
        not_submitted=[lead],
    )
    back = BatchSubmission.from_json(batch.to_json_bytes())
    assert back.rejected[0].lead == lead.to_wire()
    assert list(back.failed[0].leads) == [lead.to_wire()]
    assert back.not_submitted == [lead.to_wire()]


def test_from_json_defaults_what_older_files_lack() -> None:
    """A saved batch without first_index, status or stopped_by reads them as 0, None and None."""
    data = (
        b'{"version":1,"accepted":[{"secure_request_id":"r","lead_ids":["a"]}],'
        b'"rejected":[],"failed":[{"leads":[],"error":"e","error_type":"E"}],"not_submitted":[]}'
    )
    back = BatchSubmission.from_json(data)
    assert back.accepted == [AcceptedRequest("r", ("a",), 0)]
    assert back.failed == [FailedChunk((), "e", "E", None, 0)]
    assert back.stopped_by is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"version":2}', id="other-version"),
        pytest.param(b'{"version":1}', id="missing-buckets"),
        pytest.param(b"{", id="not-json"),
        pytest.param(
            b'{"version":1,"accepted":[],"rejected":[],"failed":[],"not_submitted":[],'
            b'"stopped_by":"tired"}',
            id="unknown-stop-reason",
        ),
        pytest.param(
            b'{"version":1,"accepted":[{"lead_ids":[]}],"rejected":[],"failed":[],'
            b'"not_submitted":[]}',
            id="request-without-id",
        ),
    ],
)
def test_from_json_rejects_what_it_did_not_write(data: bytes) -> None:
    """Anything but a saved BatchSubmission of this version raises one ValueError saying so."""
    with pytest.raises(ValueError, match=r"^not a saved BatchSubmission: "):
        BatchSubmission.from_json(data)


def test_from_json_names_the_expected_version() -> None:
    """A file of another version is refused with the version this SDK reads."""
    with pytest.raises(ValueError, match="expected a BatchSubmission of version 1"):
        BatchSubmission.from_json(b'{"version":0}')


@given(
    accepted=st.lists(
        st.builds(
            AcceptedRequest,
            st.text(min_size=1),
            st.lists(st.text(min_size=1), max_size=3).map(tuple),
            st.integers(0, 10**6),
        ),
        max_size=4,
    ),
    stopped_by=st.none() | st.sampled_from(StopReason),
)
def test_accepted_requests_round_trip(
    accepted: list[AcceptedRequest], stopped_by: StopReason | None
) -> None:
    """Accepted requests (ids, lead ids, first index) and any stop reason survive a round trip."""
    batch = BatchSubmission(accepted=accepted, stopped_by=stopped_by)
    assert BatchSubmission.from_json(batch.to_json()) == batch


def test_accepted_request_to_dict_names_its_fields() -> None:
    """AcceptedRequest.to_dict writes the journal's keys, and from_dict reads them back."""
    request = AcceptedRequest("r1", ("a", "b"), 7)
    assert request.to_dict() == {
        "secure_request_id": "r1",
        "lead_ids": ("a", "b"),
        "first_index": 7,
    }
    assert AcceptedRequest.from_dict({"secure_request_id": "r1", "lead_ids": ["a"]}) == (
        AcceptedRequest("r1", ("a",), 0)
    )


def test_leads_submitted_is_the_accepted_count() -> None:
    """BatchProgress.leads_submitted is the number of leads accepted so far."""
    progress = BatchProgress(
        leads_seen=9,
        leads_accepted=4,
        leads_rejected=2,
        leads_failed=1,
        leads_not_submitted=2,
        total=None,
        chunks_in_flight=0,
        chunks_done=3,
        requests_accepted=2,
        errors=1,
    )
    assert progress.leads_submitted == 4


def test_completion_error_keeps_what_it_is_given() -> None:
    """CompletionError keeps completed, errors and pending (as fresh lists and a dict)."""
    cause = KeyError("x")
    error = CompletionError("m", completed=(), errors={"r2": cause}, pending=("r3",))
    assert str(error) == "m"
    assert error.completed == []
    assert error.errors == {"r2": cause}
    assert error.pending == ["r3"]
    empty = CompletionError("m")
    assert (empty.completed, empty.errors, empty.pending) == ([], {}, [])


def test_completion_timeout_error_keeps_last_seen_and_pending() -> None:
    """CompletionTimeoutError is a CompletionError and a TimeoutError with pending and last_seen."""
    error = CompletionTimeoutError("late", pending=["r1"], last_seen={"r1": None})
    assert isinstance(error, CompletionError)
    assert isinstance(error, TimeoutError)
    assert str(error) == "late"
    assert error.pending == ["r1"]
    assert error.last_seen == {"r1": None}
    assert (error.completed, error.errors) == ([], {})


def test_batch_interrupted_error_carries_the_partial_and_the_reason() -> None:
    """BatchInterruptedError holds the partial result and the stop reason, with its message."""
    partial = _full()
    error = BatchInterruptedError("stopped", partial=partial, reason=StopReason.AUTHENTICATION)
    assert str(error) == "stopped"
    assert error.partial is partial
    assert error.reason is StopReason.AUTHENTICATION


def test_to_json_saves_any_lead_the_batch_set_aside() -> None:
    """A rejected lead that is another mapping or not a mapping at all is saved as it reads."""
    batch = BatchSubmission(
        rejected=[
            RejectedLead(0, UserDict({"first_name": "Ann"}), (("p", "m"),)),
            RejectedLead(1, 7, (("q", "n"),)),
        ]
    )
    back = BatchSubmission.from_json(batch.to_json())
    assert [r.lead for r in back.rejected] == [{"first_name": "Ann"}, 7]


def test_completion_timeout_error_keeps_what_completed_and_failed() -> None:
    """CompletionTimeoutError also keeps the results completed and the errors before the deadline."""
    cause = KeyError("x")
    error = CompletionTimeoutError(
        "late",
        pending=["r3"],
        last_seen={"r3": None},
        completed=("done",),  # type: ignore[arg-type]
        errors={"r2": cause},
    )
    assert error.completed == ["done"]
    assert error.errors == {"r2": cause}
