import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext


@pytest.mark.django_db
def test_it_answers_liveness_without_touching_the_database(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/health")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert response.json() == {"status": "pass"}
    assert len(queries) == 0
