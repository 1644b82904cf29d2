"""Translating a Praetbot JavaScript command to a template, when it is provably a plain reply.

Praetbot ran a command's body as ``function(user, args, channel) { BODY }``. A body is
translated only when it is exactly one ``return`` of string literals, template literals
and ``+`` joins of ``user.name``, ``user.id``, ``args[N]`` (N 0-9), ``args.join(' ')``
and ``channel.id``: then the reply can't depend on anything else, and the template gives
the same text. Anything else (a second statement, a call, a variable, a number) is
refused with the reason, and the command is imported disabled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REFERENCES = {
    ("user", "name"): "{user.name}",
    ("user", "id"): "{user.id}",
    ("channel", "id"): "{channel.id}",
}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*|/\*.*?\*/)
      | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
      | (?P<template>`)
      | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
      | (?P<number>[0-9]+)
      | (?P<punct>[+.;()\[\]{}])""",
    re.VERBOSE | re.DOTALL,
)


class NotPlainReply(ValueError):
    """The body does something other than return a fixed shape of text; the message says what."""


@dataclass(frozen=True)
class Token:
    kind: str  # "string" (value already unescaped, braces escaped), "name", "number", "punct", "end"
    text: str
    at: int


def js_reply_template(body: str) -> str:
    """The template that answers as the body does, or NotPlainReply saying why it can't be known."""
    parser = _Parser(_tokens(body))
    parser.expect("name", "return")
    template = parser.expression()
    if parser.peek().text == ";":
        parser.next()
    end = parser.peek()
    if end.kind != "end":
        raise NotPlainReply(f"only a single `return` of text is translated; found `{end.text}` at character {end.at + 1}")
    if not template.strip():
        raise NotPlainReply("it returns an empty reply")
    return template


def _escape(text: str) -> str:
    # Our templates read `{{` and `}}` as literal braces.
    return text.replace("{", "{{").replace("}", "}}")


def _unescape(raw: str, at: int) -> str:
    out, i = [], 0
    while i < len(raw):
        char = raw[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = raw[i + 1 : i + 2]
        if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", raw[i + 2 : i + 6]):
            out.append(chr(int(raw[i + 2 : i + 6], 16)))
            i += 6
        elif nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", raw[i + 2 : i + 4]):
            out.append(chr(int(raw[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "\n":
            i += 2  # a line continuation
        elif nxt.isalnum() and nxt not in _SIMPLE_ESCAPES:
            raise NotPlainReply(f"an escape `\\{nxt}` I don't translate (at character {at + i + 1})")
        else:
            out.append(_SIMPLE_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def _tokens(body: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(body):
        if body[pos] == "`":
            text, pos = _template_literal(body, pos)
            tokens.append(Token("string", text, pos))
            continue
        match = _TOKEN.match(body, pos)
        if match is None or match.lastgroup == "template":
            raise NotPlainReply(f"`{body[pos]}` at character {pos + 1} is not part of a plain reply")
        kind = match.lastgroup or ""
        if kind == "string":
            tokens.append(Token("string", _escape(_unescape(match.group()[1:-1], pos + 1)), pos))
        elif kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(body)))
    return tokens


def _template_literal(body: str, start: int) -> tuple[str, int]:
    """A `…${ref}…` literal as template text, and the position after its closing backtick."""
    out, pos, literal_from = [], start + 1, start + 1
    while pos < len(body):
        char = body[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "`":
            out.append(_escape(_unescape(body[literal_from:pos], literal_from)))
            return "".join(out), pos + 1
        if body.startswith("${", pos):
            out.append(_escape(_unescape(body[literal_from:pos], literal_from)))
            close = body.find("}", pos)
            if close < 0:
                break
            inner = _Parser(_tokens(body[pos + 2 : close]))
            out.append(inner.reference())
            if inner.peek().kind != "end":
                raise NotPlainReply(f"`${{{body[pos + 2 : close]}}}` is more than a plain value")
            pos = literal_from = close + 1
            continue
        pos += 1
    raise NotPlainReply(f"the template literal at character {start + 1} never ends")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.next()
        if token.kind != kind or (text is not None and token.text != text):
            wanted = f"`{text}`" if text else kind
            found = f"`{token.text}`" if token.text else "the end"
            raise NotPlainReply(f"expected {wanted} at character {token.at + 1}, found {found}")
        return token

    def expression(self) -> str:
        parts = [self.term()]
        while self.peek().text == "+":
            self.next()
            parts.append(self.term())
        return "".join(parts)

    def term(self) -> str:
        token = self.peek()
        if token.kind == "string":
            return self.next().text
        if token.text == "(":
            self.next()
            inner = self.expression()
            self.expect("punct", ")")
            return inner
        return self.reference()

    def reference(self) -> str:
        """``user.name``, ``user.id``, ``channel.id``, ``args[N]`` or ``args.join(' ')`` as a placeholder."""
        token = self.expect("name")
        if token.text not in ("user", "args", "channel"):
            raise NotPlainReply(f"`{token.text}` at character {token.at + 1} is not user, args or channel")
        if token.text == "args" and self.peek().text == "[":
            self.next()
            index = self.expect("number")
            self.expect("punct", "]")
            if int(index.text) > 9:
                raise NotPlainReply(f"`args[{index.text}]`: only args[0] to args[9] have a placeholder")
            return "{" + str(int(index.text)) + "}"
        self.expect("punct", ".")
        member = self.expect("name")
        if token.text == "args" and member.text == "join":
            self.expect("punct", "(")
            separator = self.expect("string")
            self.expect("punct", ")")
            if separator.text != " ":
                raise NotPlainReply("`args.join(…)` with a separator other than one space")
            return "{args}"
        placeholder = _REFERENCES.get((token.text, member.text))
        if placeholder is None:
            raise NotPlainReply(f"`{token.text}.{member.text}` at character {token.at + 1} is not a plain value")
        return placeholder
