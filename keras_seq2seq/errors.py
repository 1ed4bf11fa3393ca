"""Errors a user can act on: the command line prints their message, one line,
and exits with status 2 (no traceback). Imports only the standard library,
so that every layer may raise them."""

import difflib


class UserError(ValueError):
    """Bad input from the user: a file, a recipe key, a run folder."""


class RecipeError(UserError):
    """A recipe file is malformed: an unknown key, a wrong type, a bad value."""


class RunFolderError(UserError):
    """A folder is not a run this version can read or write (an older layout,
    someone else's folder, a run of another recipe)."""


def did_you_mean(word, options):
    """`" (did you mean 'x'?)"` for the option closest to `word`, or ""."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
