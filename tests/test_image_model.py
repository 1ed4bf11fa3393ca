"""Images into text: the convolutional encoder, ImageToText, its task, export and TFLite."""

import io
import os
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_seq2seq.data.digit_strings import read_digit_strings, targets_path
from keras_seq2seq.data.images import image_text_dataset, images_from_bytes
from keras_seq2seq.decoding import generate, score
from keras_seq2seq.layers import ConvolutionalEncoder
from keras_seq2seq.metrics import error_rate
from keras_seq2seq.models import ImageToText
from keras_seq2seq.text import BOS_ID, EOS_ID
from tests.test_images import write_idx

SMALL = dict(image_height=32, image_width=64, filters=(8, 16), pool_sizes=((2, 2), (16, 2)),
             units=16, embedding_dim=8)


def small_model(**options):
    model = ImageToText(vocabulary_size=20, **dict(SMALL, **options))
    model.build()
    return model


def teacher_forced_log_likelihood(model, images, labels):
    decoder_inputs = np.concatenate([np.full((len(labels), 1), BOS_ID), labels[:, :-1]], axis=1)
    decoder_inputs = np.where(decoder_inputs == EOS_ID, 0, decoder_inputs)
    logits = model({"images": images, "decoder_input_ids": decoder_inputs})
    log_probs = tf.nn.log_softmax(logits).numpy()
    picked = np.take_along_axis(log_probs, labels[:, :, None], axis=-1)[:, :, 0]
    return (picked * (labels > 0)).sum(axis=1)


# -- the layer and the model ----------------------------------------------------


@pytest.mark.parametrize("row_encoder, cell_type", [(True, "lstm"), (False, "lstm"),
                                                     (False, "gru"), (True, "gru")])
def test_memory_has_a_vector_per_feature_map_cell(row_encoder, cell_type):
    encoder = ConvolutionalEncoder(16, filters=(8, 16), pool_sizes=((2, 2), (4, 2)),
                                   row_encoder=row_encoder, cell_type=cell_type)
    memory, states = encoder(tf.random.uniform((3, 32, 50, 1)))
    rows, cols = encoder.feature_shape(32, 50)
    assert (rows, cols) == (4, 13)  # "same" pooling rounds up
    assert memory.shape == (3, rows * cols, 16)
    assert [s.shape for s in states[0]] == [(3, 16)] * (2 if cell_type == "lstm" else 1)


def test_row_encoder_reads_each_row_on_its_own():
    """Changing one row of the feature map changes only that row's memory."""
    encoder = ConvolutionalEncoder(8, filters=(4,), pool_sizes=((8, 1),))
    images = np.random.default_rng(0).uniform(size=(1, 16, 6, 1)).astype("float32")
    changed = images.copy()
    # Rows 9-15 are seen only by the second of the two feature-map rows (its
    # pooling window is rows 8-15; the 3x3 convolution reaches one row further).
    changed[:, 9:] = 0.0
    first, _ = encoder(images)
    second, _ = encoder(changed)
    np.testing.assert_allclose(first[0, :6], second[0, :6], atol=1e-6)
    assert np.abs(first[0, 6:] - second[0, 6:]).max() > 1e-4


def test_bad_encoder_settings_are_refused():
    with pytest.raises(ValueError, match="one entry per block"):
        ConvolutionalEncoder(8, filters=(4, 8), pool_sizes=((2, 2),))
    with pytest.raises(ValueError, match="rows, cols"):
        ConvolutionalEncoder(8, filters=(4,), pool_sizes=((0, 2),))
    with pytest.raises(ValueError, match="through attention"):
        ImageToText(vocabulary_size=20, attention=None)


def test_keras_file_round_trip_keeps_outputs(tmp_path):
    import keras_seq2seq

    model = small_model()
    images = tf.random.uniform((2, 32, 64, 1), seed=1)
    inputs = {"images": images, "decoder_input_ids": tf.constant([[2, 5, 6], [2, 7, 0]])}
    model.save(tmp_path / "m.keras")
    loaded = keras_seq2seq.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(model(inputs), loaded(inputs), atol=1e-5)
    assert loaded.get_config() == model.get_config()


def test_a_backbone_of_the_users_replaces_the_blocks_and_round_trips(tmp_path):
    import keras_seq2seq

    backbone = keras.Sequential([keras.Input((32, 64, 3)),
                                 keras.layers.Conv2D(8, 3, strides=(32, 4), name="stem")])
    model = small_model(backbone=backbone)
    assert (model.feature_rows, model.feature_cols) == (1, 16)
    images = tf.random.uniform((2, 32, 64, 1), seed=2)
    context, _ = model.encode(images)
    assert context["memory"].shape == (2, 16, 16)
    model.save(tmp_path / "b.keras")
    loaded = keras_seq2seq.load_model(str(tmp_path / "b.keras"))
    np.testing.assert_allclose(model.encode(images)[0]["memory"],
                               loaded.encode(images)[0]["memory"], atol=1e-5)


def test_step_by_step_scores_equal_the_teacher_forced_loss():
    """`step` (what every search runs) and `call` (what training runs) are
    one function: forced decoding gives the teacher-forced log-likelihood."""
    model = small_model()
    images = tf.random.uniform((3, 32, 64, 1), seed=3)
    labels = np.array([[5, 6, 7, EOS_ID], [8, EOS_ID, 0, 0], [9, 9, EOS_ID, 0]], "int32")
    log_prob, tokens = score(model, images, labels)
    np.testing.assert_allclose(log_prob, teacher_forced_log_likelihood(model, images, labels),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(tokens, [4, 2, 3])


def test_beam_search_scores_are_the_scores_of_its_outputs():
    model = small_model()
    images = tf.random.uniform((2, 32, 64, 1), seed=4)
    ids, scores = generate(model, images, 6, beam_size=3, alpha=0.0)
    for k in range(3):
        forced, _ = score(model, images, ids[:, k])
        np.testing.assert_allclose(forced, scores[:, k], rtol=1e-4, atol=1e-4)


# -- data, task, export -------------------------------------------------------


def test_error_rate_is_the_levenshtein_distance_over_reference_length():
    def levenshtein(a, b):
        row = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            previous, row[0] = row[0], i
            for j, y in enumerate(b, 1):
                previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
        return row[-1]

    rng = np.random.default_rng(0)
    refs = ["".join(rng.choice(list("0123456789"), rng.integers(1, 9))) for _ in range(200)]
    hyps = ["".join(rng.choice(list("01234567899"), rng.integers(0, 10))) for _ in range(200)]
    expected = sum(levenshtein(h, r) for h, r in zip(hyps, refs)) / sum(map(len, refs))
    assert error_rate(hyps, refs) == pytest.approx(expected)
    assert error_rate(["4 0 7"], ["4 1 7"], unit="word") == pytest.approx(1 / 3)
    assert error_rate(["4 0 7"], ["407"]) == 0.0  # whitespace is no character
    with pytest.raises(ValueError, match="references are empty"):
        error_rate([""], [""])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny digit-strings run, trained one epoch, and its checked export."""
    from keras_seq2seq.export import export_saved_model
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import train
    from keras_seq2seq.zoo import recipe_from_dict

    folder = tmp_path_factory.mktemp("digits")
    images, labels = write_idx(folder, count=400)
    recipe = recipe_from_dict({
        "name": "tiny-digit-strings", "task": "image",
        "data": {"generate": "digit_strings", "images": images, "labels": labels,
                 "max_digits": 3, "train_size": 256, "val_size": 32, "test_size": 32},
        "tokenizer": {"type": "characters"},
        "model": dict(SMALL, **{"class": "image_to_text", "filters": [8, 16],
                                "pool_sizes": [[2, 2], [16, 2]]}),
        "training": {"batch_size": 32, "epochs": 1, "max_target_length": 8},
        "decoding": {"beam_size": 3},
    })
    task = task_for(recipe)
    result = train(task, str(folder / "run"), verbose=0)
    export = export_saved_model(result.exportable, str(folder / "export"), check=True)
    return task, result.exportable, export


@pytest.fixture(scope="module")
def served(trained):
    """The export's signatures, loaded once for the module (a load takes
    seconds): the bad-request tests then also show that one loaded model
    keeps serving after each refused request."""
    return tf.saved_model.load(trained[2]).signatures


def test_pipeline_batches_fitted_images_and_shifted_targets(trained):
    task, reader, _ = trained
    batches = image_text_dataset(task.paths["val"], targets_path(task.paths["val"]),
                                 task.tokenizer, 32, 64, batch_size=8)
    inputs, labels = next(iter(batches))
    assert inputs["images"].shape == (8, 32, 64, 1)
    pngs, texts = read_digit_strings(task.paths["val"])
    np.testing.assert_allclose(inputs["images"], images_from_bytes(tf.constant(pngs[:8]), 32, 64))
    expected = task.tokenizer.encode(tf.constant(texts[:8]), 8).numpy()
    np.testing.assert_array_equal(labels, expected)
    decoder_inputs = inputs["decoder_input_ids"].numpy()
    assert (decoder_inputs[:, 0] == BOS_ID).all()
    shifted = np.where(expected[:, :-1] == EOS_ID, 0, expected[:, :-1])
    np.testing.assert_array_equal(decoder_inputs[:, 1:], shifted)


def test_task_reports_accuracy_and_error_rate_through_the_reader(trained):
    task, reader, _ = trained
    scores = task.evaluate(reader)
    assert scores["items"] == 32 and 0.0 <= scores["sequence_accuracy"] <= 1.0
    assert scores["character_error_rate"] >= 0.0
    assert "sequence accuracy" in task.describe(scores)


def test_export_reads_encoded_images_as_the_model_reads_pixels(trained, served):
    task, reader, _ = trained
    loaded = served
    assert set(loaded) == {"serving_default", "beam_search", "greedy", "read_pixels",
                           "beam_search_options", "alignments"}
    pngs, _ = read_digit_strings(task.paths["test"])
    images = tf.constant(pngs[:5])
    served = loaded["serving_default"](image=images)
    pixels = images_from_bytes(images, 32, 64)
    direct = loaded["read_pixels"](pixels=pixels)
    np.testing.assert_array_equal(served["translation"], direct["translation"])
    np.testing.assert_allclose(served["score"], direct["score"], atol=1e-5)
    beams = loaded["beam_search"](image=images)
    assert beams["translations"].shape == (5, 3)
    np.testing.assert_array_equal(beams["translations"][:, 0], served["translation"])
    options = loaded["beam_search_options"](image=images, beam_size=tf.constant(2),
                                            alpha=tf.constant(0.0), max_length=tf.constant(8))
    assert options["translations"].shape == (5, 2)
    greedy = loaded["greedy"](image=images)
    ids, _ = generate(reader.model, pixels, 8)
    np.testing.assert_array_equal(greedy["translation"], reader.tokenizer.decode(ids[:, 0]))


def test_an_xla_export_warms_up_its_one_program(trained):
    _, reader, _ = trained
    # Every image is fitted to one size: one program, one warm-up request.
    assert len(reader.with_xla_search().warmup_inputs()) == 1


@pytest.mark.slow  # XLA compiles the search, and again in the export's check
def test_an_xla_export_reads_one_image_as_a_batch(trained, tmp_path):
    from tests.conftest import assert_xla_reads_one_item_as_a_batch

    task, reader, _ = trained
    pngs = read_digit_strings(task.paths["test"])[0][:3]
    assert_xla_reads_one_item_as_a_batch(reader, pngs, tmp_path)


def test_parallel_searches_read_as_one_search(trained):
    task, reader, _ = trained
    split = reader.with_parallel_searches(2)
    assert split.run_settings()["parallel_searches"] == 2
    pngs = read_digit_strings(task.paths["test"])[0][:3]
    # One image: the other part is empty, which batch normalization refuses,
    # so its search is skipped.
    for images in (pngs, pngs[:1]):
        want = reader.beam_search(tf.constant(images))
        got = split.beam_search(tf.constant(images))
        np.testing.assert_array_equal(got["translations"], want["translations"])
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)


def test_alignments_are_attention_maps_over_the_feature_map(trained, served):
    task, _, _ = trained
    pngs, _ = read_digit_strings(task.paths["test"])
    out = served["alignments"](image=tf.constant(pngs[:3]))
    attention = out["attention"].numpy()
    assert attention.shape[0] == 3 and attention.shape[2:] == (1, 16)
    assert attention.shape[1] == out["target_pieces"].shape[1]
    real = out["target_pieces"].numpy() != b""
    np.testing.assert_allclose(attention.sum(axis=(2, 3))[real], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["pixels"], images_from_bytes(tf.constant(pngs[:3]), 32, 64),
                               atol=1e-6)


def _png_claiming(height, width):
    """A valid-looking PNG header that claims a huge size, with a tiny body."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))


@pytest.mark.parametrize("bad, message", [
    (lambda png: png[: len(png) // 2], None),
    (lambda png: b"this is not an image", "Unknown image file format"),
    (lambda png: _png_claiming(10_000, 10_000), "at most 4096 pixels on a side"),
    (lambda png: b"", "Input is empty"),
])
def test_bad_images_fail_the_request_with_an_error_and_the_model_keeps_serving(
        trained, served, bad, message):
    task, _, _ = trained
    serve = served["serving_default"]
    pngs, _ = read_digit_strings(task.paths["test"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(image=tf.constant([pngs[0], bad(pngs[0])]))
    assert serve(image=tf.constant([pngs[0]]))["translation"].shape == (1,)


def test_any_size_and_colour_of_image_is_read(served):
    serve = served["serving_default"]
    images = []
    for size in ((3, 700), (900, 20), (40, 100)):
        buffer = io.BytesIO()
        Image.new("RGB", size[::-1], (250, 250, 240)).save(buffer, format="JPEG")
        images.append(buffer.getvalue())
    assert serve(image=tf.constant(images))["translation"].shape == (3,)
    assert serve(image=tf.constant([], tf.string))["translation"].shape == (0,)


def test_tflite_model_reads_pixels_with_the_saved_models_nbest(trained, tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from keras_seq2seq.export import convert_to_tflite

    task, reader, export = trained
    path = str(tmp_path / "digits.tflite")
    sizes = convert_to_tflite(export, path)
    assert os.path.exists(os.path.splitext(path)[0] + ".vocab.txt") and sizes[path] > 0
    interpreter = litert.Interpreter(model_path=path)
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops), ops
    decode = interpreter.get_signature_runner("decode")
    pngs, _ = read_digit_strings(task.paths["test"])
    pixels = images_from_bytes(tf.constant(pngs[:6]), 32, 64).numpy()
    for one in pixels:
        got = decode(pixels=one[None])
        want_ids, want_scores = reader.search(tf.constant(one[None]))
        np.testing.assert_array_equal(got["target_ids"], want_ids)
        np.testing.assert_allclose(got["scores"], want_scores, atol=1e-4)


def test_read_command_prints_each_files_text_and_draws_attention(trained, tmp_path, capsys):
    from keras_seq2seq import cli

    task, reader, export = trained
    pngs, _ = read_digit_strings(task.paths["test"])
    files = []
    for i, png in enumerate(pngs[:3]):
        files.append(str(tmp_path / f"{i}.png"))
        with open(files[-1], "wb") as f:
            f.write(png)
    picture = str(tmp_path / "attention.png")
    assert cli.main(["read", "--model", export, *files, "--plot-attention", picture]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = reader.serving_default(tf.constant(pngs[:3]))["translation"].numpy()
    assert lines == [f"{path}\t{text.decode()}" for path, text in zip(files, expected)]
    assert Image.open(picture).size[0] > 100

    broken = tmp_path / "broken.png"
    broken.write_bytes(pngs[0][:40])
    assert cli.main(["read", "--model", export, files[0], str(broken)]) == 2
    assert f"{broken}: refused" in capsys.readouterr().err
