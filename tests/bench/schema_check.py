"""Validation of echolab's JSON files against results/schema/, shared by the Python tests.
Needs Debian's python3-jsonschema (for /usr/bin/python3); callers skip when it is missing."""
import json
import os

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "results", "schema")


def load_validators():
    import jsonschema  # noqa: deferred so that callers can skip cleanly without it

    store = {}
    for name in os.listdir(SCHEMA_DIR):
        if name.endswith(".schema.json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                schema = json.load(f)
            store[schema.get("$id", name)] = schema
            store[name] = schema
    validators = {}
    for name, schema in store.items():
        if not name.endswith(".schema.json") or "/" in name:
            continue
        cls = jsonschema.validators.validator_for(schema)
        resolver = jsonschema.RefResolver(base_uri=schema.get("$id", ""), referrer=schema, store=store)
        validators[name[: -len(".schema.json")]] = cls(schema, resolver=resolver)
    return validators
