"""WeCom (企业微信) transport: self-built app callback + message API, and group robot bulletins.

The only package that knows WeCom or imports its crypto; the rest of the bot sees neutral types.
"""

from bot.transports.choices import pick_choice, render_choices
from bot.transports.wecom.transport import WeComTransport

__all__ = ["WeComTransport", "pick_choice", "render_choices"]
