"""The weekly digest to supervisors (one phone-sized message, a PNG chart and a private XLSX) and the
two-day bulletin to group chats (totals only: no names, no per-village tables, no ranking)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Prefs
from handlers.outgoing import Outgoing, send_many
from handlers.reminders import hold_for_quiet
from handlers.types import ChatRef, Document, Reply
from handlers.xlsx import XLSX_MIME, Sheet, sheets_to_xlsx
from storage.messages import ledger_claim_many, ledger_set_outbox
from storage.models import OrgUnit, Person
from storage.reports import (
    DigestDetail,
    DigestStats,
    Totals,
    bulletin_groups,
    bulletin_totals,
    digest_detail,
    digest_stats,
    private_chat,
    supervisors,
)

DIGEST_KIND = "weekly_digest"
BULLETIN_KIND = "bulletin"
LEVEL_NAMES = {"district": "区县", "township": "乡镇", "village": "村", "group": "组"}

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)


def iso_week(monday: date) -> str:
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}"


def parse_week(s: str) -> date:
    """"2026-W48" → the Monday of that ISO week."""
    m = _WEEK.match(s.strip())
    if not m:
        raise ValueError(f"week must look like 2026-W48, not {s!r}")
    return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)


def previous_week(today: date) -> date:
    """The Monday of the last complete week: what a Monday-morning digest covers."""
    return today - timedelta(days=today.weekday() + 7)


def _utc_bounds(start: date, end_inclusive: date, prefs: Prefs) -> tuple[datetime, datetime]:
    a = datetime.combine(start, time(0), tzinfo=prefs.tz).astimezone(UTC)
    b = datetime.combine(end_inclusive + timedelta(days=1), time(0), tzinfo=prefs.tz).astimezone(UTC)
    return a, b


def _pct(a: int, b: int) -> str:
    return "—" if b == 0 else f"{round(100 * a / b)}%"


def _trend(now: int, before: int) -> str:
    if before == 0:
        return ""
    d = round(100 * (now - before) / before)
    return "，持平" if d == 0 else f"，{'↑' if d > 0 else '↓'}{abs(d)}%"


# ------------------------------------------------------------------------------ the weekly digest


@dataclass
class Digest:
    stats: DigestStats
    detail: DigestDetail
    text: str
    png: bytes
    xlsx: bytes

    @property
    def basename(self) -> str:
        return f"周报-{self.stats.unit_name}-{iso_week(self.stats.week_start)}"


class UnfinishedWeekError(ValueError):
    """A digest asked for a week that has not ended yet (its figures would still move)."""


def check_week_finished(week_start: date, today: date) -> None:
    we = week_start + timedelta(days=6)
    if today <= we:
        last = previous_week(today)
        raise UnfinishedWeekError(f"{iso_week(week_start)} 还没有结束（到 {we.isoformat()}），不能生成周报；"
                                  f"最近一个完整的周是 {iso_week(last)}")


def render_text(st: DigestStats) -> str:
    """Every figure, ages included, is as of the end of the week: the same text whenever it is made."""
    ws, we = st.week_start, st.week_end
    lines = [f"📊 {st.unit_name} 帮扶周报 {iso_week(ws)}（{ws.month}月{ws.day}日–{we.month}月{we.day}日）",
             f"走访 {st.visits} 户次（上周 {st.visits_prev}{_trend(st.visits, st.visits_prev)}），"
             f"走到 {st.households_visited} 户",
             f"按期覆盖 {_pct(st.households - st.households_due, st.households)}："
             f"共 {st.households} 户，到期未访 {st.households_due} 户"]
    raised = sum(v[0] for v in st.needs.values())
    met = sum(v[1] for v in st.needs.values())
    lines.append(f"需求：新增 {raised} 条，解决 {met} 条，未解决 {st.needs_open} 条")
    top = sorted(((v[0], k) for k, v in st.needs.items() if v[0]), reverse=True)[:3]
    if top:
        lines.append("　新增最多：" + "、".join(f"{k}{n}" for n, k in top))
    if st.oldest_needs:
        raised_on, cat, item, village, _head = st.oldest_needs[0]
        age = (we - raised_on).days
        lines.append(f"　最久未解决：{cat}·{item}（{village}，{age}天）")
    lines.append(f"跟进事项逾期 {st.overdue_followups} 条")
    if st.trainings_held or st.signups:
        lines.append(f"培训 {st.trainings_held} 场，报名 {st.signups} 人，到场 {st.attended} 人"
                     f"（到场率 {_pct(st.attended, st.signups)}）；本周新报名 {st.signups_made} 人")
    else:
        lines.append(f"本周没有培训；本周新报名 {st.signups_made} 人")
    if st.by_unit and len(st.by_unit) <= 6:
        # Few enough to list; in unit order, never sorted by rate: a digest is not a ranking.
        lines.append(f"各{LEVEL_NAMES.get(st.child_level, '单位')}按期覆盖：" + "，".join(
            f"{u.name}{_pct(u.households - u.due, u.households)}" for u in st.by_unit))
    elif st.by_unit:
        lines.append(f"各{LEVEL_NAMES.get(st.child_level, '单位')}情况见图表。")
    lines.append("农户名单等明细在附件表格中，仅供您本人查看，请勿转发到群里。")
    return "\n".join(lines)


_FONT: Any = None


def _cjk_font() -> Any:
    """Register the Noto Sans CJK face shipped by mplfonts once, so Chinese renders instead of boxes."""
    global _FONT
    if _FONT is None:
        from pathlib import Path

        import mplfonts
        from matplotlib import font_manager

        path = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
        font_manager.fontManager.addfont(str(path))
        _FONT = font_manager.FontProperties(fname=str(path))
    return _FONT


def render_png(st: DigestStats) -> bytes:
    """Daily visits this week vs last, and per child unit: households on schedule vs due.
    Uses the object API (no pyplot state), so it is safe in a worker thread."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = _cjk_font()
    family = font.get_name()
    n_units = len(st.by_unit)
    top_h, unit_h = 3.0, (0.28 * n_units + 0.6 if n_units else 0.0)
    height = top_h + unit_h + (0.9 if n_units else 0.4)
    fig = Figure(figsize=(7, height), dpi=100)
    FigureCanvasAgg(fig)
    with matplotlib.rc_context({"font.family": family, "axes.unicode_minus": False}):
        # Fixed margins instead of tight_layout, which draws the whole figure an extra time.
        grid = fig.add_gridspec(2 if n_units else 1, 1, height_ratios=[top_h, unit_h] if n_units else [1],
                                left=0.16, right=0.97, top=1 - 0.45 / height, bottom=0.35 / height,
                                hspace=0.9 / (height / 2))
        ax = fig.add_subplot(grid[0])
        days = [f"周{c}" for c in "一二三四五六日"]
        xs = list(range(7))
        ax.bar([x - 0.2 for x in xs], st.daily_prev, width=0.4, label="上周", color="#b0bec5")
        ax.bar([x + 0.2 for x in xs], st.daily, width=0.4, label="本周", color="#1e88e5")
        ax.set_xticks(xs, days, fontproperties=font)
        ax.set_title(f"{st.unit_name} 每日走访户次 {iso_week(st.week_start)}", fontproperties=font, loc="left")
        ax.legend(prop=font, frameon=False, ncol=2, loc="lower right", bbox_to_anchor=(1, 1))
        ax.spines[["top", "right"]].set_visible(False)
        if n_units:
            ax2 = fig.add_subplot(grid[1])
            names = [u.name for u in st.by_unit][::-1]
            ok = [u.households - u.due for u in st.by_unit][::-1]
            due = [u.due for u in st.by_unit][::-1]
            ys = list(range(n_units))
            ax2.barh(ys, ok, color="#43a047", label="按期已访")
            ax2.barh(ys, due, left=ok, color="#fb8c00", label="到期未访")
            ax2.set_yticks(ys, names, fontproperties=font)
            ax2.set_ylim(-0.6, n_units - 0.4)
            ax2.set_title(f"各{LEVEL_NAMES.get(st.child_level, '单位')}农户（户）", fontproperties=font, loc="left")
            ax2.legend(prop=font, frameon=False, ncol=2, loc="lower right", bbox_to_anchor=(1, 1))
            ax2.spines[["top", "right"]].set_visible(False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def render_xlsx(st: DigestStats, detail: DigestDetail) -> bytes:
    """The supervisor's private workbook."""
    overview: list[list[Any]] = [
        ["走访户次", st.visits, st.visits_prev],
        ["走访覆盖户数", st.households_visited, None],
        ["农户总数", st.households, None],
        ["到期未访户数", st.households_due, None],
        ["未解决需求", st.needs_open, None],
        ["逾期跟进", st.overdue_followups, None],
        ["培训场次", st.trainings_held, None],
        ["培训报名", st.signups, None],
        ["培训到场", st.attended, None],
        ["本周新报名", st.signups_made, None],
        [],
        ["日期"] + [(st.week_start + timedelta(days=i)).isoformat() for i in range(7)],
        ["本周走访", *st.daily],
        ["上周走访", *st.daily_prev],
    ]
    sheets = [Sheet("概况", ["项目", "本周", "上周"], overview)]
    if st.by_unit:
        sheets.append(Sheet(LEVEL_NAMES.get(st.child_level, "下级单位"),
                            ["单位", "农户数", "本周走访户数", "到期未访户数", "按期覆盖率"],
                            [[u.name, u.households, u.visited, u.due,
                              round((u.households - u.due) / u.households, 3) if u.households else None]
                             for u in st.by_unit]))
    sheets.append(Sheet("需求分类", ["类别", "本周新增", "本周解决", "未解决"],
                        [[cat, r, m, o] for cat, (r, m, o) in sorted(st.needs.items())]))
    sheets.append(Sheet("到期未访农户", ["村", "户主", "类型", "上次走访", "帮扶干部"],
                        _more([list(r) for r in detail.due_households], st.households_due, "户")))
    sheets.append(Sheet("逾期跟进", ["应完成", "村", "户主", "事项", "帮扶干部"],
                        _more([list(r) for r in detail.overdue_followups], st.overdue_followups, "条")))
    sheets.append(Sheet("未解决需求", ["提出日期", "村", "户主", "类别", "内容"],
                        _more([list(r) for r in detail.open_needs], st.needs_open, "条")))
    return sheets_to_xlsx(sheets)


def _more(rows: list[list[Any]], total: int, unit: str) -> list[list[Any]]:
    shown = len(rows)
    if total > shown:
        rows += [[], [f"共{total}{unit}，这里列出最早的{shown}{unit}；完整名单请让管理员用 bangfu export 导出。"]]
    return rows


def _render_files(st: DigestStats, detail: DigestDetail) -> tuple[bytes, bytes]:
    return render_png(st), render_xlsx(st, detail)


async def build_digest(session: AsyncSession, *, unit: OrgUnit, week_start: date, prefs: Prefs,
                       today: date | None = None) -> Digest:
    """Query (SQL aggregates), then draw the chart and the workbook in a worker thread so a large
    district does not stall the event loop that serves chats. Everything is as of the end of the week;
    with `today`, a week that has not ended yet is refused (UnfinishedWeekError)."""
    if today is not None:
        check_week_finished(week_start, today)
    we = week_start + timedelta(days=6)
    a, b = _utc_bounds(week_start, we, prefs)
    st = await digest_stats(session, unit=unit, week_start=week_start, cadence_days=prefs.cadence_days,
                            week_start_utc=a, week_end_utc=b)
    detail = await digest_detail(session, unit=unit, as_of=we, cadence_days=prefs.cadence_days, known_before=b)
    png, xlsx = await asyncio.to_thread(_render_files, st, detail)
    return Digest(st, detail, render_text(st), png, xlsx)


def digest_replies(d: Digest) -> list[Reply]:
    return [
        Reply(d.text, private=True),
        Reply("走访与覆盖图", photo=Document(d.basename + ".png", d.png, "image/png"), private=True),
        Reply("明细表（含农户名单，仅供您本人查看）", document=Document(d.basename + ".xlsx", d.xlsx, XLSX_MIME),
              private=True),
    ]


async def weekly_digests(session: AsyncSession, *, now: datetime, prefs: Prefs, week_start: date | None = None,
                         unit_ids: Sequence[int] | None = None) -> int:
    """Write each supervisor's digest for the week (default: the last complete one). Ledger-guarded per
    (week, supervisor); a unit's digest is built once however many supervisors share it. Returns the
    number of supervisors written to."""
    now = now.astimezone(prefs.tz)
    week_start = week_start or previous_week(now.date())
    period = iso_week(week_start)
    people: list[tuple[Person, tuple[str, str]]] = []
    for p in await supervisors(session, unit_ids=unit_ids):
        chat = await private_chat(session, p.id)
        if chat is not None:
            people.append((p, chat))
    if not people:
        return 0
    claimed = await ledger_claim_many(session, kind=DIGEST_KIND, period=period,
                                      recipients=[str(p.id) for p, _ in people])
    built: dict[int, Digest] = {}
    count = 0
    for p, (channel, chat_id) in people:
        lid = claimed.get(str(p.id))
        if lid is None or p.unit_id is None:
            continue
        if p.unit_id not in built:
            unit = await session.get(OrgUnit, p.unit_id)
            if unit is None:
                continue
            built[p.unit_id] = await build_digest(session, unit=unit, week_start=week_start, prefs=prefs,
                                                  today=now.date())
        hold = hold_for_quiet(now, prefs, p.quiet_start, p.quiet_end)
        to = ChatRef(channel, chat_id)
        ids = await send_many(session, [Outgoing(r, to, not_before=hold) for r in digest_replies(built[p.unit_id])],
                              now=now)
        await ledger_set_outbox(session, {lid: ids[(channel, chat_id)]})
        count += 1
    return count


# ------------------------------------------------------------------------------ the bulletin


def render_bulletin(t: Totals, start: date, end: date, unit_name: str | None) -> str:
    span = f"{start.month}月{start.day}日" + ("" if start == end else f"–{end.month}月{end.day}日")
    who = f"{unit_name} " if unit_name else ""
    lines = [f"📢 {who}帮扶通报（{span}）",
             f"走访 {t.visits} 户次，走到 {t.households_visited} 户",
             f"需求新增 {t.needs_raised} 条，解决 {t.needs_met} 条",
             f"逾期跟进 {t.followups_overdue} 条待办",
             f"按期走访覆盖 {_pct(t.households - t.households_due, t.households)}（共 {t.households} 户）"]
    if t.trainings_held:
        lines.append(f"培训 {t.trainings_held} 场，报名 {t.signups} 人，到场 {t.attended} 人")
    lines.append("各位辛苦了！到期农户的提醒已私信发给各自的帮扶干部。")
    return "\n".join(lines)


async def bulletins(session: AsyncSession, *, now: datetime, prefs: Prefs, days: int = 2,
                    robots: Sequence[str] = (), day: date | None = None) -> int:
    """Totals for the `days` days before `day` (default today) to every bulletin group and WeCom robot;
    ledger-guarded per (day, chat). Groups with a unit see their subtree; robots see everything."""
    now = now.astimezone(prefs.tz)
    day = day or now.date()
    end = day - timedelta(days=1)
    start = day - timedelta(days=max(1, days))
    a, b = _utc_bounds(start, end, prefs)
    targets: dict[tuple[str, str], str | None] = {}
    for channel, chat_id, path in await bulletin_groups(session):
        targets[(channel, chat_id)] = path
    for name in robots:
        targets.setdefault(("wecom", f"robot:{name}"), None)
    if not targets:
        return 0
    claimed = await ledger_claim_many(session, kind=BULLETIN_KIND, period=day.isoformat(),
                                      recipients=[f"{c}:{i}" for c, i in targets])
    names: dict[str, str] = {}
    if any(p for p in targets.values()):
        for path, name in (await session.execute(select(OrgUnit.path, OrgUnit.name).where(
                OrgUnit.path.in_([p for p in targets.values() if p])))).all():
            names[path] = name
    cache: dict[str | None, str] = {}
    rows, lids = [], {}
    for (channel, chat_id), path in targets.items():
        lid = claimed.get(f"{channel}:{chat_id}")
        if lid is None:
            continue
        if path not in cache:
            totals = await bulletin_totals(session, path=path, start=start, end=end, start_utc=a, end_utc=b,
                                           cadence_days=prefs.cadence_days)
            cache[path] = render_bulletin(totals, start, end, names.get(path) if path else None)
        rows.append(Outgoing(Reply(cache[path]), ChatRef(channel, chat_id, is_group=True)))
        lids[(channel, chat_id)] = lid
    ids = await send_many(session, rows, now=now)
    await ledger_set_outbox(session, {lid: ids[key] for key, lid in lids.items()})
    return len(rows)
