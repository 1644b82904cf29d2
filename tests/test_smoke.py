import pytest
from django.db import connection


@pytest.mark.django_db
def test_it_connects():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_it_runs_on_postgres():
    assert connection.vendor == "postgresql"
