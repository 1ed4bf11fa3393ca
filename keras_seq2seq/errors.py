"""Errors a user can act on: the command line prints their message, one line,
and exits with status 2 (no traceback). Imports nothing, so that every layer
may raise them."""


class UserError(ValueError):
    """Bad input from the user: a file, a recipe key, a run folder."""


class RecipeError(UserError):
    """A recipe file is malformed: an unknown key, a wrong type, a bad value."""


class RunFolderError(UserError):
    """A folder is not a run this version can read or write (an older layout,
    someone else's folder, a run of another recipe)."""
