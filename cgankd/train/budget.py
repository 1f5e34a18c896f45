"""A recipe with its training budget multiplied: the convergence check's longer run.

The check retrains a baseline with ``factor`` times the budget and nothing else changed, so the
multiplied key is whichever one the recipe's budget protocol reads: ``steps`` under budget
"steps", ``epochs`` under budget "epochs". Milestones and the cosine period are fractions of the
run, so the schedule stretches with it.
"""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options
from cgankd.train.recipe import RECIPE_DEFAULTS


def scaled_budget(overrides: Mapping[str, Any] | None, factor: float,
                  where: str) -> dict[str, Any]:
    """The recipe ``overrides`` (merged with the defaults) with its budget times ``factor``.

    The budget stays an integer (rounded, at least 1): both steps and epochs count whole units.
    ``where`` is the config path of the recipe, for error messages.
    """
    if not float(factor) > 0:
        raise CgankdInputError(f"convergence.factor: must be > 0, got {factor!r}")
    recipe = merge_options(RECIPE_DEFAULTS, overrides, where)
    key = "epochs" if recipe.get("budget", "steps") == "epochs" else "steps"
    if not isinstance(recipe.get(key), int) or isinstance(recipe.get(key), bool):
        raise CgankdInputError(f"{where}.{key}: the budget must be an integer to scale, got "
                               f"{recipe.get(key)!r}")
    recipe[key] = max(1, int(round(recipe[key] * float(factor))))
    return recipe
