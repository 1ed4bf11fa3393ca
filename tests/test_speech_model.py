"""Speech into text: WAV decoding, the log-mel front-end, the pyramidal
encoder, SpeechToText, its task, export and TFLite."""

import io
import json
import os
import struct
import wave

import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq.data.audio import (
    MAX_AUDIO_SECONDS,
    MAX_WAV_CHUNKS,
    decode_wav,
    encode_wav,
    read_wav,
    speech_text_dataset,
    waveforms_from_bytes,
)
from keras_seq2seq.data.digit_strings import read_digit_strings, targets_path
from keras_seq2seq.data.spoken_digits import SPLIT_INDEXES, read_clips
from keras_seq2seq.decoding import generate, score
from keras_seq2seq.layers import ConvolutionalSubsampling, LogMelSpectrogram, PyramidalEncoder
from keras_seq2seq.models import SpeechToText
from keras_seq2seq.text import BOS_ID, EOS_ID
from tests.conftest import assert_each_is_read_or_refused, mutated


def wav_bytes(samples, rate=8000, channels=1):
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def tone(seconds, hz=440.0, rate=8000):
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


# -- decoding and the front-end ------------------------------------------------


def test_wav_bytes_decode_to_the_samples_written():
    samples = tone(0.3)
    decoded = decode_wav(tf.constant(encode_wav(samples))).numpy()
    np.testing.assert_allclose(decoded, samples, atol=1 / 32767)
    again, rate = read_wav_file(encode_wav(samples))
    np.testing.assert_allclose(again, decoded, atol=1e-6)
    assert rate == 8000


def read_wav_file(data):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as f:
        f.write(data)
    try:
        return read_wav(f.name)
    finally:
        os.unlink(f.name)


def test_stereo_is_averaged_and_a_batch_is_padded_with_lengths():
    left, right = tone(0.2, 300), tone(0.2, 500)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    mono = decode_wav(tf.constant(wav_bytes(stereo, channels=2))).numpy()
    np.testing.assert_allclose(mono, (left + right) / 2, atol=2 / 32767)
    waveforms, lengths = waveforms_from_bytes(tf.constant([encode_wav(tone(0.1)),
                                                           encode_wav(tone(0.25)),
                                                           encode_wav(np.zeros(0))]))
    assert waveforms.shape == (3, 2000) and lengths.numpy().tolist() == [800, 2000, 0]
    assert not waveforms[0, 800:].numpy().any()


@pytest.mark.parametrize("data, message", [
    (lambda: wav_bytes(tone(0.2, rate=16000), rate=16000), "sampled at 8000 Hz"),
    (lambda: encode_wav(np.zeros(8000 * (MAX_AUDIO_SECONDS + 1))), "at most 30 s"),
    (lambda: encode_wav(np.zeros(8000 * 600)), "at most .* bytes"),
    (lambda: b"RIFF not really a wave file", "not a WAV file"),
    (lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not a WAV file"),
    (lambda: encode_wav(tone(0.5))[:30], None),
])
def test_bad_recordings_fail_with_an_error(data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        decode_wav(tf.constant(data()))


def riff(*chunks):
    """WAV bytes of `(name, payload[, claimed size])` chunks after the header."""
    body = b"".join(name + struct.pack("<I", len(payload) if not claimed else claimed[0]) + payload
                    for name, payload, *claimed in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def format_chunk(channels=1, rate=8000, extra=b""):
    return (b"fmt ", struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels,
                                 2 * channels, 16) + extra)


def test_chunks_decode_wav_skips_are_read_past():
    samples = tone(0.1)
    pcm = (samples * 32767).astype("<i2").tobytes()
    data = riff(format_chunk(extra=b"\0\0"), (b"LIST", b"INFOISFT\4\0\0\0abc\0"),
                (b"data", pcm), (b"junk", b"\xff" * 6))
    np.testing.assert_allclose(decode_wav(tf.constant(data)).numpy(), samples, atol=2 / 32767)


@pytest.mark.parametrize("data, message", [
    # decode_wav's own messages would quote the bytes found where a chunk's
    # name should be, which are no UTF-8: Python raised UnicodeDecodeError.
    (lambda: riff((b"f\xe9t ", b"\0" * 16), (b"data", b"\0" * 8)), "no fmt chunk"),
    (lambda: riff(format_chunk(), (b"data", b"\0" * 8), (b"\xfd\xeeB\xea", b"", 3795379705)),
     "2 GiB"),
    # A data chunk of an odd size is read in whole samples: the walk goes on
    # after the last whole sample, as decode_wav's, so the data's ninth byte
    # starts the next chunk's name.
    (lambda: riff(format_chunk(), (b"data", b"\0" * 9)) + b"\x99\x99\xff\xff\xff\xff\xff",
     "2 GiB"),
    (lambda: riff(format_chunk(), *[(b"pad ", b"")] * MAX_WAV_CHUNKS, (b"data", b"\0" * 8)),
     f"at most {MAX_WAV_CHUNKS} chunks"),
])
def test_malformed_chunks_fail_with_an_error_of_their_own(data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        decode_wav(tf.constant(data()))


def test_damaged_wav_files_are_read_or_refused_one_by_one():
    files = [encode_wav(tone(seconds)) for seconds in (0, 0.0001, 0.05, 0.5)]
    read = tf.function(waveforms_from_bytes, input_signature=[tf.TensorSpec([None], tf.string)])
    answered = assert_each_is_read_or_refused(read, mutated(files, 300, seed=1))
    assert 0 < answered < 300  # both kinds happen


def test_front_end_equals_tf_signal_stft_and_mel_matrix():
    frontend = LogMelSpectrogram()
    waveform = np.random.default_rng(0).normal(0, 0.1, (2, 4000)).astype("float32")
    lengths = np.array([4000, 2345])
    features, mask = frontend(waveform, lengths)
    assert mask.numpy().sum(axis=1).tolist() == [50, 30]  # ceil(n / 80)
    for row, length in enumerate(lengths):
        # Samples past a recording's length read as silence, as stft's padding.
        padded = np.pad(waveform[row][:length], (0, 4000 - length))
        stft = tf.signal.stft(padded, 200, 80, 256, pad_end=True)
        frames = int(mask[row].numpy().sum())
        mel = tf.math.log(tf.abs(stft) ** 2 @ frontend._mel + 1e-6).numpy()[:frames]
        expected = (mel - mel.mean(axis=0)) / np.sqrt(mel.var(axis=0) + 1e-5)
        np.testing.assert_allclose(features[row, :frames].numpy(), expected, atol=2e-3)
        assert not features[row, frames:].numpy().any()


def test_pcen_front_end_equals_librosas_recursion():
    # librosa.pcen's definition, written as its recursion: smooth[t] =
    # (1 - s) smooth[t - 1] + s E[t] from smooth[-1] = E[0], then
    # (E / (eps + smooth)^gain + bias)^power - bias^power.
    frontend = LogMelSpectrogram(compression="pcen")
    rng = np.random.default_rng(0)
    # Long enough (400 frames) for the convolution's dropped taps to count;
    # a voice 5 times quieter in the second half.
    waveform = rng.normal(0, 0.1, (1, 32000)).astype("float32")
    waveform[0, 16000:] *= 0.2
    features, mask = frontend(waveform, np.array([32000]))
    stft = tf.signal.stft(waveform[0], 200, 80, 256, pad_end=True).numpy()
    energy = (np.abs(stft) @ frontend._mel) * 2.0 ** 15
    t = 0.4 * 8000 / 80
    s = (np.sqrt(1 + 4 * t ** 2) - 1) / (2 * t ** 2)
    smooth, previous = np.empty_like(energy), energy[0]
    for step, frame in enumerate(energy):
        previous = smooth[step] = (1 - s) * previous + s * frame
    pcen = np.sqrt(energy / (1e-6 + smooth) ** 0.98 + 2) - np.sqrt(2)
    expected = (pcen - pcen.mean(axis=0)) / np.sqrt(pcen.var(axis=0) + 1e-5)
    assert mask.numpy().sum() == 400
    np.testing.assert_allclose(features[0].numpy(), expected, atol=5e-3)
    with pytest.raises(ValueError, match="compression"):
        LogMelSpectrogram(compression="cube_root")


def test_noise_subtraction_takes_the_lowest_window_mean_out_of_each_mel_bin():
    frontend = LogMelSpectrogram(noise_subtraction=4.0)
    rng = np.random.default_rng(0)
    # A quiet tone in louder white noise, then a shorter recording padded
    # in the batch.
    tone = 0.004 * np.sin(2 * np.pi * 500 * np.arange(4000) / 8000)
    waveform = rng.normal(0, 0.01, (2, 12000)).astype("float32")
    waveform[0, 4000:8000] += tone.astype("float32")
    lengths = np.array([12000, 7000])
    features, mask = frontend(waveform, lengths)
    for row, length in enumerate(lengths):
        padded = np.pad(waveform[row][:length], (0, 12000 - length))
        stft = tf.signal.stft(padded, 200, 80, 256, pad_end=True)
        frames = int(mask[row].numpy().sum())
        power = (tf.abs(stft) ** 2 @ frontend._mel).numpy()[:frames]
        windows = np.stack([power[k:k + 5].mean(axis=0) for k in range(frames - 4)])
        noise = windows.min(axis=0)
        mel = np.log(np.maximum(power - 4.0 * noise, 0.05 * noise) + 1e-6)
        expected = (mel - mel.mean(axis=0)) / np.sqrt(mel.var(axis=0) + 1e-5)
        np.testing.assert_allclose(features[row, :frames].numpy(), expected, atol=2e-3)
        assert not features[row, frames:].numpy().any()
    # What it is for: frames of noise alone read mostly as one flat floor,
    # each bin's lowest value, instead of the noise's random texture.
    plain = LogMelSpectrogram()(waveform[:1], lengths[:1])[0].numpy()[0]

    def at_floor(features):
        noise_frames = np.r_[features[:45], features[105:]]
        return np.mean(np.isclose(noise_frames, features.min(axis=0), atol=1e-4))

    assert at_floor(features.numpy()[0]) > 0.7 and at_floor(plain) < 0.05
    with pytest.raises(ValueError, match="noise_subtraction"):
        LogMelSpectrogram(noise_subtraction=-1)
    with pytest.raises(ValueError, match="noise_window"):
        LogMelSpectrogram(noise_window=0)


def test_noise_estimate_of_a_recording_shorter_than_its_window_reads_its_first_frames():
    frontend = LogMelSpectrogram(noise_subtraction=1.0)
    power = np.ones((2, 6, 3), "float32")
    power[0, 2] = 0.1
    power[1, 2:] = 0.0  # padding past the second recording's 2 frames
    noise = frontend.noise_power(tf.constant(power), tf.constant([6, 2])).numpy()[:, 0]
    np.testing.assert_allclose(noise, [[0.82] * 3, [0.4] * 3])
    # A batch narrower than the window.
    narrow = frontend.noise_power(tf.ones((1, 2, 3)), tf.constant([2])).numpy()
    np.testing.assert_allclose(narrow, 0.4 * np.ones((1, 1, 3)))


def test_front_end_reads_an_empty_recording_as_one_silent_frame():
    features, mask = LogMelSpectrogram()(tf.zeros([1, 0]), tf.constant([0]))
    assert features.shape == (1, 1, 40) and mask.numpy().tolist() == [[True]]
    assert np.isfinite(features.numpy()).all()


def test_pyramid_shortens_time_and_its_mask():
    encoder = PyramidalEncoder(16, reductions=(2, 3))
    inputs = tf.random.normal((2, 25, 8))
    mask = tf.sequence_mask([25, 7], 25)
    outputs, states, reduced = encoder(inputs, mask=mask)
    assert outputs.shape == (2, 5, 16)  # ceil(ceil(25 / 2) / 3)
    assert reduced.numpy().sum(axis=1).tolist() == [5, 2]
    assert encoder.reduced_lengths(tf.constant([25, 7])).numpy().tolist() == [5, 2]
    assert not outputs[1, 2:].numpy().any()
    assert [s.shape for s in states[0]] == [(2, 16), (2, 16)]


def test_subsampling_halves_time_and_frequency_and_reads_a_sequence_as_alone():
    subsampling = ConvolutionalSubsampling((4, 6))
    inputs = tf.random.normal((2, 25, 9))
    # Padding is zeros, as the front-end leaves it.
    inputs *= tf.cast(tf.sequence_mask([25, 7], 25), tf.float32)[:, :, None]
    outputs, mask = subsampling(inputs, mask=tf.sequence_mask([25, 7], 25))
    assert outputs.shape == (2, 7, 3 * 6)  # ceil(ceil(25 / 2) / 2), ceil(ceil(9 / 2) / 2)
    assert subsampling.output_features(9) == 18
    assert mask.numpy().sum(axis=1).tolist() == [7, 2]
    assert subsampling.reduced_lengths(tf.constant([25, 7])).numpy().tolist() == [7, 2]
    assert not outputs[1, 2:].numpy().any()
    # 7 steps read the same alone, padded to an even length, and in the batch.
    for total in (7, 8, 26):
        alone, _ = subsampling(tf.pad(inputs[1:, :7], [[0, 0], [0, total - 7], [0, 0]]),
                               mask=tf.sequence_mask([7], total))
        np.testing.assert_allclose(alone[0, :2], outputs[1, :2], atol=1e-6)


# -- the model -----------------------------------------------------------------

# The pyramid alone, and two convolutions under one pyramid layer: both
# shorten time by 4.
ENCODERS = [{"reductions": (2, 2)}, {"convolutions": (4, 4), "reductions": (1,)}]


def small_model(**options):
    """A small SpeechToText, the pyramid alone unless `options` say otherwise."""
    model = SpeechToText(vocabulary_size=20, units=16, embedding_dim=8,
                         **{**ENCODERS[0], **options})
    model.build()
    return model


@pytest.mark.parametrize("encoder", ENCODERS)
def test_model_round_trips_and_step_scores_equal_the_teacher_forced_loss(tmp_path, encoder):
    import keras_seq2seq

    model = small_model(**encoder)
    inputs = {"waveform": tf.random.normal((3, 4000), stddev=0.1, seed=1),
              "lengths": tf.constant([4000, 1500, 3000])}
    labels = np.array([[5, 6, 7, EOS_ID], [8, EOS_ID, 0, 0], [9, 9, EOS_ID, 0]], "int32")
    decoder_inputs = np.concatenate([np.full((3, 1), BOS_ID), labels[:, :-1]], axis=1)
    decoder_inputs = np.where(decoder_inputs == EOS_ID, 0, decoder_inputs)
    logits = model(dict(inputs, decoder_input_ids=decoder_inputs))
    log_probs = tf.nn.log_softmax(logits).numpy()
    picked = np.take_along_axis(log_probs, labels[:, :, None], axis=-1)[:, :, 0]
    forced, _ = score(model, inputs, labels)
    np.testing.assert_allclose(forced, (picked * (labels > 0)).sum(axis=1), atol=1e-4)
    assert model.source_mask(inputs).numpy().sum(axis=1).tolist() == [13, 5, 10]
    model.save(tmp_path / "s.keras")
    loaded = keras_seq2seq.load_model(str(tmp_path / "s.keras"))
    np.testing.assert_allclose(loaded(dict(inputs, decoder_input_ids=decoder_inputs)), logits,
                               atol=1e-5)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_padding_a_recording_does_not_change_what_the_model_reads(encoder):
    model = small_model(**encoder)
    waveform = tf.random.normal((1, 3000), stddev=0.1, seed=2)
    alone = generate(model, {"waveform": waveform, "lengths": tf.constant([3000])}, 6,
                     beam_size=2)
    padded = generate(model, {"waveform": tf.pad(waveform, [[0, 0], [0, 2000]]),
                              "lengths": tf.constant([3000])}, 6, beam_size=2)
    np.testing.assert_array_equal(alone[0], padded[0])
    np.testing.assert_allclose(alone[1], padded[1], atol=1e-5)


def brute_force_ctc(probs, labels):
    """-log of the summed probability of every path of `probs` [T, V] that
    collapses (repeats merged, then blanks 0 dropped) to `labels`."""
    import itertools

    total = 0.0
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        collapsed = [t for i, t in enumerate(path) if t != 0 and (i == 0 or t != path[i - 1])]
        if collapsed == list(labels):
            total += np.prod([probs[i, t] for i, t in enumerate(path)])
    return -np.log(total) if total else np.inf


def test_ctc_loss_per_token_equals_the_sum_over_every_alignment():
    from keras_seq2seq.models.speech_to_text import ctc_loss_per_token

    logits = tf.random.normal((4, 5, 3), seed=3)
    logit_lengths = tf.constant([5, 4, 2, 3])
    # Rows: two labels; a repeat (needs a blank between); a repeat with too
    # few positions (2 < 3); no labels at all.
    labels = tf.constant([[1, 2, 0], [2, 2, 1], [1, 1, 0], [0, 0, 0]])
    label_lengths = tf.constant([2, 3, 2, 0])
    got = ctc_loss_per_token(logits, logit_lengths, labels, label_lengths).numpy()
    probs = tf.nn.softmax(logits).numpy()
    for row in range(2):
        n = int(label_lengths[row])
        expected = brute_force_ctc(probs[row, : int(logit_lengths[row])], labels[row, :n].numpy())
        np.testing.assert_allclose(got[row], expected / n, rtol=1e-4)
    assert brute_force_ctc(probs[2, :2], [1, 1]) == np.inf
    assert got[2] == 0 and got[3] == 0


def test_ctc_weight_adds_a_loss_in_training_only_that_trains_the_encoder(tmp_path):
    import keras_seq2seq

    inputs = {"waveform": tf.random.normal((2, 4000), stddev=0.1, seed=4),
              "lengths": tf.constant([4000, 2500]),
              "decoder_input_ids": tf.constant([[BOS_ID, 5, 6, 7], [BOS_ID, 8, 0, 0]])}
    plain = small_model()
    plain(inputs, training=True)
    assert not plain.losses
    model = small_model(ctc_weight=0.5)
    model(inputs, training=False)
    assert not model.losses
    with tf.GradientTape() as tape:
        model(inputs, training=True)
        (loss,) = model.losses
    assert np.isfinite(loss.numpy()) and loss.numpy() > 0
    encoder_kernel = model.encoder.trainable_weights[0]
    gradients = tape.gradient(loss, [model.ctc_projection.kernel, encoder_kernel,
                                     model.output_projection.kernel])
    assert np.abs(gradients[0].numpy()).sum() > 0 and np.abs(gradients[1].numpy()).sum() > 0
    assert gradients[2] is None  # the decoder is not part of it
    model.save(tmp_path / "ctc.keras")
    loaded = keras_seq2seq.load_model(str(tmp_path / "ctc.keras"))
    assert loaded.ctc_weight == 0.5
    np.testing.assert_allclose(loaded.ctc_projection.kernel.numpy(),
                               model.ctc_projection.kernel.numpy())
    with pytest.raises(ValueError, match="ctc_weight"):
        SpeechToText(vocabulary_size=20, ctc_weight=-1)


def test_fit_adds_the_ctc_loss_to_the_training_loss_only():
    import keras

    model = small_model(ctc_weight=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = {"waveform": tf.random.normal((2, 4000), stddev=0.1, seed=5),
         "lengths": tf.constant([4000, 2500]),
         "decoder_input_ids": tf.constant([[BOS_ID, 5, 6, 7], [BOS_ID, 8, 0, 0]])}
    y = tf.constant([[5, 6, 7, EOS_ID], [8, EOS_ID, 0, 0]])
    # Fixed-shape tensors (a static batch size) go through the training loop too.
    training_loss = model.train_on_batch(x, y)
    validation_loss = model.test_on_batch(x, y)
    model(x, training=True)
    (ctc,) = model.losses
    np.testing.assert_allclose(training_loss - validation_loss, float(ctc), rtol=1e-4)
    assert float(ctc) > 0


# -- data, task, export -------------------------------------------------------


def write_clips(folder):
    """Synthetic FSDD-like clips: digit d is a tone of its own pitch."""
    folder.mkdir()
    for digit in range(10):
        for speaker in ("ann", "bob"):
            for index in range(5, 50, 3):
                samples = tone(0.15 + 0.01 * (index % 4), hz=300 + 100 * digit)
                with open(folder / f"{digit}_{speaker}_{index}.wav", "wb") as f:
                    f.write(encode_wav(samples))
    return str(folder)


def test_splits_are_by_clip_index(tmp_path):
    folder = write_clips(tmp_path / "clips")
    seen = {}
    for split in ("train", "val", "test"):
        clips, digits = read_clips(folder, split)
        assert clips and len(clips) == len(digits)
        seen[split] = {name for name in os.listdir(folder)
                       if int(name.split("_")[2][:-4]) in SPLIT_INDEXES[split]}
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"])
    with pytest.raises(ValueError, match="holds no"):
        read_clips(str(tmp_path), "train")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny spoken-digits run, trained one epoch, and its checked export."""
    from keras_seq2seq.export import export_saved_model
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import train
    from keras_seq2seq.zoo import recipe_from_dict

    folder = tmp_path_factory.mktemp("speech")
    recipe = recipe_from_dict({
        "name": "tiny-spoken-digits", "task": "speech",
        "data": {"generate": "spoken_digit_strings", "recordings": write_clips(folder / "clips"),
                 "max_digits": 3, "train_size": 64, "val_size": 16, "test_size": 16},
        "tokenizer": {"type": "characters"},
        # With a convolutional front-end, a CTC head and noise subtraction,
        # so that training, export and TFLite carry them.
        "model": {"class": "speech_to_text", "units": 16, "embedding_dim": 8,
                  "convolutions": [4], "reductions": [1, 2], "ctc_weight": 0.3,
                  "noise_subtraction": 4.0},
        "training": {"batch_size": 16, "epochs": 1, "max_target_length": 10},
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


def test_composed_targets_are_spaced_digits_and_batches_shift_them(trained):
    task, _, _ = trained
    wavs, texts = read_digit_strings(task.paths["train"])
    assert all(1 <= len(t.split()) <= 3 and t.replace(" ", "").isdigit() for t in texts)
    by_length = {}
    for wav, text in zip(wavs, texts):
        by_length.setdefault(len(wav), set()).add(text)
    batches = list(speech_text_dataset(task.paths["train"], targets_path(task.paths["train"]),
                                       task.tokenizer, batch_size=4, max_target_length=10))
    assert sum(len(labels) for _, labels in batches) == len(wavs)
    for inputs, labels in batches:
        sizes = 44 + 2 * inputs["lengths"].numpy()
        # Bucketed: a batch's recordings lie within the same half second (8,000 bytes).
        assert len(set(sizes // 8000)) == 1
        assert (inputs["decoder_input_ids"].numpy()[:, 0] == BOS_ID).all()
        for size, row in zip(sizes, labels.numpy()):
            candidates = task.tokenizer.encode(tf.constant(sorted(by_length[size])), 10).numpy()
            assert any(np.array_equal(np.trim_zeros(row, "b"), np.trim_zeros(c, "b"))
                       for c in candidates)


def compose_twice(tmp_path, **training_option):
    """Spoken digit strings composed without and with a training-only option:
    `(plain, changed)`, each `{split: path}`; validation and test must match."""
    from keras_seq2seq.data.spoken_digits import write_spoken_digit_strings

    folder = write_clips(tmp_path / "clips")
    sizes = {"train": 20, "val": 5, "test": 5}
    plain = write_spoken_digit_strings(str(tmp_path / "plain"), folder, sizes, max_digits=3)
    changed = write_spoken_digit_strings(str(tmp_path / "changed"), folder, sizes, max_digits=3,
                                         **training_option)
    for split in ("val", "test"):
        assert read_digit_strings(plain[split]) == read_digit_strings(changed[split])
    return plain, changed


def test_speed_perturbation_changes_training_clips_only(tmp_path):
    from keras_seq2seq.data.spoken_digits import change_speed

    clip = tone(0.5)
    assert len(change_speed(clip, 1.25)) == pytest.approx(len(clip) / 1.25, abs=1)
    np.testing.assert_allclose(change_speed(clip, 1.0), clip[:-1], atol=1e-6)
    plain, fast = compose_twice(tmp_path, speed_perturbation=0.2)
    assert read_digit_strings(plain["train"]) != read_digit_strings(fast["train"])


def test_training_noise_changes_training_strings_only(tmp_path):
    plain, noisy = compose_twice(tmp_path, training_noise=0.05)
    plain_wavs, plain_targets = read_digit_strings(plain["train"])
    noisy_wavs, noisy_targets = read_digit_strings(noisy["train"])
    assert plain_targets == noisy_targets

    def silence_level(wav):
        # The first 50 ms are leading silence: only the added noise.
        samples, _ = read_wav_file(wav)
        return samples[:400].std()

    assert np.mean([silence_level(w) for w in noisy_wavs]) > 2 * np.mean(
        [silence_level(w) for w in plain_wavs])


def test_a_run_folder_composed_with_other_settings_fails_before_training(tmp_path):
    from keras_seq2seq.errors import RunFolderError
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.zoo import recipe_from_dict

    def recipe(**data):
        return recipe_from_dict({
            "name": "tiny", "task": "speech",
            "data": {"generate": "spoken_digit_strings", "recordings": clips, "max_digits": 3,
                     "train_size": 8, "val_size": 4, "test_size": 4, **data},
            "tokenizer": {"type": "characters"}, "model": {"class": "speech_to_text"}})

    clips = write_clips(tmp_path / "clips")
    run = str(tmp_path / "run")
    first = task_for(recipe()).prepare(run)
    # The same settings read the same strings again.
    again = task_for(recipe()).prepare(run)
    assert read_digit_strings(again.paths["train"]) == read_digit_strings(first.paths["train"])
    with pytest.raises(RunFolderError, match=r"data.training_noise 0.01 \(the recipe says 0.02\)"):
        task_for(recipe(training_noise=0.02)).prepare(run)
    with pytest.raises(RunFolderError, match=r"data.train_size 8 \(the recipe says 16\)"):
        task_for(recipe(train_size=16)).prepare(run)
    # A folder recorded before data.training_equalization existed was
    # composed without equalizers.
    record = tmp_path / "run" / "data" / "composed.json"
    settings = json.loads(record.read_text())
    del settings["data.training_equalization"]
    record.write_text(json.dumps(settings))
    task_for(recipe()).prepare(run)
    with pytest.raises(RunFolderError, match=r"data.training_equalization 0.0 \(the recipe says 6"):
        task_for(recipe(training_equalization=6)).prepare(run)


def test_training_levels_change_training_strings_only(tmp_path):
    from keras_seq2seq.data.spoken_digits import compose_utterance

    plain, levelled = compose_twice(tmp_path, training_levels=[0.002, 0.2])
    assert read_digit_strings(plain["train"])[1] == read_digit_strings(levelled["train"])[1]
    # Clips of one loudness (0.5 / sqrt(2) RMS) come out at the drawn levels:
    # a recording's energy is its clip's plus the noise's (0.001 a sample).
    clips = [tone(0.2, hz=300 + 100 * d) for d in range(10)]
    rng = np.random.default_rng(0)
    for low, high in [(0.01, 0.01), (0.05, 0.05), (0.003, 0.3)]:
        levels = []
        for _ in range(40):
            wav, _ = compose_utterance(clips, list(range(10)), rng, max_digits=1,
                                       noise=0.001, levels=(low, high))
            samples, _ = read_wav_file(wav)
            clip_energy = np.sum(samples.astype(np.float64) ** 2) - len(samples) * 0.001 ** 2
            levels.append(np.sqrt(max(clip_energy, 0.0) / len(clips[0])))
        assert low * 0.9 < min(levels) and max(levels) < high * 1.1
    # Drawn log-uniformly: about as many under the geometric middle as over.
    assert 10 < sum(level < np.sqrt(0.003 * 0.3) for level in levels) < 30


def test_training_equalization_changes_training_clips_only(tmp_path):
    from keras_seq2seq.data.spoken_digits import equalize

    plain, equalized = compose_twice(tmp_path, training_equalization=6.0)
    assert read_digit_strings(plain["train"]) != read_digit_strings(equalized["train"])
    # A flat curve changes nothing; a tilt of +6 dB at 0 Hz to -6 dB at the
    # Nyquist frequency lowers 3.9 kHz about 12 dB against 100 Hz, at the
    # clip's own level.
    low, high = tone(0.5, hz=100), tone(0.5, hz=3900)
    np.testing.assert_allclose(equalize(low + high, [0, 0, 0]), low + high, atol=1e-5)
    tilted = equalize(low + high, [6.0, 0, 0])
    spectrum = np.abs(np.fft.rfft(tilted))
    frequencies = np.fft.rfftfreq(len(tilted), 1 / 8000)
    ratio_db = 20 * np.log10(spectrum[np.argmin(abs(frequencies - 100))]
                             / spectrum[np.argmin(abs(frequencies - 3900))])
    assert ratio_db == pytest.approx(12.0, abs=0.5)
    assert np.sqrt(np.mean(tilted ** 2)) == pytest.approx(np.sqrt(np.mean((low + high) ** 2)),
                                                          rel=1e-4)


def test_export_reads_wav_bytes_as_the_model_reads_samples(trained, served):
    task, reader, _ = trained
    loaded = served
    assert set(loaded) == {"serving_default", "beam_search", "greedy", "read_waveform",
                           "beam_search_options", "alignments"}
    wavs, _ = read_digit_strings(task.paths["test"])
    audio = tf.constant(wavs[:4])
    served = loaded["serving_default"](audio=audio)
    waveform, lengths = waveforms_from_bytes(audio)
    direct = loaded["read_waveform"](waveform=waveform, lengths=lengths)
    np.testing.assert_array_equal(served["translation"], direct["translation"])
    np.testing.assert_allclose(served["score"], direct["score"], atol=1e-5)
    assert loaded["beam_search"](audio=audio)["translations"].shape == (4, 3)
    out = loaded["alignments"](audio=audio)
    real = out["target_pieces"].numpy() != b""
    np.testing.assert_allclose(out["attention"].numpy().sum(axis=2)[real], 1.0, atol=1e-5)
    assert out["features"].shape[:1] == (4,) and out["features"].shape[2] == 40
    assert task.evaluate(reader)["items"] == 16


def test_bfloat16_matmuls_read_as_float32_does_and_tflite_stays_float32(trained):
    from tests.conftest import matmul_dtypes

    task, reader, _ = trained
    fast = reader.with_bfloat16_matmuls()
    assert fast.settings["matmul_dtype"] == "bfloat16"
    audio = tf.constant(read_digit_strings(task.paths["test"])[0][:4])
    inputs = reader.model_inputs(audio)
    want, got = reader.search(inputs), fast.search(inputs)
    np.testing.assert_allclose(got[1], want[1], rtol=2e-2)
    assert tf.bfloat16 in matmul_dtypes(
        fast._traced_search.get_concrete_function(inputs, {}))
    decode, signature = fast.tflite_decode()
    concrete = tf.function(decode, autograph=False, input_signature=signature).get_concrete_function()
    assert matmul_dtypes(concrete) == {tf.float32}


def test_an_xla_exports_warm_up_requests_cover_every_length(trained):
    from keras_seq2seq.export.speech_reader import XLA_BUCKET_SECONDS

    _, reader, _ = trained
    compiled = reader.with_xla_search()
    # Silence as long as each bucket, the last as long as the cap: 1, 2,
    # ..., 8, 16 and 30 s (bucket 32).
    lengths = [waveforms_from_bytes(tf.constant(inputs["audio"]))[1].numpy()[0] / 8000
               for inputs in compiled.warmup_inputs()]
    assert lengths == list(XLA_BUCKET_SECONDS[:-1]) + [MAX_AUDIO_SECONDS] == [
        1, 2, 3, 4, 5, 6, 7, 8, 16, 30]
    # A recording is padded to the first bucket that holds it, past which
    # its length (not the waveform's width) says the model hears nothing.
    inputs, _ = compiled.xla_bucketed({"waveform": tf.zeros([1, 8001]),
                                       "lengths": tf.constant([8001])}, {})
    assert inputs["waveform"].shape == (1, 16000) and inputs["lengths"].numpy().tolist() == [8001]


@pytest.mark.slow  # XLA compiles the search for each length and again in the export's check
def test_an_xla_export_reads_one_recording_as_a_batch(trained, tmp_path):
    from tests.conftest import assert_xla_reads_one_item_as_a_batch

    task, reader, _ = trained
    wavs = read_digit_strings(task.paths["test"])[0][:3] + [encode_wav(np.zeros(0))]
    assert_xla_reads_one_item_as_a_batch(reader, wavs, tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda: wav_bytes(tone(0.3, rate=16000), rate=16000), "sampled at 8000 Hz"),
    (lambda: encode_wav(np.zeros(8000 * 600)), "at most"),
    (lambda: b"\x89PNG not audio", "not a WAV file"),
    (lambda: riff((b"f\xe9t ", b"\0" * 16), (b"data", b"\0" * 8)), "no fmt chunk"),
])
def test_bad_requests_fail_alone_and_the_model_keeps_serving(trained, served, make, message):
    task, _, _ = trained
    serve = served["serving_default"]
    good = read_digit_strings(task.paths["test"])[0][0]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(audio=tf.constant([good, make()]))
    answers = serve(audio=tf.constant([good, encode_wav(np.zeros(0)), encode_wav(np.zeros(8000)),
                                       wav_bytes(np.stack([tone(0.3)] * 2, 1).reshape(-1),
                                                 channels=2)]))
    assert answers["translation"].shape == (4,)
    assert serve(audio=tf.constant([], tf.string))["translation"].shape == (0,)


def test_samples_over_the_cap_fail_the_request_and_the_model_keeps_serving(served):
    read = served["read_waveform"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 30 s"):
        read(waveform=tf.zeros([1, 8000 * 30 + 1]), lengths=tf.constant([8000]))
    assert read(waveform=tf.zeros([1, 8000 * 30]),
                lengths=tf.constant([8000]))["translation"].shape == (1,)


def test_tflite_model_reads_samples_with_the_saved_models_nbest(trained, tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from keras_seq2seq.export import convert_to_tflite

    task, reader, export = trained
    path = str(tmp_path / "speech.tflite")
    convert_to_tflite(export, path)
    interpreter = litert.Interpreter(model_path=path)
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops), ops
    wavs, _ = read_digit_strings(task.paths["test"])
    for data in wavs[:4]:
        waveform = decode_wav(tf.constant(data)).numpy()[None]
        interpreter = litert.Interpreter(model_path=path)
        decode = interpreter.get_signature_runner("decode")
        got = decode(waveform=waveform)
        want_ids, want_scores = reader.search({"waveform": tf.constant(waveform),
                                               "lengths": tf.constant([waveform.shape[1]])})
        np.testing.assert_array_equal(got["target_ids"], want_ids)
        np.testing.assert_allclose(got["scores"], want_scores, atol=1e-3)


def test_spec_augment_masks_bands_in_training_only():
    from keras_seq2seq.layers import SpecAugment

    augment = SpecAugment(frequency_masks=1, frequency_width=5, time_masks=1, time_width=7,
                          seed=3)
    features = tf.ones((16, 50, 40))
    assert augment(features) is features
    masked = augment(features, training=True).numpy() == 0
    bins = masked.all(axis=1).sum(axis=1)  # bins zero at every frame
    frames = masked.all(axis=2).sum(axis=1)  # frames zero in every bin
    assert bins.max() <= 5 and frames.max() <= 7 and (bins + frames).sum() > 0
    # Everything masked lies in a masked band.
    assert (masked == (masked.all(axis=1)[:, None, :] | masked.all(axis=2)[:, :, None])).all()


def test_read_command_reads_wav_files_and_draws_the_spectrogram_attention(trained, tmp_path,
                                                                          capsys):
    from PIL import Image

    from keras_seq2seq import cli

    task, reader, export = trained
    wavs, _ = read_digit_strings(task.paths["test"])
    files = []
    for i, wav in enumerate(wavs[:2]):
        files.append(str(tmp_path / f"{i}.wav"))
        with open(files[-1], "wb") as f:
            f.write(wav)
    picture = str(tmp_path / "attention.png")
    assert cli.main(["read", "--model", export, *files, "--plot-attention", picture]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = reader.serving_default(tf.constant(wavs[:2]))["translation"].numpy()
    assert lines == [f"{path}\t{text.decode()}" for path, text in zip(files, expected)]
    assert Image.open(picture).size[0] > 100
    not_wav = tmp_path / "notes.wav"
    not_wav.write_bytes(b"not a recording")
    assert cli.main(["read", "--model", export, str(not_wav)]) == 2
    assert f"{not_wav}: refused" in capsys.readouterr().err
