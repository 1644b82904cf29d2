"""Reply templates of custom commands: parsed and checked once, rendered as plain data.

A template is never handed to ``str.format`` or any evaluator: it is split into literal
text and named fields, each field is checked against a fixed list when the command is
saved, and rendering looks the names up in a dictionary. Attribute access, indexing,
conversions and format specs (``{0.__class__}``, ``{0:>99999}``) are refused.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from commands.errors import TemplateInvalid

MAX_TEMPLATE_LENGTH = 2000
MAX_OUTPUT_LENGTH = 2000
MAX_RANDOM_OPTIONS = 50
FIELDS = ("user", "user.name", "user.id", "channel", "channel.id", "guild", "args", "cookies") + tuple(str(i) for i in range(10))
_FIELD_SET = frozenset(FIELDS)
_FIELD_LIST_TEXT = ", ".join("{" + f + "}" for f in FIELDS[:8]) + ", {0}…{9}, {random: a | b}"
_MENTION_ALL = ("@everyone", "@here")


@dataclass(frozen=True)
class RenderContext:
    """What a template may show about the invocation."""

    user_id: int
    user_name: str
    channel_id: int
    guild_name: str
    args: tuple[str, ...] = ()
    cookies: int | None = None


@dataclass(frozen=True)
class CompiledTemplate:
    """A checked template: literal text and field parts, in order."""

    parts: tuple[tuple[str, str | tuple[str, ...]], ...]  # ("text", …), ("field", name), ("random", options)
    uses_cookies: bool = field(default=False)

    def render(self, ctx: RenderContext, rng: random.Random | None = None) -> str:
        """The reply text: at most 2,000 characters, with @everyone/@here defused."""
        choose = (rng or random).choice
        out: list[str] = []
        for kind, value in self.parts:
            if isinstance(value, tuple):  # the options of {random: …}
                out.append(choose(value))
            elif kind == "text":
                out.append(value)
            else:
                out.append(_field_value(value, ctx))  # only the fields the template uses
        return defuse_mentions("".join(out))[:MAX_OUTPUT_LENGTH]


def _field_value(name: str, ctx: RenderContext) -> str:
    if name == "user":
        return f"<@{ctx.user_id}>"
    if name == "args":
        return " ".join(ctx.args)
    if name == "user.name":
        return ctx.user_name
    if name == "user.id":
        return str(ctx.user_id)
    if name == "channel":
        return f"<#{ctx.channel_id}>"
    if name == "channel.id":
        return str(ctx.channel_id)
    if name == "guild":
        return ctx.guild_name
    if name == "cookies":
        return "0" if ctx.cookies is None else str(ctx.cookies)
    index = int(name)  # {0}…{9}, checked when the template was compiled
    return ctx.args[index] if index < len(ctx.args) else ""


def defuse_mentions(text: str) -> str:
    """Break @everyone and @here with a zero-width space so they can never ping."""
    for word in _MENTION_ALL:
        text = text.replace(word, word[0] + "\u200b" + word[1:])
    return text


def compile_template(text: str) -> CompiledTemplate:
    """Check a template and return its parts, or raise TemplateInvalid saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise TemplateInvalid("The reply can't be empty.")
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateInvalid(f"The reply is {len(text)} characters long; the limit is {MAX_TEMPLATE_LENGTH}.")
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError:
        raise TemplateInvalid("The reply has an unmatched `{` or `}`. Write `{{` or `}}` for a literal brace.") from None
    parts: list[tuple[str, str | tuple[str, ...]]] = []
    uses_cookies = False
    for literal, name, spec, conversion in pieces:
        if literal:
            parts.append(("text", literal))
        if name is None:
            continue
        name = name.strip()
        if name == "random":
            if conversion:
                raise TemplateInvalid("`{random: …}` can't take a `!` conversion.")
            parts.append(("random", _random_options(spec or "")))
            continue
        if name not in _FIELD_SET:
            shown = "{" + name + "}" if len(name) <= 40 else "{" + name[:40] + "…}"
            raise TemplateInvalid(f"`{shown}` is not a placeholder I know. Use {_FIELD_LIST_TEXT}.")
        if conversion or spec:
            raise TemplateInvalid(f"`{{{name}}}` can't take `!` conversions or `:` formatting; write just `{{{name}}}`.")
        uses_cookies = uses_cookies or name == "cookies"
        parts.append(("field", name))
    return CompiledTemplate(parts=tuple(parts), uses_cookies=uses_cookies)


def _random_options(spec: str) -> tuple[str, ...]:
    if "{" in spec or "}" in spec:
        raise TemplateInvalid("The options of `{random: …}` are plain text; they can't hold other placeholders.")
    options = tuple(option.strip() for option in spec.split("|"))
    if not spec.strip() or not any(options):
        raise TemplateInvalid("`{random}` needs options, like `{random: yes | no | maybe}`.")
    if len(options) > MAX_RANDOM_OPTIONS:
        raise TemplateInvalid(f"`{{random: …}}` takes at most {MAX_RANDOM_OPTIONS} options.")
    return options
