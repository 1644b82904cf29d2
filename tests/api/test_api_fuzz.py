"""Schemathesis against /api/openapi.json, in process: no request may end in a 5xx.

Bounded (a few dozen examples per operation and mode, derandomized) so that it runs in
the normal suite on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from commands.services import command_create, cookie_give
from config.wsgi import application
from tests.api.conftest import GUILD
from timers.services import timer_set

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def some_data(db):
    """A few rows, so that generated ids sometimes hit something."""
    for guild in (1, GUILD):
        command_create(guild_id=guild, name="hello", template="Hi {user}", author_id=1)
        cookie_give(guild_id=guild, giver_id=1, receiver_id=2)
        for member in range(1, 4):
            timer_set(guild_id=guild, member_id=member, role_id=1, duration=timedelta(hours=1), actor_id=None)


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep the test's connection open across WSGI requests, as Django's test client does."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield application
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.django_db
def test_it_answers_generated_requests_without_a_server_error(staff_key, some_data, wsgi_in_test_transaction):
    headers = {"Authorization": f"Bearer {staff_key}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_in_test_transaction, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error])

            check()
