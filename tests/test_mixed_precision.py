"""Training under a mixed policy; exports compute and answer in float32."""

import keras
import numpy as np
import pytest

from keras_seq2seq import AttentionSeq2Seq
from tests.test_models import _compile, _copy_task


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("attention", ["luong_general", "location_sensitive"])
def test_mixed_bfloat16_training_and_float32_copy(rng, mixed_bfloat16, attention):
    # The weights' initial values do not depend on the tests run before in the worker.
    keras.utils.set_random_seed(0)
    x, y = _copy_task(rng, n=256)
    model = _compile(AttentionSeq2Seq(12, embedding_dim=16, units=32, attention=attention))
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert model.encoder.compute_dtype == "bfloat16"
    logits, alignments = model(x, return_attention=True)
    assert logits.dtype == "float32" and alignments.dtype == "float32"

    copy = model.with_dtype_policy("float32")
    assert copy.encoder.compute_dtype == "float32" and copy.decoder.compute_dtype == "float32"
    np.testing.assert_array_equal(copy.get_weights()[0], model.get_weights()[0])
    # bfloat16 keeps ~3 significant digits: the float32 copy agrees to that.
    np.testing.assert_allclose(copy(x), logits, atol=0.15)


@pytest.mark.slow
def test_quickstart_with_mixed_precision_exports_float32(tmp_path):
    import json
    import os

    from keras_seq2seq import cli

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["quickstart", "--train-size", "1000", "--epochs", "1",
                         "--mixed-precision"]) == 0
    finally:
        os.chdir(cwd)
    assert keras.config.dtype_policy().name == "float32"  # restored afterwards
    settings = json.load(open(tmp_path / "exports" / "quickstart" / "1" / "assets.extra"
                              / "settings.json"))
    assert settings["model_config"]["dtype"]["config"]["name"] == "float32"


@pytest.mark.parametrize("flags, expected", [
    ([], True), (["--mixed-precision"], True), (["--no-mixed-precision"], False)])
def test_command_line_keeps_or_overrides_the_recipes_precision(flags, expected):
    from keras_seq2seq import cli
    from keras_seq2seq.zoo import load_recipe

    recipe = load_recipe("dates-attention").replace(training={"mixed_precision": True})
    args = cli.build_parser().parse_args(["train", "--recipe", "dates-attention", *flags])
    assert cli._with_command_line_settings(recipe, args).training["mixed_precision"] is expected
