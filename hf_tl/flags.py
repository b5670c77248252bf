"""Command-line parsers of every ``hf-tl`` command and recipe: readable ``--help``, one-line errors.

A mistake in the flags (an unknown choice, a value that is not a number, a missing value) raises :class:`HfTlError`
with one sentence naming the flag and the fix, instead of argparse's usage dump and exit; the entry points print it
as ``hf_tl error: ...``. ``--help`` lists the options by group, each once, with its choices and default.
"""

from __future__ import annotations

import argparse
import ast
import re
import textwrap

from hf_tl.errors import HfTlError, suggest


class HelpFormatter(argparse.HelpFormatter):
    """Help that names each option once, shows its value's kind or choices, and its default when it has one."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 30, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, width)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Hub ids and paths hold hyphens; breaking there would print 'sentence-' and 'transformers/...' apart.
        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        # HfArgumentParser adds --foo-bar beside each --foo_bar; both work, the help names only --foo_bar.
        names = [s for s in action.option_strings if not (s.startswith("--") and "-" in s[2:])]
        names = ", ".join(names or action.option_strings[:1])
        if action.nargs == 0:
            return names
        return f"{names} {self._format_args(action, self._get_default_metavar_for_optional(action))}"

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        kind = {int: "INT", float: "FLOAT", str: "TEXT"}.get(action.type)
        return kind or super()._get_default_metavar_for_optional(action)  # e.g. OUTPUT_DIR for untyped flags

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or action.nargs == 0 or default is None or default is argparse.SUPPRESS
                or "%(default)" in text):
            return text
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, (list, tuple)):
            shown = " ".join(map(str, default))
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"  # argparse %-formats help strings


class OneLineErrors:
    """Mixin for an argparse parser: a mistake raises :class:`HfTlError` instead of printing usage and exiting."""

    def error(self, message: str):
        """Raise the one-sentence form of argparse's ``message``."""
        raise HfTlError(explain(self, message))


class ArgumentParser(OneLineErrors, argparse.ArgumentParser):
    """An argparse parser with one-line errors, the help of :class:`HelpFormatter` and no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        # No abbreviations: --seed must not silently become --seeds, nor a typo another flag.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def dataclass_parser(dataclass_types, **kwargs):
    """Build a :class:`transformers.HfArgumentParser` with one-line errors and readable help.

    A dataclass with ``_argument_group_name`` gets its own section, described by its docstring's first line; a
    true/false option's ``--no_X`` twin is folded into the option's help.

    Args:
        dataclass_types: The dataclasses whose fields become options.
        **kwargs: Passed to ``argparse.ArgumentParser`` (``prog``, ``usage``, ``description`` ...).

    Returns:
        The parser.
    """
    from transformers import HfArgumentParser

    class Parser(OneLineErrors, HfArgumentParser):
        def _add_dataclass_arguments(self, dtype):
            super()._add_dataclass_arguments(dtype)
            title = getattr(dtype, "_argument_group_name", None)
            for group in self._action_groups:
                if title and group.title == title and dtype.__doc__:
                    group.description = dtype.__doc__.strip().splitlines()[0]

    kwargs.setdefault("formatter_class", HelpFormatter)
    kwargs.setdefault("allow_abbrev", False)  # a typo such as --learning_rat must not become --learning_rate
    parser = Parser(dataclass_types, **kwargs)
    for action in parser._actions:
        if getattr(action.type, "__name__", "") == "string_to_bool":
            action.metavar = "true|false"
        if isinstance(action, argparse._StoreFalseAction) and action.option_strings[0].startswith("--no_"):
            action.help = argparse.SUPPRESS
            for other in parser._actions:
                if other.dest == action.dest and other is not action:
                    other.help = f"{other.help or ''} {action.option_strings[0]} sets it to false."
    return parser


def _value(text: str) -> str:
    """argparse quotes values with repr(); give back the value as typed."""
    try:
        return str(ast.literal_eval(text))
    except (ValueError, SyntaxError):
        return text


def _example(action: argparse.Action) -> str:
    if isinstance(action.metavar, str):
        return action.metavar
    if action.choices:
        return str(next(iter(action.choices)))
    if isinstance(action.default, (int, float)) and not isinstance(action.default, bool):
        return str(action.default)
    return {int: "1", float: "0.1"}.get(action.type, "VALUE")


def explain(parser: argparse.ArgumentParser, message: str) -> str:
    """Turn an argparse error message into one sentence that names the flag and the fix.

    Args:
        parser: The parser that failed.
        message: argparse's message, e.g. ``argument --max_steps: invalid int value: '10.5'``.

    Returns:
        The sentence.

    Raises:
        HfTlError: with the strategy registry's own message for an unknown strategy.
    """
    see = f"see {parser.prog} --help"
    match = re.fullmatch(r"argument (\S+): (.*)", message, re.S)
    if match is None:
        required = re.fullmatch(r"the following arguments are required: (.*)", message)
        if required:
            return f"{parser.prog} needs {required.group(1)}; {see}."
        unknown = re.fullmatch(r"unrecognized arguments: (.*)", message)
        if unknown:
            first = unknown.group(1).split()[0]
            flags = [s for a in parser._actions for s in a.option_strings]
            return f"Unknown option '{first}'; {see}." + suggest(first.split("=")[0], flags)
        return f"{message[:1].upper()}{message[1:]}; {see}."
    flag, problem = match.group(1).split("/")[0], match.group(2)
    action = parser._option_string_actions.get(flag) or next(
        (a for a in parser._actions if flag in (a.dest, a.metavar)), None)
    if action is None:
        return f"{flag}: {problem}; {see}."
    example = f"{flag} {_example(action)}" if action.option_strings else _example(action)
    choice = re.match(r"invalid choice: (.+?) \(choose from", problem)
    if choice:
        value = _value(choice.group(1))
        if action.dest == "strategy":  # the registry's own message, with the closest registered name
            from hf_tl.strategies import strategy_class

            strategy_class(value)
        choices = [str(c) for c in action.choices]
        return f"{flag} must be one of {', '.join(choices)}, got '{value}'." + suggest(value, choices)
    number = re.match(r"invalid (int|float) value: (.*)", problem)
    if number:
        kind = "a whole number" if number.group(1) == "int" else "a number"
        return f"{flag} takes {kind}, got '{_value(number.group(2))}', e.g. {example}."
    truthy = re.match(r"Truthy value expected: got (.*?) but", problem)
    if truthy:
        return f"{flag} takes true or false (alone it means true), got '{truthy.group(1)}'."
    if problem.startswith("expected one argument"):
        return f"{flag} needs a value, e.g. {example}."
    if problem.startswith("expected at least one argument"):
        return f"{flag} needs one or more values separated by spaces, e.g. {flag} A B."
    explicit = re.match(r"ignored explicit argument (.*)", problem)
    if explicit:
        return f"{flag} takes no value, got '{_value(explicit.group(1))}'; write just {flag}."
    return f"{flag}: {problem}; {see}."
