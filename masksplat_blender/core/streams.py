"""The lines of a pipe as they arrive, read by a thread, so that the JSON-lines protocol's
two ends (client.py and backend/server.py) can wait with a timeout and still take Ctrl-C.

stdlib only.
"""

from __future__ import annotations

import queue
import threading


def line_queue(stream) -> queue.Queue:
    """A queue that receives each line of `stream` (a daemon thread reads it), then None at its end."""
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines
