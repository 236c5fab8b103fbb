"""One error out of a task group's exception group, with the others noted on it."""

from __future__ import annotations

from upscale_async._completion import _leaf


def test_a_nested_groups_other_errors_are_noted_on_the_error_raised() -> None:
    """The error raised notes every other error, even when the first is itself a group."""
    first, second, third = ValueError("a"), KeyError("b"), OSError("c")
    error = _leaf(ExceptionGroup("outer", [ExceptionGroup("inner", [first, third]), second]))
    assert error is first
    assert first.__notes__ == ["also raised: OSError: c", "also raised: KeyError: 'b'"]


def test_an_error_that_is_not_a_group_comes_out_as_it_is() -> None:
    """A plain error is returned unchanged, with no note."""
    error = ValueError("x")
    assert _leaf(error) is error
    assert not hasattr(error, "__notes__")
