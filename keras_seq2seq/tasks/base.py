"""`Task`: one recipe's inputs, preprocessing, model, metrics and exportable.

`training.train(task, ...)` is written once against this class; each kind of
input (text, points; images and audio later) is one subclass.
"""

import inspect

import keras

from keras_seq2seq.errors import RecipeError, did_you_mean
from keras_seq2seq.export import RunFolder
from keras_seq2seq.losses import SequenceCrossEntropy
from keras_seq2seq.metrics import MaskedAccuracy
from keras_seq2seq.models import SequenceModel, get_model_class
from keras_seq2seq.optimizers import FusedAdam, ShortenableCosineDecay


class Task:
    """What `train` asks of a task, in the order it asks.

    Args:
        recipe: a validated `zoo.Recipe`.
        init_from: optional run folder or export to fine-tune: its model's
            weights (and architecture) are the start, and text tasks keep
            its tokenizer.

    Subclasses implement `prepare`, `datasets`, `new_model`, `exportable`
    and `evaluate`.
    """

    # Model options the task sets itself, never the recipe.
    task_model_options = ()

    def __init__(self, recipe, init_from=None):
        self.recipe = recipe
        self.init_from = RunFolder.of(init_from) if init_from else None
        self.model_class = self._model_class()
        self._check_model_options()
        if recipe.export["shortlist"] and not self.model_class.shortlists_outputs:
            raise RecipeError(f"{recipe.source}: export.shortlist: a {self.model_class.__name__} "
                              "cannot restrict its outputs to a shortlist")
        # Values the constructor refuses (an unknown attention, ...) fail
        # now, before any data is read or tokenizer trained. The unbuilt
        # model also tells a task what the recipe leaves to defaults.
        self.trial_model = self._construct(build=False, **self.trial_arguments())

    @property
    def name(self):
        return self.recipe.name

    # -- what train calls --------------------------------------------------

    def prepare(self, work_dir, on_bad_line="fail", strategy=None):
        """Readies data (generated, read and checked) and preprocessing
        (tokenizer) in `work_dir`, before any model exists; `datasets` then
        shards batches for `strategy`. Returns the task."""
        raise NotImplementedError

    def datasets(self):
        """`(train, validation)` tf.data batches."""
        raise NotImplementedError

    @property
    def steps_per_epoch(self):
        raise NotImplementedError

    def new_model(self):
        """The recipe's model, built, not compiled."""
        raise NotImplementedError

    def trial_arguments(self):
        """Constructor arguments the task would set, as stand-ins, for
        checking the recipe's model options before any data exists."""
        return {}

    def exportable(self, model):
        """The trained model as an `Exportable` (its search and signatures)."""
        raise NotImplementedError

    def with_export_settings(self, exportable):
        """`exportable` with the recipe's `export` settings (those of every
        exportable; text tasks add the shortlist)."""
        settings = self.recipe.export
        return (exportable.with_bfloat16_matmuls(settings["bfloat16_matmuls"])
                .with_xla_search(settings["xla"])
                .with_parallel_searches(settings["parallel_searches"]))

    def evaluate(self, exportable):
        """Held-out scores `{name: value}`, through the exportable's search."""
        raise NotImplementedError

    def notes(self):
        """Lines worth printing about what `prepare` found (skipped pairs, ...)."""
        return []

    def describe(self, scores):
        """One line for the scores `evaluate` returned."""
        return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in scores.items())

    # -- shared ------------------------------------------------------------

    def learning_rate(self, total_steps):
        """The recipe's learning rate over `total_steps` steps: a float
        (`schedule: constant`) or a `ShortenableCosineDecay` (`cosine`)."""
        training = self.recipe.training
        if training["schedule"] == "cosine":
            return ShortenableCosineDecay(training["learning_rate"], decay_steps=total_steps,
                                          alpha=0.05)
        return training["learning_rate"]

    def build_model(self, total_steps=None, learning_rate=None):
        """The model `fit` trains, compiled with the recipe's settings: a new
        one, or the `init_from` run's weights in the current dtype policy.
        Its optimizer follows `learning_rate` (default: the recipe's over
        `total_steps`, `learning_rate(total_steps)`)."""
        model = self.new_model() if self.init_from is None else self._initial_model()
        training = self.recipe.training
        if learning_rate is None:
            learning_rate = self.learning_rate(total_steps)
        ema_momentum = training["ema_momentum"]
        optimizer = FusedAdam(learning_rate, global_clipnorm=training["clipnorm"],
                              weight_decay=training["weight_decay"] or None,
                              use_ema=ema_momentum is not None,
                              ema_momentum=ema_momentum or 0.99)
        # As BERT's AdamW: biases (an LSTM's forget-gate bias starts at 1) keep
        # their values.
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        model.compile(
            optimizer=optimizer,
            loss=SequenceCrossEntropy(
                label_smoothing=training["label_smoothing"], ignore_unknown=model.copies_source,
                from_log_probabilities=model.returns_log_probabilities),
            metrics=[MaskedAccuracy()],
        )
        return model

    def _initial_model(self):
        # Rebuilt under the current dtype policy (mixed precision, a strategy's scope).
        return self.init_from.load_model().with_dtype_policy(keras.config.dtype_policy().name)

    def model_options(self):
        """The recipe's model section without `class`."""
        return {k: v for k, v in self.recipe.model.items() if k != "class"}

    def _model_class(self):
        name = self.recipe.model["class"]
        try:
            return get_model_class(name)
        except ValueError as e:
            raise RecipeError(f"{self.recipe.source}: model.class: {e}") from None

    def _check_model_options(self):
        """Every recipe model option is a constructor argument of the class
        (or of a base class it passes `**kwargs` on to)."""
        accepted = set()
        for cls in self.model_class.__mro__:
            if cls is SequenceModel or not issubclass(cls, SequenceModel):
                break
            parameters = inspect.signature(cls.__init__).parameters
            accepted |= {n for n, p in parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD}
            if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
                break
        accepted -= {"self", *self.task_model_options}
        for key in self.model_options():
            if key not in accepted:
                set_by_task = " (the task sets it)" if key in self.task_model_options else ""
                raise RecipeError(f"{self.recipe.source}: model.{key}: "
                                  f"{self.model_class.__name__} has no option {key!r}"
                                  f"{set_by_task}{did_you_mean(key, sorted(accepted))}")

    def _construct(self, build=True, **arguments):
        """The model class called with the recipe's options and `arguments`;
        a bad option value is a recipe error, not a traceback."""
        try:
            model = self.model_class(**self.model_options(), **arguments)
            if build:
                model.build()
        except (TypeError, ValueError) as e:
            raise RecipeError(f"{self.recipe.source}: model: {e}") from None
        return model
