"""A/B runs: the sides of a comparison (baseline A, candidate B, and optionally A2, the
baseline again, whose difference from A is the noise floor), the order in which they take
turns, and each side's extra server options.

Both sides run in the same job, cell by cell, so that whatever the shared machine does
meanwhile (a neighbour's build, frequency changes, a warming cache) hits them alike; the
order alternates (A B, then B A) so that neither side always runs first."""
import os
import shlex

# Options the runner itself sets per cell and a side may not take over: they are how the
# runner finds and reads the server.
RUNNER_OWNED = ("--listen", "-l", "--stats-json", "--help", "-h", "--version", "--list-engines")


class SideError(Exception):
    pass


class Side:
    def __init__(self, name, role, build_dir, server_args):
        self.name, self.role, self.build_dir, self.server_args = name, role, build_dir, server_args

    def to_json(self, build):
        return {"role": self.role, "build_dir": os.path.abspath(self.build_dir), "server_args": self.server_args,
                "build": build}


def parse_server_args(text, flag):
    try:
        args = shlex.split(text or "")
    except ValueError as error:
        raise SideError(f"{flag}: {error}") from None
    for arg in args:
        if arg.split("=", 1)[0] in RUNNER_OWNED:
            raise SideError(f"{flag} may not set {arg.split('=', 1)[0]}: the runner owns it")
    return args


def sides_from_args(args):
    """The sides of an A/B run, or [] for a plain single-build run."""
    ab = any(v is not None for v in (args.baseline, args.candidate, args.baseline_server_args,
                                      args.candidate_server_args)) or args.aa
    if not ab:
        return []
    base_args = parse_server_args(args.baseline_server_args, "--baseline-server-args")
    cand_args = parse_server_args(args.candidate_server_args, "--candidate-server-args")
    baseline = Side("A", "baseline", args.baseline or args.build_dir, base_args)
    sides = [baseline]
    if args.candidate is not None or args.baseline is not None or args.candidate_server_args is not None \
            or args.baseline_server_args is not None:
        sides.append(Side("B", "candidate", args.candidate or args.build_dir, cand_args))
    if args.aa:
        sides.append(Side("A2", "baseline-again", baseline.build_dir, base_args))
    return sides


def side_order(names, rep):
    """The order of the sides within one repetition of one cell. Two sides: A B, then B A
    (ABBA). Three: the six orders of a Williams design in turn, so that every side runs
    first, second and last equally often and follows every other side equally often."""
    if len(names) <= 1:
        return list(names)
    if len(names) == 2:
        return list(names) if rep % 2 == 0 else list(reversed(names))
    a, b, c = names[:3]
    williams = [(a, b, c), (c, b, a), (b, c, a), (a, c, b), (c, a, b), (b, a, c)]
    return list(williams[rep % len(williams)])


def with_extra_args(command, extra):
    """`command` (option value pairs after the program) with a side's extra options: an option
    the command already has gets the side's value instead (the server refuses an option
    given twice), any other is appended."""
    command = list(command)
    i = 0
    while i < len(extra):
        arg = extra[i]
        name, has_value, value = arg.partition("=")
        takes_next = not has_value and i + 1 < len(extra) and not extra[i + 1].startswith("-")
        if not has_value and takes_next:
            value = extra[i + 1]
        if name.startswith("-") and name in command[1:] and (has_value or takes_next):
            position = command.index(name, 1)
            command[position + 1] = value
        else:
            command += [arg] + ([extra[i + 1]] if takes_next else [])
        i += 2 if takes_next else 1
    return command
