"""/broadcast (广播): an admin or supervisor reaches groups and/or roles within their scope, after a
preview confirmed by button; a delivery report follows once the outbox batch has finished."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import BroadcastStep
from handlers.context import Context, Prefs
from handlers.format import clip, mask_personal
from handlers.outgoing import Outgoing, send_many, send_reply
from handlers.reminders import hold_for_quiet
from handlers.types import Button, ChatRef, Reply
from storage.accounts import unit_path
from storage.messages import ledger_claim, ledger_exists
from storage.models import InboxMessage, OrgUnit, Person
from storage.reports import Audience, batch_status, broadcast_audience

SENT_KIND = "broadcast"
REPORT_KIND = "broadcast_report"
BATCH_PREFIX = "bc:"
MAX_CHARS = 1500
ALLOWED_ROLES = ("admin", "supervisor")
CADRE_ROLES = ("cadre", "secretary")
# audience code → (label, roles, groups?)
AUDIENCES: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "g": ("群聊", (), True),
    "c": ("帮扶干部和第一书记", CADRE_ROLES, False),
    "a": ("群聊和干部", CADRE_ROLES, True),
    "s": ("督查人员", ("supervisor",), False),  # admins only
}
USAGE = ("用法：广播 通知内容\n例如：广播 周五上午9点在镇政府开帮扶工作会，请各村第一书记参加\n"
         "发出前会先给您看预览，确认后才发送。")


def _content(text: str) -> str:
    t = text.strip()
    for prefix in ("/broadcast", "广播"):
        if t.startswith(prefix):
            t = t[len(prefix):]
            if t.startswith("@"):  # /broadcast@botname
                t = t.split(None, 1)[1] if " " in t else ""
            return t.strip()
    return t


def _batch(draft_id: int) -> str:
    return f"{BATCH_PREFIX}{draft_id}"


async def _sender_scope(ctx: Context) -> tuple[str | None, str]:
    """(unit path or None for everything, how to name it); PermissionError if they may not broadcast."""
    p = ctx.person
    if p is None or p.role not in ALLOWED_ROLES:
        raise PermissionError
    if p.role == "admin":
        return None, "全部"
    path = await unit_path(ctx.session, p.unit_id)
    if path is None:
        raise PermissionError
    unit = await ctx.session.get(OrgUnit, p.unit_id)
    return path, unit.name if unit else ""


def _signed(text: str, sender: Person, unit_name: str) -> str:
    where = f"{unit_name} " if unit_name and unit_name != "全部" else ""
    return f"📢 通知（{where}{sender.name}）\n{text}"


async def command(ctx: Context, args: str) -> None:
    try:
        await _sender_scope(ctx)
    except PermissionError:
        ctx.reply("只有管理员和督查人员可以发广播。")
        return
    text = args.strip()
    if not text:
        ctx.reply(USAGE)
        return
    if len(text) > MAX_CHARS:
        ctx.reply(f"广播内容太长（{len(text)}字），最多{MAX_CHARS}字，请精简后重发。")
        return
    assert ctx.inbox_id is not None and ctx.person is not None
    rows = [(Button("群聊", BroadcastStep(ctx.inbox_id, "g").pack()),
             Button("帮扶干部", BroadcastStep(ctx.inbox_id, "c").pack())),
            (Button("群聊和干部", BroadcastStep(ctx.inbox_id, "a").pack()),)]
    if ctx.person.role == "admin":
        rows[1] = (*rows[1], Button("督查人员", BroadcastStep(ctx.inbox_id, "s").pack()))
    rows.append((Button("取消", BroadcastStep(ctx.inbox_id, "x").pack()),))
    ctx.reply(f"要把这条通知发给谁？\n“{clip(text, 60)}”", buttons=tuple(rows), card_key=f"bc:{ctx.inbox_id}")


async def _draft(ctx: Context, draft_id: int) -> str:
    """The draft is the command message itself, in the inbox; only its sender may use it."""
    row = await ctx.session.get(InboxMessage, draft_id)
    if row is None or row.channel != ctx.incoming.channel or row.sender_id != ctx.incoming.sender_id:
        raise ValueError("not this sender's draft")
    text = _content(row.text or "")
    if not text:
        raise ValueError("empty draft")
    return text


async def _audience(ctx: Context, code: str, path: str | None) -> Audience:
    assert ctx.person is not None
    if code not in AUDIENCES or (code == "s" and ctx.person.role != "admin"):
        raise ValueError(code)
    _, roles, groups = AUDIENCES[code]
    return await broadcast_audience(ctx.session, path=path, roles=roles, groups=groups,
                                    exclude_person=ctx.person.id)


def _describe(a: Audience) -> str:
    bits = []
    if a.groups:
        bits.append(f"{len(a.groups)}个群")
    if a.people:
        bits.append(f"{len(a.people)}人")
    return "、".join(bits) or "没有可发送的对象"


async def on_callback(ctx: Context, cb: BroadcastStep) -> None:
    """An audience code → preview; the same code confirmed ("ok") → send; code x → cancel."""
    try:
        path, unit_name = await _sender_scope(ctx)
    except PermissionError:
        ctx.reply("只有管理员和督查人员可以发广播。")
        return
    draft_id, code = cb.draft_id, cb.code
    card = f"bc:{draft_id}"
    text = await _draft(ctx, draft_id)
    if await ledger_exists(ctx.session, kind=SENT_KIND, period=str(draft_id), recipient="sent"):
        ctx.reply("这条广播已经发出了，不会重复发送。")
        return
    if code == "x":
        ctx.reply("已取消，这条广播不会发送。", card_key=card, edit_card=True)
        return
    audience = await _audience(ctx, code, path)
    assert ctx.person is not None
    message = _signed(text, ctx.person, unit_name)
    if not cb.confirm:
        lines = [f"预览（发给{unit_name}范围内的{AUDIENCES[code][0]}：{_describe(audience)}）", "———", message, "———"]
        if audience.unbound:
            lines.append(f"另有{audience.unbound}人还没绑定账号，收不到。")
        if audience.people:
            lines.append("在免打扰时段的人会在时段结束后收到。")
        if audience.groups and mask_personal(message) != message:
            lines.append("注意：群里发出的版本会隐去手机号和身份证号。")
        if not audience.people and not audience.groups:
            ctx.reply("\n".join(lines[:1]) + "\n范围内没有可发送的对象。", card_key=card, edit_card=True)
            return
        buttons = ((Button("确认发送", BroadcastStep(draft_id, code, "ok").pack()),
                    Button("取消", BroadcastStep(draft_id, "x").pack())),)
        ctx.reply("\n".join(lines), buttons=buttons, card_key=card, edit_card=True)
        return
    if await ledger_claim(ctx.session, kind=SENT_KIND, period=str(draft_id), recipient="sent") is None:
        ctx.reply("这条广播已经发出了，不会重复发送。")
        return
    n = await queue_broadcast(ctx.session, now=ctx.now, prefs=ctx.prefs, draft_id=draft_id, message=message,
                              audience=audience)
    ctx.reply(f"已提交发送，共{n}条（{_describe(audience)}）。全部发完后我会告诉您送达情况。",
              card_key=card, edit_card=True)


async def queue_broadcast(session: AsyncSession, *, now: datetime, prefs: Prefs, draft_id: int, message: str,
                          audience: Audience) -> int:
    """One outbox row per recipient, all in batch bc:<draft>; groups get the masked text, people's
    private copies wait out their quiet hours."""
    quiet = {}
    if audience.people:
        q = select(Person.id, Person.quiet_start, Person.quiet_end).where(
            Person.id.in_([p for p, _, _ in audience.people]))
        quiet = {pid: (qs, qe) for pid, qs, qe in (await session.execute(q)).all()}
    batch = _batch(draft_id)
    rows = []
    masked = mask_personal(message)
    for channel, chat_id in audience.groups:
        rows.append(Outgoing(Reply(masked), ChatRef(channel, chat_id, is_group=True), batch=batch))
    for pid, channel, chat_id in audience.people:
        qs, qe = quiet.get(pid, (None, None))
        rows.append(Outgoing(Reply(message, private=True), ChatRef(channel, chat_id), batch=batch,
                             not_before=hold_for_quiet(now, prefs, qs, qe)))
    await send_many(session, rows, now=now)
    return len(rows)


async def delivery_reports(session: AsyncSession, *, now: datetime) -> int:
    """For every broadcast batch with nothing left pending, one report to its sender (ledger-guarded)."""
    count = 0
    for batch, by_status in (await batch_status(session, prefix=BATCH_PREFIX, unreported_kind=REPORT_KIND)).items():
        if by_status.get("pending", 0) or by_status.get("sending", 0):
            continue
        try:
            draft = await session.get(InboxMessage, int(batch[len(BATCH_PREFIX):]))
        except ValueError:
            continue
        if await ledger_claim(session, kind=REPORT_KIND, period=batch, recipient="sender") is None or draft is None:
            continue
        total = sum(by_status.values())
        sent, blocked = by_status.get("sent", 0), by_status.get("blocked", 0)
        failed = total - sent - blocked
        text = (f"广播送达报告：“{clip(_content(draft.text or ''), 30)}”\n"
                f"共{total}条：已送达{sent}，失败{failed}，对方已屏蔽{blocked}。")
        if failed or blocked:
            text += "\n没收到的人请电话通知。"
        await send_reply(session, Reply(text, private=True), chat=ChatRef(draft.channel, draft.chat_id), now=now)
        count += 1
    return count
