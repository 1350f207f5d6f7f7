"""The engines that run tasks, by name.

`base.py` is the contract every engine meets and knows no engine; each engine is a module of its
own that needs only `base.py` (and the fetching and media helpers beside it). This is the one list
of them: a new engine is a module and a line in `ENGINES`.
"""

from .base import Engine, EngineError
from .local import LocalEngine
from .mindvideo import MindVideoEngine

ENGINES: dict[str, type[Engine]] = {engine.name: engine for engine in (LocalEngine, MindVideoEngine)}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise EngineError(
            "unknown_engine",
            f"This model is set to run on an engine called “{name}”, which this playground does not have.",
        ) from None
