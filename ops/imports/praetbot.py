"""``import_praetbot``: Praetbot's ``commands`` and ``cookie`` collections into one guild.

Praetbot keeps no guild, so the guild is given. Commands are keyed by their Praetbot name
(kept in ``imported_from``), balances by member; bad documents are refused by line with
the reason and the rest still go in. Writes go in one transaction per batch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.db import transaction

from commands.command_templates import compile_template
from commands.errors import TemplateInvalid
from commands.services.imports import command_import, command_import_name, cookie_import
from config.errors import ApplicationError
from ops.imports.extjson import Document, documents_read
from ops.imports.praetbot_js import NotPlainReply, js_reply_template
from ops.imports.report import ImportRefused, ImportReport, Write
from ops.moves.progress import ProgressBar

BATCH = 500
_INVALID = re.compile(r"[^a-z0-9_-]")
_DISABLED_REPLY = "This command came from Praetbot and is off until an admin rewrites it (see its note)."


def praetbot_import(
    *, guild_id: int, commands_path: Path | str | None, cookies_path: Path | str | None, write: Write
) -> ImportReport:
    """Import both files (either may be None) and return the report."""
    report = ImportReport()
    if commands_path is not None:
        _in_batches(list(documents_read(commands_path)), "commands", write, report, _CommandsRun(guild_id, report).row)
    if cookies_path is not None:
        _in_batches(list(documents_read(cookies_path)), "cookies", write, report, _CookiesRun(guild_id, report).row)
    return report


def _in_batches(docs: list[Document], kind: str, write: Write, report: ImportReport, row: Any) -> None:
    bar = ProgressBar(write, f"Praetbot {kind}", len(docs))
    for start in range(0, len(docs), BATCH):
        with transaction.atomic():
            for doc in docs[start : start + BATCH]:
                if doc.error:
                    report.refuse(kind, doc.where, doc.error)
                    continue
                try:
                    with transaction.atomic():  # a refused row leaves the batch's other rows in
                        report.count(kind, row(doc))
                except ApplicationError as exc:
                    report.refuse(kind, doc.where, str(exc))
        bar.advance(len(docs[start : start + BATCH]))
    bar.finish()


def _name_wanted(name: str) -> str:
    cleaned = _INVALID.sub("_", name.strip().lower())[:32]
    return cleaned if cleaned.strip("_") else "command"


def _praetbot_reply(doc: dict[str, Any]) -> tuple[str, bool, str, str]:
    """(template, enabled, note, source) for a command document; ``value`` (JavaScript) wins over ``respond``."""
    value, respond = doc.get("value"), doc.get("respond")
    if value is not None:
        if not isinstance(value, str):
            raise ImportRefused("`value` is not text (a JavaScript body)")
        try:
            template = js_reply_template(value)
            compile_template(template)
            return template, True, "", value
        except (NotPlainReply, TemplateInvalid) as exc:
            return _DISABLED_REPLY, False, f"Imported from Praetbot disabled: {exc}"[:200], value
    if isinstance(respond, str) and respond.strip():
        # Praetbot answered `<@caller> text`; our braces are literal only doubled.
        template = "{user} " + respond.replace("{", "{{").replace("}", "}}")
        return template, True, "", respond
    raise ImportRefused("neither `value` (JavaScript) nor `respond` (text) is given")


class _CommandsRun:
    def __init__(self, guild_id: int, report: ImportReport) -> None:
        self.guild_id, self.report = guild_id, report
        self.seen: set[str] = set()
        self.assigned: set[str] = set()

    def row(self, doc: Document) -> str:
        name = doc.value.get("_id")
        if not isinstance(name, str) or not name.strip():
            raise ImportRefused("`_id` (the command's name) is missing or not text")
        if name in self.seen:
            raise ImportRefused(f"a second command called `{name}` (the first one was kept)")
        self.seen.add(name)
        template, enabled, note, source = _praetbot_reply(doc.value)
        origin = f"praetbot:{name}"
        wanted = _name_wanted(name)
        ours = command_import_name(guild_id=self.guild_id, wanted=wanted, reserved=self.assigned)
        outcome, command = command_import(
            guild_id=self.guild_id, origin=origin, name=ours, template=template, enabled=enabled, note=note, source=source
        )
        final = command.name if command is not None else ours
        self.assigned.add(final)
        if final != name:
            self.report.notes.append(f"  renamed `{name}` to `{final}`")
        if not enabled:
            self.report.notes.append(f"  `{final}` imported disabled: {note.removeprefix('Imported from Praetbot disabled: ')}")
        return outcome


class _CookiesRun:
    def __init__(self, guild_id: int, report: ImportReport) -> None:
        self.guild_id, self.report = guild_id, report
        self.seen: set[int] = set()

    def row(self, doc: Document) -> str:
        member = _whole(doc.value.get("id"), "`id` (the member's Discord id)")
        count = _whole(doc.value.get("cookies"), "`cookies`")
        if member in self.seen:
            raise ImportRefused(f"member {member} appears twice (the first count was kept)")
        self.seen.add(member)
        return cookie_import(guild_id=self.guild_id, member_id=member, balance=count)


def _whole(value: Any, label: str) -> int:
    """An int from a number or a string of digits (Discord ids are stored as strings)."""
    if isinstance(value, bool):
        raise ImportRefused(f"{label} is not a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
        return int(value)
    if isinstance(value, int):
        return value
    raise ImportRefused(f"{label} is missing" if value is None else f"{label} is not a whole number: {value!r}")
