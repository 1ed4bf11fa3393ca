"""The model zoo: named recipes."""

from keras_seq2seq.zoo.recipes import RECIPES, PointerRecipe, Recipe, get_recipe

__all__ = ["RECIPES", "PointerRecipe", "Recipe", "get_recipe"]
