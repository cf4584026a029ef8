"""Two processes must not poll one bot token: the second is refused with one clear line."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.config import load_settings
from bot.poll_lease import PollLease, PollLeaseTaken
from storage.engine import make_engine
from tests.fakes.botapi import FakeBotAPI

TOKEN = "123456789:AAFakeTokenForPollLeaseTests_abcdefgh"


async def test_second_lease_on_the_same_token_is_refused(db_url):
    e1, e2 = make_engine(db_url), make_engine(db_url)  # two engines: as two processes would have
    first, second = PollLease(e1, TOKEN), PollLease(e2, TOKEN)
    other_bot = PollLease(e2, "987654321:AAAnotherBotsTokenxxxxxxxxxxxxxxxxx")
    try:
        await first.acquire()
        with pytest.raises(PollLeaseTaken, match="webhook"):
            await second.acquire()
        await other_bot.acquire()  # a different bot is not affected
        await first.stop()
        await second.acquire()  # released on stop
    finally:
        for lease in (first, second, other_bot):
            await lease.stop()
        await e1.dispose()
        await e2.dispose()


async def test_second_polling_app_refuses_to_start(sqlite_url):
    async with FakeBotAPI(token=TOKEN) as api:
        env = {"BANGFU_DATABASE__URL": sqlite_url, "BANGFU_TELEGRAM__TOKEN": TOKEN,
               "BANGFU_TELEGRAM__API_BASE": api.base_url, "BANGFU_TELEGRAM__POLL_TIMEOUT": "1"}
        a, b = App(load_settings(environ=env), with_scheduler=False), App(load_settings(environ=env), with_scheduler=False)
        await a.start()
        try:
            with pytest.raises(PollLeaseTaken):
                await b.start()
        finally:
            await b.stop()
            await a.stop()
