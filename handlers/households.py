"""Read-only views of a cadre's own work: my households, my recent visits, open needs."""

from __future__ import annotations

from handlers.callbacks import NeedMet
from handlers.context import Context
from handlers.format import clip, fmt_date, fmt_qty
from handlers.types import Button
from storage.visits import my_households, open_needs, recent_entries

MAX_LINES = 30


async def my(ctx: Context) -> None:
    assert ctx.person is not None
    rows = await my_households(ctx.session, ctx.person.id)
    if not rows:
        ctx.reply("您名下还没有结对帮扶的农户。如有误，请联系管理员导入结对名单。")
        return
    lines = [f"我的农户（共{len(rows)}户，最久未走访的在前）"]
    for r in rows[:MAX_LINES]:
        last = fmt_date(r.last_visit) if r.last_visit else "未走访"
        days = f"，{(ctx.today - r.last_visit).days}天前" if r.last_visit else ""
        needs = f"，未解决需求{r.open_needs}条" if r.open_needs else ""
        lines.append(f"· {r.household.head_name}（{r.village}）上次：{last}{days}{needs}")
    if len(rows) > MAX_LINES:
        lines.append(f"……另有{len(rows) - MAX_LINES}户，完整名单可让管理员导出表格。")
    ctx.reply("\n".join(lines))


async def visits(ctx: Context) -> None:
    assert ctx.person is not None
    entries = await recent_entries(ctx.session, ctx.person.id)
    if not entries:
        ctx.reply("还没有走访记录。直接发走访情况就能记录，例如：\n“今天去大坝村王德明家，缺棉被两床”")
        return
    lines = ["最近的走访记录："]
    for e in entries:
        for v in e.visits:
            if v.deleted:
                continue
            n = len(v.needs)
            missed = "（未遇）" if v.outcome == "not_met" else ""
            lines.append(f"#{e.id} {fmt_date(v.visit_date)} {v.household.head_name} {v.visit_type}{missed}"
                         + (f"，需求{n}条" if n else ""))
    ctx.reply("\n".join(lines))


async def needs(ctx: Context) -> None:
    assert ctx.person is not None and ctx.scope is not None
    rows = await open_needs(ctx.session, ctx.scope, ctx.person.id)
    if not rows:
        ctx.reply("您结对的农户目前没有未解决的需求。👍")
        return
    lines = ["未解决的需求（解决后点按钮标记）："]
    buttons = []
    for k, (n, h) in enumerate(rows, 1):
        lines.append(f"{k}. {h.head_name}：{n.category}·{clip(n.item, 24)}{fmt_qty(n.qty, n.unit)}（{fmt_date(n.raised_on)}登记）")
        buttons.append((Button(f"✔ {k}. {h.head_name} {clip(n.item, 10)} 已解决", NeedMet(n.id).pack()),))
    ctx.reply("\n".join(lines), buttons=tuple(buttons[:20]))
