"""A changelist paginator for tables of millions of rows: it never counts the whole table.

Django's paginator runs ``SELECT COUNT(*)`` over the filtered queryset on every page,
which on PostgreSQL reads every row. This one answers from the planner's statistics
(``pg_class.reltuples``) when the list is unfiltered, and otherwise counts at most
``cap + 1`` rows (``COUNT(*)`` over a ``LIMIT`` subquery). A count it could not make
exactly is marked ``count_is_exact = False``; pages past it stay reachable.
"""

from __future__ import annotations

import logging

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

COUNT_CAP = 10_000


def table_row_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows in the queryset's table, or None when it has none.

    ``reltuples`` is -1 until the table is first vacuumed or analyzed (PostgreSQL 14+).
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def _is_whole_table(queryset: QuerySet) -> bool:
    query = queryset.query
    return not query.where and not query.distinct and not query.combinator and not query.is_sliced


class EstimatedCountPaginator(Paginator):
    """Counts from table statistics or up to a cap, never the whole table.

    Small tables (below ``cap`` rows) still get an exact count, which costs at most
    ``cap`` index entries.
    """

    cap = COUNT_CAP

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.count_is_exact = True

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if _is_whole_table(queryset):
            estimate = table_row_estimate(queryset)
            if estimate is not None and estimate >= self.cap:
                self.count_is_exact = False
                return estimate
        # Ordering is irrelevant to a count; dropping it keeps the subquery a plain scan.
        counted = queryset.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.count_is_exact = False
        return counted

    def validate_number(self, number) -> int:
        """Like Django's, but an estimated or capped count does not close the pages past it."""
        _ = self.count  # counting decides count_is_exact
        if self.count_is_exact:
            return super().validate_number(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number) -> Page:
        number = self.validate_number(number)
        if self.count_is_exact:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        return Page(self.object_list[bottom : bottom + self.per_page], number, self)
