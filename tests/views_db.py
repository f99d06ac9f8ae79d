"""Views that query the database, for the per-request database figures."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, JsonResponse

#: The second database alias the multiple-database test registers.
OTHER_ALIAS = "db_other"


def three_queries(request: HttpRequest) -> JsonResponse:
    users = User.objects.count()
    exists = User.objects.filter(username="nobody").exists()
    groups = Group.objects.count()
    return JsonResponse({"users": users, "exists": exists, "groups": groups})


def n_plus_one(request: HttpRequest) -> JsonResponse:
    # The pks are far from any real one so a parameter left in the warning line would show.
    found = [User.objects.filter(pk=4200 + index).first() for index in range(20)]
    return JsonResponse({"found": sum(user is not None for user in found)})


def raw_queries(request: HttpRequest) -> JsonResponse:
    """Three queries that need no table, for servers whose in-memory database has no migrations."""
    with connection.cursor() as cursor:
        for value in range(3):
            cursor.execute("SELECT %s", [value])
    return JsonResponse({"queries": 3})


def two_databases(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 0")
    with connections[OTHER_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
    return JsonResponse({"queries": 3})


def slow_query(request: HttpRequest) -> JsonResponse:
    User.objects.count()
    time.sleep(0.03)
    return JsonResponse({"queries": 1})


async def async_queries(request: HttpRequest) -> JsonResponse:
    users = await User.objects.acount()
    exists = await User.objects.filter(username="nobody").aexists()
    # In a thread of its own, with a connection of its own: counted all the same.
    groups = await sync_to_async(_groups_in_a_thread, thread_sensitive=False)()
    return JsonResponse({"users": users, "exists": exists, "groups": len(groups)})


def _close_thread_connection() -> None:
    # Django keeps a connection to an in-memory SQLite database open on close() (the database would vanish);
    # a thread's own connection must really be closed, or Python 3.13 warns about it when it is collected.
    BaseDatabaseWrapper.close(connection)


def _groups_in_a_thread() -> list[Group]:
    try:
        return list(Group.objects.all())
    finally:
        _close_thread_connection()


def _queries_in_a_thread(count: int) -> int:
    try:
        with connection.cursor() as cursor:
            for value in range(count):
                cursor.execute("SELECT %s", [value])
    finally:
        _close_thread_connection()
    return count


async def parallel_queries(request: HttpRequest) -> JsonResponse:
    """Four threads at once, each with its own connection, all counted in this request."""
    done = await asyncio.gather(*(sync_to_async(_queries_in_a_thread, thread_sensitive=False)(50) for _ in range(4)))
    return JsonResponse({"queries": sum(done)})


#: Statements with every literal form of each backend, each holding the word "secret": run twice by
#: :func:`literals`, so the warning names their shapes, which must not show any of them.
LITERAL_SQL: dict[str, list[str]] = {
    "postgresql": [
        "SELECT E'sec\\'ret', $$secret's$$, $tag$ secret $$ $tag$, U&'secret', X'5345', B'1010' -- secret",
        "SELECT 'it''s secret' AS a /* secret */, 0.5e3 AS b WHERE 'secret' <> 'C:\\'",
    ],
    "mysql": [
        "SELECT \"secret\", 'sec\\'ret', 'it''s secret', 0x5345, X'5345', 0b1010, _utf8mb4'secret' # secret",
        'SELECT "sec""ret" AS a /* secret */, N\'secret\' AS b -- secret',
    ],
    "sqlite": [
        "SELECT 'it''s secret', X'5345', 0x53 -- secret",
        "SELECT 'secret' AS a /* secret */",
    ],
}


def literals(request: HttpRequest) -> JsonResponse:
    """Runs this backend's literal statements twice each (an N+1 of literals)."""
    with connection.cursor() as cursor:
        for _ in range(2):
            for sql in LITERAL_SQL[connection.vendor]:
                cursor.execute(sql)
                cursor.fetchall()
    return JsonResponse({"queries": 2 * len(LITERAL_SQL[connection.vendor])})
