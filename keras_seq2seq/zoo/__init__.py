"""The model zoo: named recipes."""

from keras_seq2seq.zoo.recipes import RECIPES, Recipe, get_recipe

__all__ = ["RECIPES", "Recipe", "get_recipe"]
