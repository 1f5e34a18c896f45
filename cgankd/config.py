"""Config checks with one readable line per problem.

Snakemake's ``validate`` fills the schema's defaults but reports a violation as a dump of the
whole schema; ``config_problem`` finds the same violations first and names the key path.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f)


def config_problem(config: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """The most relevant schema violation as 'config key <path>: <message>', or None."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is None:
        return None
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {})
        unknown = sorted(set(error.instance) - set(known))
        if unknown and known:  # a typo: name it with its full path, list what would be valid
            return (f"config key {'.'.join([*parts, unknown[0]])}: unknown key; known keys "
                    f"here: {', '.join(sorted(known))}")
    return f"config key {'.'.join(parts) or '(top level)'}: {error.message}"
