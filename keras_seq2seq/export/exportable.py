"""`Exportable`: what `export_saved_model`, `verify_export`, `convert_to_tflite`
and the run folder ask of a servable model (`Translator`, `PointerSolver`)."""

import tensorflow as tf

from keras_seq2seq.export.run_folder import RunFolder


class Exportable(tf.Module):
    """A trained model as a `tf.Module` whose `tf.function`s are signatures.

    Subclasses implement `signatures`, `settings`, `run_settings`,
    `check_inputs` and `tflite_decode`, and override the file hooks where
    they have files (a tokenizer, a vocabulary).

    Args:
        model: the trained `keras_seq2seq.models.SequenceModel`.
    """

    def __init__(self, model, name=None):
        super().__init__(name=name)
        self.model = model
        # The model's tf.Variables, tracked directly: TF Serving's C++ loader
        # (and saved_model_cli) restore only variables that the object graph
        # holds as tf.Variables, not those inside Keras 3 variables, and fail
        # with "Could not find variable" otherwise (keras-team/keras#19274).
        self.serving_variables = [variable.value for variable in model.variables]

    def signatures(self):
        """`{name: tf.function}`, the SavedModel's signatures."""
        raise NotImplementedError

    @property
    def settings(self):
        """What `assets.extra/settings.json` tells clients (a JSON-able dict)."""
        raise NotImplementedError

    def run_settings(self):
        """The constructor's keyword arguments (besides the model and files)
        that rebuild this exportable from a run folder."""
        raise NotImplementedError

    def check_inputs(self):
        """`{input name: array}` for `verify_export` to compare outputs on."""
        raise NotImplementedError

    def check_requests(self, inputs):
        """The requests `verify_export` compares an export on, from the
        check inputs: all of them as one request, unless the export serves
        some requests another way."""
        return [inputs]

    def tflite_decode(self):
        """`(function, input_signature)`: the batch-1 search TFLite converts."""
        raise NotImplementedError

    def with_bfloat16_matmuls(self, enabled=True):
        """The same exportable whose search runs its matrix products in
        bfloat16 (`TextOutput`'s `matmul_dtype`), or in float32 if not
        `enabled`; exportables whose search has no such option raise
        `UserError` when asked for bfloat16."""
        from keras_seq2seq.errors import UserError

        if not enabled:
            return self
        raise UserError(f"a {self.__class__.__name__} export searches in float32 only: "
                        "bfloat16 matrix products are an option of models that write text")

    def with_xla_search(self, enabled=True):
        """The same exportable whose one-item requests run an XLA-compiled
        search (`TextOutput`'s `jit_compile`), or not if not `enabled`;
        exportables without one raise `UserError` when asked for it."""
        from keras_seq2seq.errors import UserError

        if not enabled:
            return self
        raise UserError(f"a {self.__class__.__name__} export has no XLA search: it is an "
                        "option of models that write text")

    def with_parallel_searches(self, count):
        """The same exportable whose search splits a request into `count`
        independent searches (`TextOutput`'s `parallel_searches`);
        exportables without that option raise `UserError` for a count
        other than 1."""
        from keras_seq2seq.errors import UserError

        if count == 1:
            return self
        raise UserError(f"a {self.__class__.__name__} export searches a request as one: "
                        "parallel searches are an option of models that write text")

    def without_shortlist(self):
        """The same exportable searching its whole output vocabulary
        (`Translator`'s `shortlist` removed; others have none)."""
        return self

    def for_export(self):
        """The module to save (this one, unless resources must be made anew)."""
        return self

    def write_assets(self, directory):
        """Files clients need beside the SavedModel, in `assets.extra/`."""

    def write_tflite_assets(self, stem):
        """Files written beside a .tflite model; returns their paths."""
        return []

    def write_run_files(self, directory):
        """Files a run folder keeps beside model.keras (a tokenizer)."""

    # -- a trained run on disk ------------------------------------------------

    def save_run(self, directory):
        """Writes the model and settings to the run folder `directory`."""
        RunFolder(directory).save(self, self.model, self.run_settings())

    @classmethod
    def from_run(cls, folder, settings):
        """Rebuilds the exportable from a `RunFolder` and its saved settings."""
        return cls(folder.load_model(), **settings)

    @classmethod
    def load_run(cls, directory, **overrides):
        """The exportable saved in `directory`; keyword arguments override settings."""
        return RunFolder(directory).load(**overrides)
