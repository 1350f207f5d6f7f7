"""`db_worker`: django-tasks-db's worker, riding out a database that goes away for a while.

The stock worker exits at the first error reaching the database: a PostgreSQL restart would stop
every worker on every host, each waiting for its supervisor. This one (the same command, options and
loop; `playground.generations` comes before `django_tasks_db` in INSTALLED_APPS, so its name wins)
starts its loop again once the database answers, waiting 1, 2, 4 … up to 30 s between tries, and
keeps its worker id. The task it was running when the database went away is not lost: it finished
and recorded its end (`jobs.record_end` waits out a short outage), or its lease lapses and the reaper
starts it again. Ctrl-C or SIGTERM stops it at any point, as before.
"""

import logging
import time

from django.db import connections
from django_tasks_db.management.commands import db_worker

from playground.generations.jobs import DATABASE_GONE

logger = logging.getLogger("playground.worker")

FIRST_DELAY, MAX_DELAY, STEADY_AFTER = 1.0, 30.0, 60.0


class Command(db_worker.Command):
    help = db_worker.Command.help + ", waiting out a database restart"

    def handle(self, *args, **options) -> None:
        delay = FIRST_DELAY
        while True:
            started = time.monotonic()
            try:
                return super().handle(*args, **options)
            except DATABASE_GONE as exc:
                if time.monotonic() - started >= STEADY_AFTER:
                    delay = FIRST_DELAY
                logger.warning("the database is not answering (%s); trying again in %g s", exc, delay)
                connections.close_all()
                time.sleep(delay)
                delay = min(MAX_DELAY, delay * 2)
