"""What the Train and Export-and-compare widgets share about their napari thread workers."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from napari.qt.threading import thread_worker


@thread_worker
def errors_returned(steps: Generator) -> Generator[Any, None, Any]:
    """A worker running the generator ``steps``: yields what it yields and returns what it
    returns, or ``("error", message)`` if it raises. Errors are returned, not raised, because
    napari 0.9's status handler for errored workers itself fails with a TypeError (its lambda
    takes two arguments, ``errored`` sends three), and superqt re-raises a returned exception
    object."""
    try:
        return (yield from steps)
    except Exception as exc:
        return "error", str(exc)


def start(widget, worker) -> None:
    """Connect ``worker`` to the widget's ``_on_yield``/``_on_done``/``_on_finished``, switch its
    Start/Cancel buttons and start it."""
    widget.worker = worker
    worker.yielded.connect(widget._on_yield)
    worker.returned.connect(widget._on_done)
    worker.finished.connect(widget._on_finished)
    widget.start_button.enabled, widget.cancel_button.enabled = False, True
    widget.status.setText("starting...")
    worker.start()
