"""Questions (the `query` intent): answered from the county FAQ (faq.toml) when a pattern fits; otherwise
forwarded to the admins, and the cadre is told so. Matching the Chinese lives in handlers/text/faq."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from handlers.context import Context
from handlers.format import clip, mask_personal
from handlers.text.faq import Faq, load_faq
from handlers.types import ChatRef
from storage.reports import admins_with_chats

DEFAULT_FAQ = Path(__file__).resolve().parent / "data" / "faq.toml"
MIN_SCORE = 2  # at least a two-character phrase: one common character is no match


@lru_cache(maxsize=8)
def faq_from_file(path: str) -> Faq:
    """The FAQ in `path` (read once per process); raises FaqError or OSError for the config check."""
    return load_faq(Path(path).read_text(encoding="utf-8"))


async def on_query(ctx: Context, text: str) -> None:
    faq = ctx.prefs.faq
    hit = faq.match(text) if faq is not None else None
    if hit is not None and hit.score >= MIN_SCORE:
        ctx.inbox_state = "answered"
        ctx.reply(f"📘 {hit.entry.topic}\n{hit.entry.answer}\n\n以上是县里的常见问题解答，具体以当地最新政策为准。"
                  "没解决的话，直接问管理员。")
        return
    ctx.inbox_state = "forwarded"
    asker = ctx.person.name if ctx.person is not None else ctx.incoming.sender_name
    admins = [(p, ch, chat) for p, ch, chat in await admins_with_chats(ctx.session)
              if ctx.person is None or p.id != ctx.person.id]
    # ID and phone numbers stay masked even towards an admin: the question is a chat line, not a record.
    question = clip(mask_personal(ctx.incoming.text.strip()), 300)
    for _p, channel, chat_id in admins:
        ctx.send_to(ChatRef(channel, chat_id), f"❓ {asker} 提问（常见问题里没有现成答案）：\n{question}\n\n"
                    "请直接回复他/她。")
    if admins:
        ctx.reply(f"这个问题常见问题里没有现成答案，已转给管理员（{len(admins)}位），他们会直接回复你。")
    else:
        ctx.reply("这个问题常见问题里没有现成答案，问题已保存。目前没有绑定的管理员可以转给，请直接联系区里。")
