"""A browser that reconnects after the replica driving its run died has seen events that were
never stored; the run's `done`, written by another replica, is numbered after what was stored.
The browser still gets a gapless stream that ends: the `done`, numbered after its last event."""

from __future__ import annotations

import asyncio
from typing import Any

from app.runs.channel import RunChannel


async def followed(channel: RunChannel, after_seq: int) -> list[dict[str, Any]]:
    return [event async for event in channel.follow(after_seq)]


def test_a_done_numbered_below_what_the_browser_saw_comes_after_its_last_event() -> None:
    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        channel = RunChannel()
        for seq in range(3):  # what the dead driver had stored: 0, 1, 2 (the browser saw 0-4)
            await channel.publish({"seq": seq, "type": "output", "text": f"{seq}\n"})
        await channel.publish({"seq": 3, "type": "done", "status": "internal_error"})
        return await followed(channel, after_seq=4), await followed(channel, after_seq=-1)

    resumed, fresh = asyncio.run(main())
    assert resumed == [{"seq": 5, "type": "done", "status": "internal_error"}]
    # A browser that saw nothing (a reload) gets what is stored, as it is.
    assert [event["seq"] for event in fresh] == [0, 1, 2, 3]
    assert fresh[-1]["type"] == "done"
