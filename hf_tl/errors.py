"""User-facing errors.

Every mistake a user can make (a bad path, a missing column, an unknown option ...) raises
:class:`HfTlError` with one sentence that says what is wrong and how to fix it. The command-line
entry points print that sentence and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class HfTlError(Exception):
    """An error caused by the user's input, with a message that explains the fix."""


def hub_is_offline() -> bool:
    """Whether the user switched the Hugging Face Hub off (``HF_HUB_OFFLINE``), read now rather than at import."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean X?' for the closest choice, or an empty string.

    Args:
        name: What the user typed.
        choices: The valid names.

    Returns:
        A suffix for an error message.
    """
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def exit_on_user_error(func: F) -> F:
    """Decorate a command-line entry point so an :class:`HfTlError` prints one line and exits with status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HfTlError as err:
            print(f"hf_tl error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
