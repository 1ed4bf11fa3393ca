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

The resulting model's signature `decode` takes `source_ids` int32 [1, time]
and returns `target_ids` int32 [1, beam, max_target_length] and `scores`
float32 [1, beam], as the SavedModel's `translate_ids` does. The SentencePiece
model and a one-piece-per-line vocabulary are written beside it.
"""

import os
import tempfile

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

QUANTIZATIONS = ("none", "dynamic", "float16")


class _FrozenDecode(tf.Module):
    def __init__(self, frozen, output_structure):
        super().__init__()
        self._frozen = frozen
        self._output_structure = output_structure

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name="source_ids")])
    def decode(self, source_ids):
        # The frozen function returns its outputs flattened, in tf.nest order.
        return tf.nest.pack_sequence_as(self._output_structure, self._frozen(source_ids))


def convert_to_tflite(export_path, output_path, quantize="none"):
    """Converts an export's beam search (its `translate_ids`) to `output_path`.

    Args:
        export_path: a SavedModel version folder written by `export_saved_model`.
        output_path: the .tflite file to write (its folder is created).
        quantize: `"none"`, `"dynamic"` (int8 weights) or `"float16"`.

    Returns:
        A dict of the files written and their sizes in bytes.
    """
    from keras_seq2seq.export.translator import Translator

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    translator = Translator.load_run(os.path.join(export_path, "assets.extra", "run"))

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32)])
    def decode(source_ids):
        target_ids, scores = translator.search(source_ids)
        return {"scores": scores, "target_ids": target_ids}

    concrete = decode.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    with tempfile.TemporaryDirectory() as saved:
        module = _FrozenDecode(frozen, concrete.structured_outputs)
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
    stem = os.path.splitext(output_path)[0]
    tokenizer = translator.tokenizer
    tokenizer.save(stem + ".spm.model")
    pieces = tokenizer.id_to_piece(tf.range(tokenizer.vocab_size)).numpy()
    with open(stem + ".vocab.txt", "w", encoding="utf-8") as f:
        f.write("".join(piece.decode("utf-8") + "\n" for piece in pieces))
    return {
        path: os.path.getsize(path)
        for path in (output_path, stem + ".spm.model", stem + ".vocab.txt")
    }
