"""TFLite conversion of the ids-in, ids-out beam search, builtin ops only.

The route (design.md 2.5): rebuild the export's `Translator` from the Keras
model it carries (`assets.extra/run/`) and trace the same `search` that its
`translate_ids` signature runs, for a batch of 1: the Keras encoder's
TensorList loop lowers to builtin ops only with a static batch, which the
exported signature (any batch) does not have. Then freeze the variables to
constants (LiteRT cannot read resource variables inside a while loop:
`READ_VARIABLE ... variable != nullptr`), wrap the frozen function in a
`tf.Module` saved with a `decode` signature, and convert that SavedModel with
`TFLITE_BUILTINS` only, so no Flex delegate is needed.

For a text model the resulting signature `decode` takes `source_ids` int32
[1, time] and returns `target_ids` int32 [1, beam, max_target_length] and
`scores` float32 [1, beam], as the SavedModel's `translate_ids` does; the
SentencePiece model and a one-piece-per-line vocabulary are written beside
it. A pointer network's takes `points` and returns `indices` and `scores`.
"""

import os
import tempfile

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

QUANTIZATIONS = ("none", "dynamic", "float16")


class _FrozenDecode(tf.Module):
    def __init__(self, frozen, output_structure, input_signature):
        super().__init__()
        self._frozen = frozen
        self._output_structure = output_structure
        self.decode = tf.function(self._decode, autograph=False, input_signature=input_signature)

    def _decode(self, *inputs):
        # The frozen function returns its outputs flattened, in tf.nest order.
        return tf.nest.pack_sequence_as(self._output_structure, self._frozen(*inputs))


def convert_to_tflite(export_path, output_path, quantize="none"):
    """Converts an export's batch-1 search to `output_path`.

    Text models: the search of `translate_ids`; pointer networks: that of
    `beam_search` (signature `decode`: `points` float32 [1, n, dims] ->
    `indices` int32 [1, beam, n], `scores` float32 [1, beam]).

    Args:
        export_path: a SavedModel version folder written by `export_saved_model`.
        output_path: the .tflite file to write (its folder is created).
        quantize: `"none"`, `"dynamic"` (int8 weights) or `"float16"`.

    Returns:
        A dict of the files written and their sizes in bytes.
    """
    from keras_seq2seq.export.run_folder import load_run

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    exportable = load_run(os.path.join(export_path, "assets.extra", "run"))
    function, input_signature = exportable.tflite_decode()
    concrete = tf.function(function, autograph=False, input_signature=input_signature).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    with tempfile.TemporaryDirectory() as saved:
        module = _FrozenDecode(frozen, concrete.structured_outputs, input_signature)
        tf.saved_model.save(module, saved, signatures={"decode": module.decode})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["decode"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()

    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    with open(output_path, "wb") as f:
        f.write(flatbuffer)
    written = [output_path] + exportable.write_tflite_assets(os.path.splitext(output_path)[0])
    return {path: os.path.getsize(path) for path in written}
