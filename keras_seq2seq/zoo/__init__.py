"""The model zoo: built-in recipes, YAML files in `zoo/recipes/`.

Reading them needs pyyaml only, so `keras-seq2seq zoo` lists them without
importing TensorFlow.
"""

from keras_seq2seq.zoo.recipe import (
    Recipe,
    builtin_names,
    builtin_path,
    load_recipe,
    read_builtin,
    recipe_from_dict,
)

__all__ = ["Recipe", "builtin_names", "builtin_path", "load_recipe", "read_builtin",
           "recipe_from_dict"]
