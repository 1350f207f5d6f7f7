"""Recover tasks whose worker died or whose enqueue was lost, once or (`--loop`) until stopped."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from playground.generations.reaper import reap_expired_tasks

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Re-queue or fail tasks whose worker died (lease expired) and re-enqueue queued tasks the "
        "queue lost. With --loop, repeat every --interval seconds until SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep running until stopped")
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.PLAYGROUND_REAPER_INTERVAL,
            help="seconds between passes with --loop (default: PLAYGROUND_REAPER_INTERVAL, %(default)s)",
        )

    def handle(self, *args, loop: bool, interval: float, **options):
        if not loop:
            self.stdout.write(str(reap_expired_tasks()))
            return
        stopping = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        self.stdout.write(f"Reaping every {interval:g} s until stopped.")
        while not stopping.is_set():
            close_old_connections()
            try:
                reap_expired_tasks()  # logs what it did
            except DatabaseError:
                # A busy or briefly unreachable database: the next pass tries again.
                logger.warning("reaping failed; trying again in %g s", interval, exc_info=True)
            stopping.wait(interval)
