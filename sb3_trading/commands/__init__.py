"""The commands layer: the argparse glue of every ``sb3-trading`` subcommand, one module each.

Each module adds its subparser's arguments (``add_<command>_arguments``), turns the namespace into the
command's config dataclass (``<command>_from_args``) and calls the library; :mod:`sb3_trading.cli` (the
top floor, imported by nothing) builds the parser, prints the summaries and turns user errors into one
line on stderr with exit code 2. Nothing below this layer imports it.
"""

from sb3_trading.commands.common import add_data_arguments, add_risk_free_argument, data_arg, parse_kwargs

__all__ = ["add_data_arguments", "add_risk_free_argument", "data_arg", "parse_kwargs"]
