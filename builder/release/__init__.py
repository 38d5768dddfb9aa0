"""Release at scale: the recipe x target build matrix for CI."""
