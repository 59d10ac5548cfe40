"""A result set written from cell records a test builds, for the plots tests that check
numbers rather than a committed run's."""
import json
import os


def write_result_set(folder, records, run_id, **manifest):
    """cells/<id>.json per record and a manifest listing them, with `manifest`'s extra keys
    (the engine table, the capacity sweeps' summaries...)."""
    os.makedirs(os.path.join(folder, "cells"))
    entries = []
    for record in records:
        entries.append({"id": record["id"], "file": f"cells/{record['id']}.json", "status": record["status"]})
        with open(os.path.join(folder, entries[-1]["file"]), "w") as f:
            json.dump(record, f)
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump({"schema": "echolab.bench-manifest/1", "run_id": run_id, "cells": entries, **manifest}, f)
