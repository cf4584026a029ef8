"""`kill -9` in the middle of a digest fan-out, then a rerun: every supervisor ends up with exactly one
digest (one ledger row, one set of outbox rows), and a third run adds nothing.

`bangfu digest --unit 双堡镇 --send` runs in a subprocess against PostgreSQL with 200 bound supervisors.
It is killed once its transaction holds the send-ledger claims (seen in pg_locks), i.e. mid-fan-out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from handlers.digest import DIGEST_KIND as KIND
from storage.engine import make_engine, make_sessionmaker
from storage.models import ChatIdentity, OutboxMessage, Person, SendLedger
from tests.harness import seed_world

pytestmark = pytest.mark.pg

N = 200


async def _seed(url: str) -> list[int]:
    eng = make_engine(url)
    try:
        sm = make_sessionmaker(eng)
        world = await seed_world(sm)
        async with sm() as s, s.begin():
            people = [Person(natural_key=f"督查{i}|x", name=f"督查{i}", role="supervisor", unit_id=world.township.id)
                      for i in range(N)]
            s.add_all(people)
            await s.flush()
            s.add_all([ChatIdentity(person_id=p.id, channel="telegram", external_id=f"s{p.id}", chat_id=f"s{p.id}",
                                    display_name=p.name) for p in people])
            return [p.id for p in people]
    finally:
        await eng.dispose()


async def _ledger(url: str) -> tuple[dict[str, int], dict[int, int]]:
    """recipient → ledger rows of kind digest; person → outbox rows to their chat."""
    eng = make_engine(url)
    try:
        async with make_sessionmaker(eng)() as s:
            led = dict((await s.execute(select(SendLedger.recipient, func.count()).where(SendLedger.kind == KIND)
                                        .group_by(SendLedger.recipient))).all())
            rows = dict((await s.execute(select(OutboxMessage.chat_id, func.count())
                                         .group_by(OutboxMessage.chat_id))).all())
            return {str(k): int(v) for k, v in led.items()}, {int(k[1:]): int(v) for k, v in rows.items()
                                                             if k.startswith("s")}
    finally:
        await eng.dispose()


async def _ledger_lock_held(url: str) -> bool:
    eng = make_engine(url)
    try:
        async with eng.connect() as c:
            q = text("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                     "WHERE c.relname = 'send_ledger' AND l.pid <> pg_backend_pid() AND l.granted")
            return int((await c.execute(q)).scalar_one()) > 0
    finally:
        await eng.dispose()


def _digest(url: str, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BANGFU_DATABASE__URL": url, "BANGFU_CONFIG": "", "BANGFU_APP__LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "bot", "digest", "--unit", "双堡镇", "--week", "2026-W47",
                             "--send", "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])


def test_kill_9_mid_fan_out_then_rerun(pg_url: str, tmp_path: Path) -> None:
    ids = asyncio.run(_seed(pg_url))
    proc = _digest(pg_url, tmp_path)
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        if asyncio.run(_ledger_lock_held(pg_url)):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait(30)
    assert killed, f"the fan-out finished before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
    assert proc.returncode == -signal.SIGKILL
    led, rows = asyncio.run(_ledger(pg_url))
    assert led == {} and rows == {}  # the killed run left nothing half-done

    for _ in range(2):  # the rerun sends everything; a third run finds it all sent
        again = _digest(pg_url, tmp_path)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode(errors="replace")[-2000:]
    led, rows = asyncio.run(_ledger(pg_url))
    assert led == {str(i): 1 for i in ids}  # 周督查 has no chat identity: not a recipient
    assert rows == {i: 3 for i in ids}  # text, chart and workbook, once each
