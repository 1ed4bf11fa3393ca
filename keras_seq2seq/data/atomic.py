"""Files that appear whole or not at all.

A run that is killed while writing (a checkpoint, composed records, a run
folder's `run.json`) must not leave a file that a resumed run would take for
a finished one. `atomic_path` gives the writer a temporary name beside the
file and renames it over the file only when the writing has succeeded; the
rename is atomic on one file system.
"""

import contextlib
import os

PART = ".part"


def part_path(path, extension=""):
    """The temporary name of `path`: `path.part`, or, for writers that insist
    on an ending (`extension`, e.g. Keras' `.weights.h5`), `.part` before it."""
    if extension and path.endswith(extension):
        return path[: -len(extension)] + PART + extension
    return path + PART


@contextlib.contextmanager
def atomic_path(path, extension=""):
    """Yields a temporary path to write `path` under; renames it to `path`
    when the block ends without an error, and removes it when it raises.

    Args:
        path: the file to write.
        extension: an ending the writer needs its path to keep (see `part_path`).

    Example:

    >>> with atomic_path("run.json") as part:
    ...     with open(part, "w") as f:
    ...         f.write("{}")

    Nest blocks for files that belong together: each is renamed only if
    every block succeeded, the inner ones first.
    """
    part = part_path(path, extension)
    try:
        yield part
    except BaseException:
        if os.path.exists(part):
            os.remove(part)
        raise
    os.replace(part, path)
