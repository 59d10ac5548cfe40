"""The engine table, read from the server itself (`echolab-server --list-engines --json`):
the registry in servers/registry.cc is the one place that knows the engines, and specs name
them through groups derived from its rows rather than from lists kept here."""
import json
import subprocess


class EngineTableError(Exception):
    pass


def load_engine_table(server_binary):
    """The rows of the registry, in its order, as dicts (see `--list-engines --json`)."""
    try:
        out = subprocess.run([server_binary, "--list-engines", "--json"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        table = json.loads(out)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as error:
        raise EngineTableError(f"cannot read the engine table from {server_binary}: {error}") from None
    if not isinstance(table, list) or not all(isinstance(row, dict) and "name" in row for row in table):
        raise EngineTableError(f"{server_binary} --list-engines --json did not print a list of engines")
    return table


# A group names the engines whose rows match: "@stream" is every stream engine available here.
GROUPS = {
    "@stream": lambda row: row["serves"] == "streams",
    "@datagram": lambda row: row["serves"] == "datagrams",
    "@multiplexed": lambda row: row["serves"] == "streams" and row["concurrency"] == "multiplexed",
    "@pool": lambda row: row["serves"] == "streams" and row["concurrency"] == "pool",
    "@per-connection": lambda row: row["concurrency"] == "per-connection",
    "@one-at-a-time": lambda row: row["serves"] == "streams" and row["concurrency"] == "one-at-a-time",
}


def group_members(group, table):
    """The available engines of `group`, in registry order; None if `group` is not a group."""
    match = GROUPS.get(group)
    if match is None:
        return None
    return [row["name"] for row in table if row.get("available", True) and match(row)]
