"""The checker that holds `_core.pyi`'s declared shapes to the core's real results."""

from __future__ import annotations

import typing
from typing import Any, Literal, NotRequired, TypedDict, get_args

import pytest

from phoenix_salt import _core
from tests.core_shapes import ShapeError, _stub, check, declared_return

# The functional form: this file's postponed annotations would hide NotRequired from the
# class form (as the checker's reading of the stub avoids).
_Row = TypedDict(  # noqa: UP013 - see above
    "_Row",
    {
        "id": str,
        "state": Literal["a", "b"],
        "count": int,
        "note": NotRequired[str | None],
        "items": list[float],
    },
)


GOOD: dict[str, Any] = {"id": "i-1", "state": "a", "count": 2, "items": [1.5]}


def test_a_result_of_the_declared_shape_passes() -> None:
    check(GOOD, _Row)
    check({**GOOD, "note": None}, _Row)
    check({**GOOD, "note": "x"}, _Row)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ({**GOOD, "extra": 1}, "keys ['extra'] are not in _Row"),
        ({key: v for key, v in GOOD.items() if key != "count"}, "requires ['count']"),
        ({**GOOD, "state": "c"}, "'c' is not one of"),
        ({**GOOD, "count": True}, "True is not a int"),
        ({**GOOD, "count": "2"}, "'2' is not a int"),
        ({**GOOD, "items": [1]}, "1 is not a float"),
        ({**GOOD, "note": 3}, "matches no arm"),
        ([GOOD], "list where _Row is declared"),
    ],
)
def test_a_result_of_another_shape_is_refused(value: Any, complaint: str) -> None:
    with pytest.raises(ShapeError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        check(value, _Row)


def _leaves(hint: Any, seen: set[Any]) -> typing.Iterator[Any]:
    if typing.is_typeddict(hint):
        if hint in seen:
            return
        seen.add(hint)
        for field in typing.get_type_hints(hint).values():
            yield from _leaves(field, seen)
    elif typing.get_origin(hint) is Literal:
        return
    elif args := get_args(hint):
        for arg in args:
            yield from _leaves(arg, seen)
    else:
        yield hint


def test_every_declared_return_is_a_type_the_checker_knows() -> None:
    """No return of the stub escapes the check by being a type it cannot read."""
    _, returns = _stub()
    assert len(returns) > 40
    checked = 0
    for name in returns:
        hint = declared_return(name)
        if hint is None:
            continue
        checked += 1
        for leaf in _leaves(hint, set()):
            assert leaf in (int, float, str, bool, bytes, type(None), object), (name, leaf)
    # The dict-returning calls are there to check.
    assert checked > 30
    assert declared_return("Engine.poll") is not None
    assert declared_return("Config.from_json") is None


def test_the_session_checks_the_core_calls_it_makes() -> None:
    """tests/conftest.py wraps the module for the whole session: a call's result is checked."""
    assert _core.parse_message.__wrapped__ is not None  # type: ignore[attr-defined]
    test_message = (
        '{"Service": "AWS Auto Scaling", "Event": "autoscaling:TEST_NOTIFICATION",'
        ' "AutoScalingGroupName": "g", "AccountId": "1", "RequestId": "r", "Time": "t"}'
    )
    check(_core.parse_message(test_message), declared_return("parse_message"))
