"""A job that does nothing, so `benchmarks.throughput` can measure the queue's own overhead apart
from the work tasks do. Workers import it by path (`benchmarks.jobs.noop`) from the project root."""

from django.tasks import task


@task()
def noop() -> None:
    return None
