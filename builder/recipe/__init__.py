"""Recipes: TOML in, frozen ``Recipe`` out, every problem located."""

from builder.recipe.codec import lock_digest, lock_inputs, recipe_digest, recipe_to_dict
from builder.recipe.model import Recipe
from builder.recipe.parse import load_recipe, parse_recipe_text

__all__ = ["Recipe", "load_recipe", "lock_digest", "lock_inputs", "parse_recipe_text",
           "recipe_digest", "recipe_to_dict"]
