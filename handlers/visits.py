"""Visit logging: free text → entry → one visit per household, the card, choices, corrections, undo,
edits and attachments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeGuard

from sqlalchemy import ColumnElement, or_, select

from handlers import resolver
from handlers.callbacks import AddHousehold, CardAction, PickDate, PickHousehold, RegistryChangeAction
from handlers.context import Context
from handlers.format import clip, fmt_change, fmt_date, fmt_qty, mask_personal
from handlers.resolver import get_registry, resolve_written
from handlers.text import Correction, HouseholdRef, parse, parse_correction
from handlers.text.registry import kin_mentions, villages_in_text
from handlers.text.restate import mentions, restate_quantity
from handlers.types import Button, Reply
from storage import registry_changes as rcs
from storage.accounts import (
    HouseholdLabel,
    home_village,
    household_labels,
    in_area,
    in_scope,
    lookup_area,
    paired_household_ids,
    scope_ids,
)
from storage.models import Entry, Household, Need, OrgUnit, Pairing, RegistryChange, Visit, VisitAttachment
from storage.visits import (
    FollowUpIn,
    NeedIn,
    add_visit,
    clear_visits,
    entry_by_source,
    last_entry,
    load_entry,
    remove_added_households,
    set_deleted,
)

AUTO_REASONS = ("exact", "member")
OUTSIDE_AREA = "不在您的乡镇范围内"


def source_key(ctx: Context) -> str:
    inc = ctx.incoming
    return f"{inc.channel}:{inc.chat.chat_id}:{inc.message_id}"


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _pick(v: Any, i: int) -> Any:
    """A per-household field is a scalar (same for all) or a list parallel to the heads."""
    if isinstance(v, list):
        return v[i] if i < len(v) else None
    return v


def _is_amb(v: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(v, dict) and v.get("ambiguous") is True


def _to_date(v: Any) -> date | None:
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            return None
    if isinstance(v, dict) and not _is_amb(v):
        if v.get("by"):
            return _to_date(v["by"])
        rng = v.get("range")
        if isinstance(rng, list) and rng:
            return _to_date(rng[0])
    return None


async def _home_village(ctx: Context) -> str | None:
    if ctx.sender is not None:  # cached with the sender, valid for this update
        return ctx.sender.home_village
    village = await home_village(ctx.session, ctx.person.unit_id if ctx.person else None)
    return village.name if village is not None else None


async def _paired(ctx: Context) -> frozenset[int]:
    assert ctx.person is not None
    if ctx.sender is not None:
        return ctx.sender.paired
    return frozenset(await paired_household_ids(ctx.session, ctx.person.id))


# ---------------------------------------------------------------- logging a visit


async def log_visit(ctx: Context, parsed: dict[str, Any]) -> None:
    assert ctx.person is not None
    key = source_key(ctx)
    pending = await _resolve_heads(ctx, parsed, ctx.incoming.text)
    # Written once, in its final state when no question is left (most visits): no UPDATE after the INSERT.
    state = "pending"
    if pending is None:
        state = "unresolved"
    elif _settled(pending):
        state = "saved" if any(x["hid"] for x in pending["heads"]) else "dropped"
    entry = Entry(source_key=key, person_id=ctx.person.id, channel=ctx.incoming.channel,
                  chat_id=ctx.chat.chat_id, raw_text=ctx.incoming.text, parse=parsed, state=state,
                  pending=pending, created_at=ctx.now, updated_at=ctx.now, history=[])
    ctx.session.add(entry)
    await ctx.session.flush()
    if pending is None:
        _reply_unresolved(ctx)
        return
    await _continue(ctx, entry)


def _settled(pending: dict[str, Any]) -> bool:
    """Every household and the date are known: `_continue` will save without asking."""
    if any(x["hid"] is None and not x.get("skip") for x in pending["heads"]):
        return False
    return not (pending.get("date_cands") and not pending.get("date"))


def _reply_unresolved(ctx: Context) -> None:
    ctx.reply(
        "我看出这是一条走访记录，但没认出是哪一户。\n"
        "原文已保存。请补一句户主姓名和村，例如：\n“今天去大坝村王德明家，5口人，缺棉被两床”",
    )


async def resolve_entry(ctx: Context, entry: Entry) -> None:
    """Take an entry kept while asking what the message is (see handlers.intent_ask) down the visit path."""
    entry.state = "pending"
    await _start_resolution(ctx, entry, entry.parse)


async def _start_resolution(ctx: Context, entry: Entry, parsed: dict[str, Any]) -> None:
    pending = await _resolve_heads(ctx, parsed, entry.raw_text)
    if pending is None:
        entry.state = "unresolved"
        _reply_unresolved(ctx)
        return
    entry.pending = pending
    await _continue(ctx, entry)


async def _resolve_heads(ctx: Context, parsed: dict[str, Any], raw_text: str) -> dict[str, Any] | None:
    """The entry's `pending` (candidates per household, the date question); None without a household."""
    assert ctx.person is not None and ctx.scope is not None
    heads = _as_list(parsed.get("household_head"))
    if not heads:
        # 看了老王 / 去杨奶奶家: a kin reference the parse did not take for a household still names candidates
        heads = kin_mentions(raw_text)[:1]
    if not heads:
        return None
    reg = await get_registry(ctx.session)
    paired = await _paired(ctx)
    area = await lookup_area(ctx.session, ctx.person)
    home = await _home_village(ctx)
    # A bare village name the parse missed (鲍屯韦国祥, 高坡王德明) still decides, when the message names one.
    in_text = villages_in_text(raw_text, reg.villages) if len(heads) == 1 else []
    items: list[dict[str, Any]] = []
    for i, head in enumerate(heads):
        village = _pick(parsed.get("village"), i)
        village = village if isinstance(village, str) else (in_text[0] if len(in_text) == 1 else None)
        name = head if isinstance(head, str) else str(head.get("raw", "")) if isinstance(head, dict) else ""
        res = await resolve_written(ctx.session, reg, name, area=area, paired=paired, village=village,
                                    home_village=home, year=ctx.today.year)
        item: dict[str, Any] = {"i": i, "name": name, "village": village, "cands": list(res.options), "hid": None,
                                "mode": res.outcome, "exists": res.exists}
        if res.outcome == "attach":
            item["hid"], item["how"] = res.options[0], "auto"
        elif res.outcome == "outside":
            # Plainly, with nothing about the household: it is another township's.
            item["skip"] = True
            ctx.reply(f"“{name}”{OUTSIDE_AREA}，这一户没有记录。")
        items.append(item)
    date_v = parsed.get("visit_date")
    return {"heads": items, "date_cands": date_v.get("candidates") if _is_amb(date_v) else None, "date": None}


async def _continue(ctx: Context, entry: Entry) -> None:
    """Ask the next open question, or save the visits when every question is answered."""
    pend = entry.pending
    for item in pend["heads"]:
        if item["hid"] is None and not item.get("skip"):
            await _ask_household(ctx, entry, item)
            return
    if pend.get("date_cands") and not pend.get("date"):
        buttons = tuple(
            (Button(fmt_date(date.fromisoformat(d), ctx.today), PickDate(entry.id, d).pack()),)
            for d in pend["date_cands"]
        )
        ctx.reply(f"“{clip(entry.raw_text, 20)}”里的日期有两种理解，是哪一天？", buttons=buttons,
                  card_key=f"ask:{entry.id}")
        return
    await _save(ctx, entry)


def option_label(h: HouseholdLabel) -> str:
    """王德明（大坝村一组，5口）: 村, 组 and 人口, enough to tell namesakes apart without personal data."""
    size = f"，{h.size}口" if h.size else "，人口不详"
    return f"{h.head}（{h.village}{h.group or ''}{size}）"


async def _ask_household(ctx: Context, entry: Entry, item: dict[str, Any]) -> None:
    labels = await household_labels(ctx.session, item["cands"])
    rows: list[tuple[Button, ...]] = []
    for k, hid in enumerate(h for h in item["cands"] if h in labels):
        confirm_first = item.get("mode") == "confirm" and k == 0
        text = ("是 " if confirm_first else "") + option_label(labels[hid])
        rows.append((Button(text, PickHousehold(entry.id, item["i"], hid).pack()),))
    if rows:
        rows.append((Button("都不是", PickHousehold(entry.id, item["i"], 0).pack()),))
        if item.get("mode") == "confirm":
            question = f"“{item['name']}”是这一户吗？{option_label(labels[item['cands'][0]])}"
        else:
            question = f"“{item['name']}”有{len(rows) - 1}户，是哪一户？"
        ctx.reply(question, buttons=tuple(rows), card_key=f"ask:{entry.id}")
        return
    if item.get("mode") == "none":
        ctx.reply(f"没认出“{item['name']}”是哪一户，请写户主全名重新发送，或者不记这一户。",
                  buttons=((Button("不记这一户", PickHousehold(entry.id, item["i"], -1).pack()),),),
                  card_key=f"ask:{entry.id}")
        return
    if item.get("exists"):
        # The name, or one sounding like it, is in the registry of the area: adding it would make a duplicate.
        ctx.reply(f"花名册里已有“{item['name']}”或读音相近的户，不能重复添加。\n"
                  "请写上户主全名和村名重新发送，或者不记这一户。",
                  buttons=((Button("不记这一户", PickHousehold(entry.id, item["i"], -1).pack()),),),
                  card_key=f"ask:{entry.id}")
        return
    village = item.get("village") or await _home_village(ctx)
    where = f"（{village}）" if village else ""
    buttons: list[tuple[Button, ...]] = []
    if village:
        buttons.append((Button(f"添加新农户 {item['name']}{where}", AddHousehold(entry.id, item["i"]).pack()),))
    buttons.append((Button("不记这一户", PickHousehold(entry.id, item["i"], -1).pack()),))
    hint = "" if village else "\n不知道是哪个村，无法添加。请重发并写上村名。"
    ctx.reply(f"花名册里没有找到“{item['name']}”{where}。{hint}", buttons=tuple(buttons),
              card_key=f"ask:{entry.id}")


async def _pending_entry(ctx: Context, entry_id: int) -> Entry | None:
    """The sender's own entry still waiting for an answer; otherwise says so and returns None."""
    entry = await _own_entry(ctx, entry_id)
    if entry is None or entry.state != "pending":
        ctx.reply("这条记录已经处理过了。")
        return None
    return entry


def _pending_item(entry: Entry, index: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Copies of the entry's pending households (JSON columns must be reassigned to be saved) and the
    one with this index."""
    items = [dict(x) for x in entry.pending["heads"]]
    return items, next((x for x in items if x["i"] == index), None)


async def on_pick(ctx: Context, entry_id: int, index: int, hid: int) -> None:
    entry = await _pending_entry(ctx, entry_id)
    if entry is None:
        return
    items, item = _pending_item(entry, index)
    if item is None:
        return
    if hid > 0:
        assert ctx.person is not None
        area = await lookup_area(ctx.session, ctx.person)
        if hid not in item["cands"] or not await in_area(ctx.session, area, [hid]):
            ctx.reply("这一户不在您的帮扶范围内。")  # a forged or stale button: say no more than that
            return
        item["hid"], item["how"] = hid, "picked"
    elif hid == 0:
        item["cands"] = []  # "none of these": offer to add it instead
    else:
        item["skip"] = True
    entry.pending = {**entry.pending, "heads": items}
    await _continue(ctx, entry)


async def on_add_household(ctx: Context, entry_id: int, index: int) -> None:
    entry = await _pending_entry(ctx, entry_id)
    if entry is None:
        return
    items, item = _pending_item(entry, index)
    if item is None:
        return
    if item.get("exists") or item.get("mode") not in (None, "new"):
        ctx.reply(f"花名册里已有“{item['name']}”或读音相近的户，不能重复添加。")
        return
    village_name = item.get("village") or await _home_village(ctx)
    villages = await _villages_allowed(ctx, village_name)
    if len(villages) != 1:
        why = "有重名的村" if villages else "不在您负责的范围内，或花名册里没有这个村"
        ctx.reply(f"不能在“{village_name}”添加农户：{why}。请联系管理员导入花名册。")
        return
    village = villages[0]
    h = Household(natural_key=f"{village.id}||{item['name']}", village_id=village.id, unit_id=village.id,
                  head_name=item["name"], htype="一般户", created_at=ctx.now, updated_at=ctx.now)
    ctx.session.add(h)
    await ctx.session.flush()
    assert ctx.person is not None
    ctx.session.add(Pairing(person_id=ctx.person.id, household_id=h.id, since=ctx.now))
    resolver.added(ctx.session, HouseholdRef(id=h.id, head=h.head_name, village=village.name))
    item["hid"], item["how"] = h.id, "added"
    entry.pending = {**entry.pending, "heads": items}
    await _continue(ctx, entry)


async def _villages_allowed(ctx: Context, name: str | None) -> list[OrgUnit]:
    """Villages of that name where this person may add a household: anywhere for an admin; otherwise
    inside their own unit's subtree or where they already have paired households."""
    assert ctx.person is not None and ctx.scope is not None
    if not name:
        return []
    q = select(OrgUnit).where(OrgUnit.name == name, OrgUnit.level == "village")
    if not ctx.scope.everything:
        paired_villages = (select(Household.village_id).join(Pairing, Pairing.household_id == Household.id)
                           .where(Pairing.person_id == ctx.person.id))
        own = await ctx.session.get(OrgUnit, ctx.person.unit_id) if ctx.person.unit_id else None
        conds: list[ColumnElement[bool]] = [OrgUnit.id.in_(paired_villages)]
        if own is not None:
            conds.append(OrgUnit.path.startswith(own.path))
        q = q.where(or_(*conds))
    return list((await ctx.session.execute(q)).scalars())


async def on_pick_date(ctx: Context, entry_id: int, iso: str) -> None:
    entry = await _pending_entry(ctx, entry_id)
    if entry is None or iso not in (entry.pending.get("date_cands") or []):
        return
    entry.pending = {**entry.pending, "date": iso}
    await _continue(ctx, entry)


def _visit_date(ctx: Context, entry: Entry, i: int) -> date:
    chosen = entry.pending.get("date")
    if chosen:
        return date.fromisoformat(chosen)
    d = _to_date(_pick(entry.parse.get("visit_date"), i))
    # No date cue means today, in the deployment's time zone.
    return d if d is not None else ctx.today


def _needs_for(parsed: dict[str, Any], name: str, n_heads: int) -> list[NeedIn]:
    out = []
    for n in parsed.get("needs") or []:
        if not isinstance(n, dict):
            continue
        if n_heads > 1 and n.get("household") not in (None, name):
            continue
        cat = n.get("category")
        if _is_amb(cat):
            cat = (cat.get("candidates") or ["其他"])[0]
        qty = n.get("qty")
        out.append(NeedIn(category=str(cat or "其他"), item=str(n.get("item") or "")[:128],
                          qty=float(qty) if isinstance(qty, (int, float)) and qty >= 0 else None,
                          unit=n.get("unit") if isinstance(n.get("unit"), str) else None,
                          status="met" if n.get("status") == "met" else "open"))
    return out


def _follow_ups_for(parsed: dict[str, Any], name: str, n_heads: int) -> list[FollowUpIn]:
    out = []
    for f in parsed.get("follow_ups") or []:
        if not isinstance(f, dict):
            continue
        if n_heads > 1 and f.get("household") not in (None, name):
            continue
        due = f.get("due")
        raw = due.get("raw") if isinstance(due, dict) else None
        out.append(FollowUpIn(action=str(f.get("action") or "")[:200], due=_to_date(due), due_raw=raw))
    return out


async def _save(ctx: Context, entry: Entry) -> None:
    assert ctx.person is not None
    parsed = entry.parse
    heads = [x for x in entry.pending["heads"] if x["hid"]]
    n_heads = len(entry.pending["heads"])
    if not heads:
        entry.state = "dropped"
        if any(x.get("mode") != "outside" for x in entry.pending["heads"]):  # outside ones were answered already
            ctx.reply("好的，这条没有记成走访。原文已保存，需要时可以重发。")
        return
    vtype = parsed.get("visit_type")
    vtype = vtype if isinstance(vtype, str) else "入户走访"
    proposals: list[rcs.Proposal] = []
    for item in heads:
        i = item["i"]
        size = _pick(parsed.get("household_size"), i)
        size = size if isinstance(size, int) and 0 < size <= 30 else None
        await add_visit(
            ctx.session, entry=entry, index=i, household_id=item["hid"], cadre_id=ctx.person.id,
            visit_date=_visit_date(ctx, entry, i), visit_type=vtype, household_size=size,
            needs=_needs_for(parsed, item["name"], n_heads),
            follow_ups=_follow_ups_for(parsed, item["name"], n_heads), now=ctx.now,
            outcome="not_met" if _pick(parsed.get("visit_outcome"), i) == "not_met" else "met",
        )
        # Registry fields stated in chat are proposals: the card asks before the registry changes.
        if size is not None:
            proposals.append(rcs.Proposal(item["hid"], "size", str(size)))
        phone = parsed.get("phone")
        if n_heads == 1 and isinstance(phone, str) and re.fullmatch(r"1[3-9]\d{9}", phone):
            proposals.append(rcs.Proposal(item["hid"], "phone", phone))
    # Household facts are changed only by those whose scope holds the household: a visit to a colleague's
    # household (allowed across the township) records what was said but proposes no registry change.
    assert ctx.scope is not None
    own = await scope_ids(ctx.session, ctx.scope, {p.household_id for p in proposals})
    proposals = [p for p in proposals if p.household_id in own]
    await rcs.propose(ctx.session, entry_id=entry.id, person_id=ctx.person.id, proposals=proposals, now=ctx.now)
    entry.state = "saved"
    await _reply_card(ctx, entry.id)


# ---------------------------------------------------------------- the card


async def card_text(ctx: Context, entry: Entry, changes: Sequence[RegistryChange] | None = None) -> str:
    if entry.state == "undone":
        return f"↩️ 已撤销这条走访记录（#{entry.id}）。原文仍保存在系统里。"
    if changes is None:
        changes = await rcs.for_entry(ctx.session, entry.id)
    visits = [v for v in entry.visits if not v.deleted]
    if visits and all(v.outcome == "not_met" for v in visits):
        lines = [f"📝 已记录未遇（#{entry.id}）：没见到人，不算一次走访"]
    else:
        lines = [f"✅ 已记录走访（#{entry.id}）"]
    for v in visits:
        h = v.household
        size = f"，{h.size}口" if h.size else ""
        if len(visits) > 1:
            lines.append("")
        lines.append(f"户主：{h.head_name}（{h.village.name}{size}）")
        lines.append(f"日期：{fmt_date(v.visit_date, ctx.today)}")
        lines.append(f"方式：{v.visit_type}")
        if v.outcome == "not_met":
            lines.append("结果：未遇（没见到人，不计入走访次数）")
        for rc in changes:
            if rc.household_id == v.household_id:
                lines.append(fmt_change(rc.field, rc.old_value, rc.new_value, confirmed=rc.status == "confirmed"))
        if v.needs:
            lines.append("需求：")
            for k, n in enumerate(v.needs, 1):
                state = "已解决" if n.status == "met" else "未解决"
                lines.append(f"  {k}. {n.category}·{n.item}{fmt_qty(n.qty, n.unit)}（{state}）")
        else:
            lines.append("需求：无")
        if v.follow_ups:
            lines.append("后续：")
            for f in v.follow_ups:
                due = f" — {fmt_date(f.due)}" if f.due else ""
                lines.append(f"  · {f.action}{due}")
    lines.append("")
    lines.append("有误请直接回复本条，如“改成昨天”“棉被是3床”“删掉第1条需求”。")
    return mask_personal("\n".join(lines))


def card_buttons(entry: Entry, changes: Sequence[RegistryChange] = ()) -> tuple[tuple[Button, ...], ...]:
    if entry.state != "saved":
        return ()
    rows: list[tuple[Button, ...]] = [(Button("撤销", CardAction(entry.id, "undo").pack()),
                                     Button("修改", CardAction(entry.id, "edit").pack()))]
    for rc in changes:
        if rc.status == "proposed":
            rows.append((Button(fmt_change(rc.field, rc.old_value, rc.new_value, button="confirm"),
                                RegistryChangeAction(rc.id, "ok").pack()),))
        elif rc.status == "confirmed":
            rows.append((Button(fmt_change(rc.field, rc.old_value, rc.new_value, button="restore"),
                                RegistryChangeAction(rc.id, "back").pack()),))
    return tuple(rows)


async def _reply_card(ctx: Context, entry_id: int, *, edit: bool = False) -> Reply:
    entry = await load_entry(ctx.session, entry_id)
    assert entry is not None
    changes = await rcs.for_entry(ctx.session, entry.id)
    return ctx.reply(await card_text(ctx, entry, changes), buttons=card_buttons(entry, changes),
                     card_key=f"entry:{entry.id}", edit_card=edit)


async def on_registry_change(ctx: Context, change_id: int, action: str) -> None:
    """The card's 确认 / 恢复 button for a household field stated in the message."""
    assert ctx.person is not None and ctx.scope is not None
    rc = await ctx.session.get(RegistryChange, change_id)
    entry = await _own_entry(ctx, rc.entry_id) if rc is not None and rc.entry_id is not None else None
    if rc is None or entry is None or not await in_scope(ctx.session, ctx.scope, rc.household_id):
        ctx.reply("没有找到这项修改，或不在您的帮扶范围内。")
        return
    if entry.state != "saved":
        ctx.reply("这条走访记录已撤销，花名册没有改动。")
        return
    what = fmt_change(rc.field, rc.old_value, rc.new_value)
    if action == "ok":
        res = await rcs.confirm(ctx.session, rc, person_id=ctx.person.id, now=ctx.now)
        if res is rcs.Outcome.APPLIED:
            msg = f"已更新花名册：{what} ✅（原值已保留，可在卡片上恢复）"
        elif res is rcs.Outcome.STALE:
            msg = f"花名册在这之后已经更新过（如重新导入），以花名册为准，没有改动：{what}"
        else:
            msg = "这项修改已经处理过了。"
    elif action == "back":
        res = await rcs.restore(ctx.session, rc, actor=f"person:{ctx.person.id}", person_id=ctx.person.id,
                                now=ctx.now, reason="restored from card")
        msg = {rcs.Outcome.APPLIED: f"已恢复花名册原值：{what} 已撤回。",
               rcs.Outcome.STALE: "花名册在这之后又改过了，没有恢复。"}.get(res, "这项修改已经处理过了。")
    else:
        raise ValueError(action)
    await _reply_card(ctx, entry.id, edit=True)
    ctx.reply(msg)


async def _own_entry(ctx: Context, entry_id: int) -> Entry | None:
    entry = await load_entry(ctx.session, entry_id)
    if entry is None or ctx.person is None or entry.person_id != ctx.person.id:
        return None
    return entry


# ---------------------------------------------------------------- undo, corrections, edits


async def undo(ctx: Context, entry_id: int | None = None) -> None:
    assert ctx.person is not None
    entry = await (_own_entry(ctx, entry_id) if entry_id else last_entry(ctx.session, ctx.person.id))
    if entry is None or entry.state != "saved":
        ctx.reply("没有可以撤销的走访记录。")
        return
    await set_deleted(ctx.session, entry, True)
    # A registry value this entry changed goes back; its open proposals go away.
    await rcs.revert_entry(ctx.session, entry.id, actor=f"person:{ctx.person.id}", person_id=ctx.person.id,
                           now=ctx.now, reason="undo")
    # A household added from this message (the 添加 button) goes too, unless something else uses it by now.
    added = [x["hid"] for x in (entry.pending or {}).get("heads", []) if x.get("how") == "added" and x.get("hid")]
    removed = await remove_added_households(ctx.session, entry, added)
    entry.state = "undone"
    entry.history = [*entry.history, {"at": ctx.now.isoformat(), "change": "undo", "removed_households": removed}]
    await _reply_card(ctx, entry.id, edit=True)
    also = f"随这条记录添加的农户“{'、'.join(removed)}”也已删除。" if removed else ""
    ctx.reply(f"已撤销走访记录 #{entry.id}。{also}")


async def on_card_edit_button(ctx: Context, entry_id: int) -> None:
    ctx.reply("请直接“回复”那张走访卡片，写要改的内容，例如：\n"
              "· 改成昨天\n· 是王德明不是王德民\n· 棉被是3床\n· 删掉第二条需求\n· 改成电话回访")


async def correct(ctx: Context, entry_id: int, text: str) -> bool:
    """Apply a plain-language correction to a card. False when the text is not a correction."""
    entry = await _own_entry(ctx, entry_id)
    if entry is None:
        return False
    corr = parse_correction(text, ctx.now)
    if corr is None:
        return False
    if entry.state != "saved":
        ctx.reply("这条记录已撤销或还没保存，无法修改。")
        return True
    visits = [v for v in entry.visits if not v.deleted]
    change: dict[str, Any] = {"at": ctx.now.isoformat(), "text": text, "kind": corr.kind}
    msg = await _apply_correction(ctx, entry, visits, corr, change)
    if msg is not None:
        ctx.reply(msg)
        return True
    entry.history = [*entry.history, change]
    entry.updated_at = ctx.now
    await ctx.session.flush()
    await _reply_card(ctx, entry.id, edit=True)
    ctx.reply("已修改 ✅")
    return True


async def correct_latest(ctx: Context, text: str) -> bool:
    """A correction sent without replying to a card (WeCom cannot quote) applies to the newest entry
    of the last day."""
    assert ctx.person is not None
    if parse_correction(text, ctx.now) is None:
        return False
    last = await last_entry(ctx.session, ctx.person.id)
    if last is None or ctx.now - last.created_at > timedelta(days=1):
        return False
    return await correct(ctx, last.id, text)


async def _apply_correction(ctx: Context, entry: Entry, visits: list[Visit], corr: Correction,
                            change: dict[str, Any]) -> str | None:
    """Returns an error message for the user, or None when applied (recording old/new in `change`)."""
    kind = corr.kind
    if kind == "date":
        new = _to_date(corr.date)
        if new is None:
            return "没看懂要改成哪天，请写具体日期，如“改成11月20日”。"
        change["old"] = [v.visit_date.isoformat() for v in visits]
        for v in visits:
            v.visit_date = new
            # A need is raised on its visit's day: it moves with the visit.
            for n in v.needs:
                n.raised_on = new
        change["new"] = new.isoformat()
        return None
    if kind == "visit_type" and corr.visit_type:
        change["old"] = [v.visit_type for v in visits]
        for v in visits:
            v.visit_type = corr.visit_type
        change["new"] = corr.visit_type
        return None
    if kind == "size" and corr.size:
        change["old"] = [v.household_size for v in visits]
        for v in visits:
            v.household_size = corr.size
        # Still only a proposal: the card asks before the registry changes.
        assert ctx.person is not None and ctx.scope is not None
        own = await scope_ids(ctx.session, ctx.scope, {v.household_id for v in visits})
        await rcs.propose(ctx.session, entry_id=entry.id, person_id=ctx.person.id, now=ctx.now,
                          proposals=[rcs.Proposal(v.household_id, "size", str(corr.size)) for v in visits
                                     if v.household_id in own])
        change["new"] = corr.size
        return None
    if kind == "household" and corr.household:
        return await _correct_household(ctx, visits, corr.household, corr.wrong, change)
    needs = [n for v in visits for n in v.needs]
    if kind == "need_qty" and corr.qty is not None:
        target = _find_need(needs, corr.item)
        if target is None:
            return f"没有找到“{corr.item or ''}”这条需求。"
        old_qty = None if target.qty is None else float(target.qty)
        change["old"] = {"need": target.id, "qty": old_qty}
        target.qty = Decimal(str(corr.qty))
        if corr.unit:
            target.unit = corr.unit
        # The follow-up that states the quantity ("缺棉被两床送过去") says the new one.
        for v in visits:
            if target in v.needs:
                for f in v.follow_ups:
                    f.action = restate_quantity(f.action, target.item, old_qty, corr.qty, target.unit)[:200]
        change["new"] = corr.qty
        return None
    if kind == "delete_need" and corr.index is not None:
        idx = corr.index - 1
        if not 0 <= idx < len(needs):
            return f"没有第{idx + 1}条需求（共{len(needs)}条）。"
        n = needs[idx]
        change["old"] = {"need": n.id, "item": n.item, "category": n.category}
        # A follow-up about that need alone goes with it ("缺棉被两床送过去" once 棉被 is struck out).
        others = [m for m in needs if m is not n]
        for v in visits:
            if n in v.needs:
                for f in list(v.follow_ups):
                    if mentions(f.action, n.item) and not any(mentions(f.action, m.item) for m in others):
                        change["old"].setdefault("follow_ups", []).append(f.action)
                        await ctx.session.delete(f)
        await ctx.session.delete(n)
        return None
    if kind == "add_need" and corr.need:
        v = visits[0]
        for ni in _needs_for({"needs": [corr.need]}, "", 1):
            ctx.session.add(Need(visit_id=v.id, household_id=v.household_id, category=ni.category, item=ni.item,
                                 qty=None if ni.qty is None else Decimal(str(ni.qty)), unit=ni.unit,
                                 status=ni.status, raised_on=v.visit_date,
                                 met_at=ctx.now if ni.status == "met" else None))
        change["new"] = corr.need
        return None
    return "这个改法我还不会，请换个说法，例如“改成昨天”“棉被是3床”“删掉第1条需求”。"


def _find_need(needs: list[Need], item: str | None) -> Need | None:
    if not item:
        return needs[0] if len(needs) == 1 else None
    for n in needs:
        if item in n.item or n.item in item:
            return n
    return None


async def _correct_household(ctx: Context, visits: list[Visit], new_name: str, old_name: str | None,
                             change: dict[str, Any]) -> str | None:
    assert ctx.person is not None and ctx.scope is not None
    target = visits[0] if len(visits) == 1 else next(
        (v for v in visits if old_name and v.household.head_name == old_name), None)
    if target is None:
        return "有几户，不知道改哪一户，请写“是A不是B”。"
    reg = await get_registry(ctx.session)
    paired = await _paired(ctx)
    cands = [c for c in reg.resolve(new_name, prefer_ids=paired) if c.reason in AUTO_REASONS]
    # Naming the household outright is the confirmation: any household of the lookup area may be set here.
    allowed = await in_area(ctx.session, await lookup_area(ctx.session, ctx.person), [c.household.id for c in cands])
    cands = [c for c in cands if c.household.id in allowed]
    if not cands:
        return f"花名册里没有找到“{new_name}”。"
    if len(cands) > 1:
        return f"“{new_name}”有{len(cands)}户，请在名字前加上村名。"
    hid = cands[0].household.id
    change["old"] = {"visit": target.id, "household": target.household_id}
    if target.entry_id is not None:
        await rcs.rehome(ctx.session, target.entry_id, old_household=target.household_id, new_household=hid,
                         person_id=ctx.person.id, now=ctx.now)
    target.household_id = hid
    for n in target.needs:
        n.household_id = hid
    for f in target.follow_ups:
        f.household_id = hid
    change["new"] = hid
    return None


async def on_edited(ctx: Context) -> None:
    """An edited chat message re-derives its entry's visits from the new text."""
    assert ctx.person is not None
    key = source_key(ctx)
    entry = await entry_by_source(ctx.session, key)
    if entry is None or entry.person_id != ctx.person.id:
        ctx.inbox_state = "ignored"
        return
    parsed = parse(ctx.incoming.text, ctx.now, await get_registry(ctx.session))
    if entry.state == "asking":  # still waiting for 记走访 / 报名培训 / 都不是: the choice runs on the new text
        entry.raw_text, entry.parse = ctx.incoming.text, parsed
        ctx.inbox_state = "ignored"
        return
    if entry.state in ("note", "signup"):  # the cadre chose that this is not a visit
        ctx.inbox_state = "ignored"
        return
    if parsed.get("intent") != "visit_log":
        ctx.reply(f"修改后的消息看起来不是走访记录了。走访记录 #{entry.id} 保持不变；要删除请发“撤销”。")
        return
    old = [{"household": v.household_id, "date": v.visit_date.isoformat()} for v in entry.visits]
    entry.raw_text = ctx.incoming.text
    entry.parse = parsed
    entry.history = [*entry.history, {"at": ctx.now.isoformat(), "change": "edited", "old": old}]
    entry.state = "pending"
    await rcs.revert_entry(ctx.session, entry.id, actor=f"person:{ctx.person.id}", person_id=ctx.person.id,
                           now=ctx.now, reason="message edited")
    await clear_visits(ctx.session, entry)
    # The bulk delete bypassed the ORM: forget the loaded collection so the card reloads it.
    ctx.session.expire(entry, ["visits"])
    await _start_resolution(ctx, entry, parsed)
    for r in ctx.replies:
        if r.card_key == f"entry:{entry.id}":
            r.edit_card = True


# ---------------------------------------------------------------- attachments


async def attach(ctx: Context) -> None:
    assert ctx.person is not None
    inc = ctx.incoming
    too_big = [a for a in inc.attachments if a.size and a.size > ctx.prefs.max_file_bytes]
    if too_big:
        mb = ctx.prefs.max_file_bytes / 1_000_000
        size = (too_big[0].size or 0) / 1_000_000
        ctx.reply(f"文件太大（{size:.1f} MB），上限是 {mb:.0f} MB，没有保存。请压缩后再发。")
        return
    entry: Entry | None = None
    if ctx.card_key and ctx.card_key.startswith("entry:"):
        entry = await _own_entry(ctx, int(ctx.card_key.split(":")[1]))
    if entry is None:
        last = await last_entry(ctx.session, ctx.person.id)
        window = timedelta(minutes=ctx.prefs.attach_window_minutes)
        if last is not None and ctx.now - last.created_at <= window:
            entry = last
    if entry is None or entry.state != "saved":
        ctx.reply("收到了，但不知道附到哪条走访记录。请“回复”对应的走访卡片再发送，或先发走访内容。")
        ctx.inbox_state = "unmatched"
        return
    for v in entry.visits:
        if v.deleted:
            continue
        for a in inc.attachments:
            ctx.session.add(VisitAttachment(
                visit_id=v.id, kind=a.kind, channel=inc.channel, file_id=a.file_id, file_name=a.file_name,
                mime=a.mime, size=a.size, latitude=a.latitude, longitude=a.longitude, created_at=ctx.now))
    kinds = {"photo": "照片", "voice": "语音", "location": "位置", "document": "文件", "video": "视频"}
    what = "、".join(sorted({kinds.get(a.kind, "附件") for a in inc.attachments}))
    ctx.reply(f"📎 {what}已附到走访记录 #{entry.id}。")


async def on_need_met(ctx: Context, need_id: int) -> None:
    assert ctx.scope is not None and ctx.person is not None
    need = await ctx.session.get(Need, need_id)
    if need is None or not await in_scope(ctx.session, ctx.scope, need.household_id):
        ctx.reply("没有找到这条需求，或不在您的帮扶范围内。")
        return
    if need.status == "met":
        ctx.reply("这条需求已经标记为已解决。")
        return
    need.status, need.met_at, need.met_by_id = "met", ctx.now, ctx.person.id
    ctx.reply(f"已标记解决：{need.category}·{need.item}{fmt_qty(need.qty, need.unit)} ✅")


