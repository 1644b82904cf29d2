"""Evaluating the alerts: move each alert's state on and post its start and its clear, once each.

An alert goes quiet -> pending (its condition holds) -> firing (it held ALERT_FIRE_AFTER_SECONDS)
-> clearing (it is gone) -> quiet again (gone ALERT_CLEAR_AFTER_SECONDS); a condition that
comes back while clearing keeps the alert firing, one that goes away while pending never
fires: no flapping, no repeats. Every transition is one conditional UPDATE on the alert's
row (``filter(firing_since__isnull=True).update(...) == 1``), so of two worker clusters
evaluating at the same moment exactly one wins a transition and posts it. A notice that
could not be delivered is kept on the row and tried again at the next evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from ops.alerts.conditions import CONDITIONS, TITLES, Condition
from ops.alerts.notify import channels_configured, notice_deliver, notice_text
from ops.models import AlertState

logger = logging.getLogger(__name__)
FIRING, CLEARED = "firing", "cleared"


@dataclass(frozen=True)
class Transition:
    name: str
    kind: str  # FIRING or CLEARED
    detail: str
    undelivered: list[str]


def _state_for(name: str) -> AlertState:
    try:
        return AlertState.objects.get_or_create(name=name)[0]
    except IntegrityError:  # another evaluator made the row between our get and create
        return AlertState.objects.get(name=name)


def _announce(state: AlertState, *, kind: str, detail: str, since: datetime | None, now: datetime) -> Transition:
    subject, body = notice_text(
        kind=kind, title=TITLES.get(state.name, state.name), name=state.name, detail=detail, since=since, now=now
    )
    failed = notice_deliver(subject=subject, body=body, channels=channels_configured())
    if failed:
        AlertState.objects.filter(pk=state.pk).update(notice=kind, notice_channels=",".join(failed))
    logger.warning("alert %s %s: %s", state.name, kind, detail)
    return Transition(state.name, kind, detail, failed)


def _advance(condition: Condition, active: bool, detail: str, now: datetime) -> Transition | None:
    fire_after = timedelta(seconds=settings.ALERT_FIRE_AFTER_SECONDS)
    clear_after = timedelta(seconds=settings.ALERT_CLEAR_AFTER_SECONDS)
    state = _state_for(condition.name)
    row = AlertState.objects.filter(pk=state.pk)
    if active and state.firing_since is None:
        # The earliest sighting stands: a second evaluator does not restart the hold time.
        row.filter(firing_since__isnull=True, pending_since__isnull=True).update(pending_since=now)
        row.filter(firing_since__isnull=True).update(last_seen=now, detail=detail)
        pending = row.values_list("pending_since", flat=True).first()
        held = pending is not None and now - pending >= fire_after
        if held and row.filter(firing_since__isnull=True, pending_since=pending).update(
            firing_since=now, absent_since=None, notice="", notice_channels=""
        ):
            return _announce(state, kind=FIRING, detail=detail, since=None, now=now)
    elif active:
        row.filter(firing_since=state.firing_since).update(last_seen=now, absent_since=None, detail=detail)
    elif state.firing_since is None:
        if state.pending_since is not None:  # gone before it had held long enough: never posted
            row.filter(firing_since__isnull=True).update(pending_since=None, detail=detail)
    else:
        row.filter(firing_since=state.firing_since, absent_since__isnull=True).update(absent_since=now)
        row.filter(firing_since=state.firing_since).update(detail=detail)
        absent = row.filter(firing_since=state.firing_since).values_list("absent_since", flat=True).first()
        gone = absent is not None and now - absent >= clear_after
        if gone and row.filter(firing_since=state.firing_since, absent_since=absent).update(
            firing_since=None, pending_since=None, absent_since=None, cleared_at=now, notice="", notice_channels=""
        ):
            return _announce(state, kind=CLEARED, detail=detail, since=state.firing_since, now=now)
    return None


def _retry_undelivered(now: datetime) -> None:
    for state in AlertState.objects.exclude(notice=""):
        kind, channels = state.notice, [c for c in state.notice_channels.split(",") if c]
        # Claimed like a transition: one evaluator takes the retry.
        if not AlertState.objects.filter(pk=state.pk, notice=kind).update(notice="", notice_channels=""):
            continue
        # Said as of the transition: when it started firing, or when it cleared.
        at = (state.firing_since if kind == FIRING else state.cleared_at) or now
        subject, body = notice_text(
            kind=kind, title=TITLES.get(state.name, state.name), name=state.name, detail=state.detail, since=None, now=at
        )
        failed = notice_deliver(subject=subject, body=body, channels=channels)
        if failed:
            AlertState.objects.filter(pk=state.pk, notice="").update(notice=kind, notice_channels=",".join(failed))


def alerts_evaluate(*, now: datetime | None = None, conditions: Iterable[Condition] = CONDITIONS) -> list[Transition]:
    """Evaluate every condition once; return the transitions this evaluator won (and posted)."""
    now = now or timezone.now()
    _retry_undelivered(now)
    transitions = []
    for condition in conditions:
        try:
            active, detail = condition.check(now)
        except Exception:  # a reading that cannot be taken leaves the alert as it was
            logger.warning("alert condition %s could not be evaluated", condition.name, exc_info=True)
            continue
        transition = _advance(condition, active, detail[:2000], now)
        if transition is not None:
            transitions.append(transition)
    return transitions
