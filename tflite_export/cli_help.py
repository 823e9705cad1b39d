"""``--help`` and ``--version`` for the command lines of kopt and tflite_export: their own flags, grouped, and exit 0.

absl's ``--help`` lists the flags of the main module only (for a console script,
none of kopt's) and ``--helpfull`` every flag of every imported library. These
helpers print a program's own flags instead, in named groups.
"""

import textwrap

__all__ = ["format_help", "package_flags", "wants_help", "wants_version"]

HELP_ARGUMENTS = ("--help", "-h", "--helpshort", "-?")


def wants_help(argv):
    """Whether the command line asks for help.

    Example:

    >>> wants_help(["kopt-optimize", "--prune=0.5", "--help"]), wants_help(["kopt-optimize"])
    (True, False)
    """
    return any(argument in HELP_ARGUMENTS for argument in argv[1:])


def wants_version(argv):
    """Whether the command line asks for the version (``--version``)."""
    return "--version" in argv[1:]


def package_flags(flag_values, prefixes=("kopt.", "tflite_export.")):
    """``{name: Flag}`` of the flags that modules under ``prefixes`` define."""
    found = {}
    for module, module_flags in flag_values.flags_by_module_dict().items():
        if module.startswith(prefixes) or module == "__main__":
            found.update({flag.name: flag for flag in module_flags})
    return found


def format_help(usage, own_flags, groups):
    """The help text: ``usage``, then each group's flags with default and meaning.

    Args:
        usage: The first lines (what the program does, how to call it).
        own_flags: ``{name: absl Flag}`` to list.
        groups: ``[(title, [flag names])]``; flags in no group are listed last under "Other".

    Example:

    >>> from absl import flags
    >>> values = flags.FlagValues()
    >>> _ = flags.DEFINE_integer("epochs", 10, "Training epochs.", flag_values=values)
    >>> print(format_help("usage: demo", {"epochs": values["epochs"]}, [("Training", ["epochs"])]))
    usage: demo
    <BLANKLINE>
    Training:
      --epochs (default: '10')
          Training epochs.
    """
    lines = [usage.rstrip()]
    for title, names in list(groups) + [("Other", sorted(set(own_flags) - {n for _, g in groups for n in g}))]:
        present = [name for name in names if name in own_flags]
        if not present:
            continue
        lines += ["", f"{title}:"]
        for name in present:
            flag = own_flags[name]
            default = flag.default_as_str if flag.default is not None else "none"
            lines.append(f"  --{name} (default: {default})")
            lines += textwrap.wrap(flag.help, width=96, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)
