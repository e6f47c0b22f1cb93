"""The checkpoint halves that hot paths pass without Trio's coroutine frames (parking.py)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_uring._core import parking


def test_this_trio_is_the_one_mirrored() -> None:
    # The pinned Trio's internals are what parking.py reads; if a Trio
    # upgrade changed them, the fast halves would fall back to Trio's own
    # functions (correct, only slower), and this says so.
    assert parking.MIRRORS_TRIO_CHECKPOINTS
    assert parking.pass_schedule_point is not trio.lowlevel.cancel_shielded_checkpoint


def test_the_halves_make_a_checkpoint_as_trios_do() -> None:
    async def main() -> None:
        # Together they are a checkpoint, as Trio's testing helper counts one.
        with trio.testing.assert_checkpoints():
            assert parking.uncancelled()
            await parking.pass_schedule_point()
        # In a cancelled scope the test says no; Trio's half then raises.
        with trio.CancelScope() as scope:
            scope.cancel()
            assert not parking.uncancelled()
            with pytest.raises(trio.Cancelled):
                await trio.lowlevel.checkpoint_if_cancelled()
        # The second half alone is a schedule point that no cancel crosses.
        with trio.CancelScope() as scope:
            scope.cancel()
            await parking.pass_schedule_point()
        assert not scope.cancelled_caught

    trio.run(main)


def test_without_the_mirrored_internals_the_test_defers_to_trio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parking, "MIRRORS_TRIO_CHECKPOINTS", False)

    async def main() -> None:
        # False: the caller awaits Trio's checkpoint_if_cancelled, which
        # counts the cancel point itself.
        assert not parking.uncancelled()

    trio.run(main)
