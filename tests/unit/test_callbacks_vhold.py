"""callbacks.vhold: a virtual entry keeps its true place — never ahead of callers who joined
before it, never behind callers who joined after it."""

from __future__ import annotations

import pytest

from callbacks.vhold import VirtualQueue, estimated_wait, should_offer


def queue_of(*ids: str) -> VirtualQueue:
    q = VirtualQueue("reception")
    for i in ids:
        q.join(i)
    return q


def test_virtual_entry_is_due_when_everyone_ahead_was_served() -> None:
    q = queue_of("a", "b", "c", "d")
    assert q.go_virtual("c", "+79161234567")
    q.leave("c")  # its channel hangs up: the entry stays, virtual
    assert q.position("c") == 3
    assert q.due() == []
    q.leave("a")  # answered
    assert q.position("c") == 2 and q.due() == []
    q.leave("b")  # abandoned
    assert [e.id for e in q.due()] == ["c"]
    assert q.live_ahead("c") == 0


def test_later_live_callers_stay_behind_it() -> None:
    q = queue_of("a", "c", "d", "e")
    q.go_virtual("c", "+7")
    q.leave("a")
    # d and e joined later: they never make c wait, even while c is not served yet
    assert [e.id for e in q.due()] == ["c"]
    assert q.position("d") == 2 and q.position("e") == 3
    q.served("c")
    assert q.position("d") == 1


def test_callers_leaving_behind_it_do_not_move_it() -> None:
    q = queue_of("a", "b", "c", "d")
    q.go_virtual("b", "+7")
    q.leave("c")
    q.leave("d")
    assert q.position("b") == 2 and q.due() == []


def test_two_virtual_entries_go_in_join_order() -> None:
    q = queue_of("a", "b", "c", "d")
    q.go_virtual("b", "+71")
    q.go_virtual("d", "+72")
    q.leave("a")
    assert [e.id for e in q.due()] == ["b"]  # c (live) still ahead of d
    q.leave("c")
    assert [e.id for e in q.due()] == ["b", "d"]
    q.served("b")
    assert [e.id for e in q.due()] == ["d"]


@pytest.mark.parametrize(("ops", "due"), [
    # seq order is the model's join order even when events arrive out of order
    ([("join", "x", 5), ("join", "y", 3), ("virtual", "x"), ("leave", "y")], ["x"]),
    ([("join", "x", 5), ("join", "y", 7), ("virtual", "x")], ["x"]),
    ([("join", "x", 5), ("join", "y", 3), ("virtual", "x")], []),
])  # fmt: skip
def test_join_order_comes_from_seq(ops: list[tuple[object, ...]], due: list[str]) -> None:
    q = VirtualQueue("q")
    for op in ops:
        if op[0] == "join":
            q.join(str(op[1]), seq=int(op[2]))  # type: ignore[call-overload]
        elif op[0] == "virtual":
            q.go_virtual(str(op[1]), "+7")
        else:
            q.leave(str(op[1]))
    assert [e.id for e in q.due()] == due


def test_unknown_or_repeated_accepts_are_refused() -> None:
    q = queue_of("a")
    assert not q.go_virtual("zz", "+7")
    assert q.go_virtual("a", "+7")
    assert not q.go_virtual("a", "+7")


def test_offer_only_when_the_wait_is_long_and_not_next() -> None:
    assert estimated_wait(1, 180.0, 1, 3) == 0.0
    assert estimated_wait(7, 180.0, 1, 3) == pytest.approx(360.0)
    assert should_offer(360.0, 120.0, 7)
    assert not should_offer(60.0, 120.0, 7)
    assert not should_offer(360.0, 120.0, 1)


def test_a_caller_app_queue_put_at_a_position_is_counted_there() -> None:
    """A virtual-hold placeholder joins at the caller's place (QueueCallerJoin Position): a
    second accept behind it must count it ahead."""
    q = queue_of("a", "c", "d")
    q.join("slot-b", position=2)
    assert [q.position(i) for i in ("a", "slot-b", "c", "d")] == [1, 2, 3, 4]
    q.join("e", position=5)  # at the end: the usual join
    assert q.position("e") == 5
    assert q.go_virtual("d", "+7") and q.position("d") == 4
