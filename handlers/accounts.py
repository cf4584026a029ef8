"""Binding a chat account with an invite code, refusing strangers, /whoami and /settings."""

from __future__ import annotations

import re
from datetime import timedelta

from handlers.context import Context
from handlers.format import mask_phone
from storage.accounts import InviteError, looks_like_code, redeem_invite
from storage.messages import recent_failed_codes
from storage.models import OrgUnit

MAX_FAILED_CODES_PER_HOUR = 5
ROLE_NAMES = {"cadre": "帮扶干部", "secretary": "第一书记", "supervisor": "督查人员", "organiser": "培训组织者",
              "admin": "管理员"}

STRANGER = ("您好！您还没有绑定账号，暂时不能使用。\n"
            "请向本单位管理员索取邀请码，然后发送：/start 邀请码")


def extract_code(text: str) -> str | None:
    t = text.strip()
    m = re.match(r"^/start(?:@\w+)?\s+(\S+)\s*$", t)
    if m:
        return m.group(1)
    if t.startswith("/start"):
        return None
    return t if looks_like_code(t) else None


async def handle_stranger(ctx: Context, *, keyboard: tuple[tuple[str, ...], ...] | None = None) -> None:
    """Nothing a stranger sends is processed, except an attempt to bind with a code."""
    inc = ctx.incoming
    code = extract_code(inc.text) if inc.kind == "message" else None
    if code is None:
        ctx.inbox_state = "stranger"
        ctx.reply(STRANGER)
        return
    since = ctx.now - timedelta(hours=1)
    if await recent_failed_codes(ctx.session, channel=inc.channel, sender_id=inc.sender_id, since=since) \
            >= MAX_FAILED_CODES_PER_HOUR:
        ctx.inbox_state = "bad_code"
        ctx.reply("邀请码尝试次数过多，请一小时后再试，或联系管理员。")
        return
    try:
        async with ctx.session.begin_nested():
            res = await redeem_invite(ctx.session, code=code, channel=inc.channel, external_id=inc.sender_id,
                                      chat_id=inc.chat.chat_id, display_name=inc.sender_name, now=ctx.now)
    except InviteError as e:
        ctx.inbox_state = "bad_code"
        why = {"used": "已经被使用过", "expired": "已过期"}.get(str(e), "无效")
        ctx.reply(f"邀请码{why}。请核对后重发，或向管理员重新索取。")
        return
    ctx.person = res.person
    ctx.identity = res.identity
    ctx.inbox_state = "bound"
    unit = await ctx.session.get(OrgUnit, res.person.unit_id) if res.person.unit_id else None
    where = f"（{unit.name}）" if unit else ""
    ctx.reply(f"绑定成功！欢迎您，{res.person.name}{where}，身份：{ROLE_NAMES.get(res.person.role, res.person.role)}。\n\n"
              "直接发走访情况就能记录，例如：\n“今天去大坝村王德明家，5口人，缺棉被两床”\n发“帮助”查看更多用法。",
              keyboard=keyboard)


async def whoami(ctx: Context) -> None:
    p = ctx.person
    assert p is not None
    unit = await ctx.session.get(OrgUnit, p.unit_id) if p.unit_id else None
    lines = [f"姓名：{p.name}", f"身份：{ROLE_NAMES.get(p.role, p.role)}"]
    if unit:
        lines.append(f"单位：{unit.name}")
    if p.org_name:
        lines.append(f"所在单位：{p.org_name}")
    if p.phone:
        lines.append(f"电话：{mask_phone(p.phone)}")
    lines.append(f"当前渠道：{ctx.incoming.channel}")
    ctx.reply("\n".join(lines))


_QUIET = re.compile(r"(\d{1,2})[:：点](\d{2})?\s*[-到至~]\s*(\d{1,2})[:：点](\d{2})?")


async def settings(ctx: Context, args: str) -> None:
    p = ctx.person
    assert p is not None
    args = args.strip()
    if args in ("关闭免打扰", "关闭", "off"):
        p.quiet_start, p.quiet_end = "00:00", "00:00"
        ctx.reply("已关闭免打扰：提醒随时送达。")
        return
    m = _QUIET.search(args)
    if m:
        h1, m1, h2, m2 = int(m.group(1)), int(m.group(2) or 0), int(m.group(3)), int(m.group(4) or 0)
        if not (0 <= h1 < 24 and 0 <= h2 < 24 and 0 <= m1 < 60 and 0 <= m2 < 60):
            ctx.reply("时间不对，请写成“免打扰 21:00-08:00”。")
            return
        p.quiet_start, p.quiet_end = f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"
        ctx.reply(f"已设置免打扰时段 {p.quiet_start}–{p.quiet_end}，这段时间的提醒会在结束后送达。")
        return
    qs = p.quiet_start or ctx.prefs.quiet_start
    qe = p.quiet_end or ctx.prefs.quiet_end
    state = "已关闭" if qs == qe else f"{qs}–{qe}"
    ctx.reply(f"设置\n免打扰时段：{state}\n\n修改：发“设置 免打扰 22:00-07:00”；关闭：发“设置 关闭免打扰”。")
