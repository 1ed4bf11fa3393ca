"""Audio in the graph: client WAV bytes -> the waveform a speech model reads.

The same functions prepare training recordings and serve requests, so a
model hears in serving exactly what it heard in training:

- `decode_wav`: WAV bytes (16-bit PCM, as `tf.audio.decode_wav` reads) ->
  float32 samples in [-1, 1], mono (channels averaged), after checking the
  caps below: a request over a cap, or at another sample rate than
  `SAMPLE_RATE`, fails with an InvalidArgument error that says which;
- `waveforms_from_bytes`: a batch of WAV bytes -> zero-padded waveforms and
  their lengths in samples.

Caps: at most `MAX_AUDIO_BYTES` bytes (checked before decoding) and
`MAX_AUDIO_SECONDS` seconds (a 10-minute recording is refused, not read).
An empty recording (no samples) decodes to no samples; the front-end
(`layers.LogMelSpectrogram`) reads it as one frame of silence.
"""

import tensorflow as tf

# The sample rate the speech recipes are recorded at (FSDD: 8 kHz mono).
SAMPLE_RATE = 8000
# A request's recording may last at most this long ...
MAX_AUDIO_SECONDS = 30
# ... and have at most this many bytes: 30 s of 8 kHz 16-bit stereo, plus headers.
MAX_AUDIO_BYTES = MAX_AUDIO_SECONDS * SAMPLE_RATE * 2 * 2 + 4096


def assert_within_duration_cap(samples, sample_rate=SAMPLE_RATE):
    """The assertion (InvalidArgument at run time) that a recording of
    `samples` samples lasts at most `MAX_AUDIO_SECONDS`."""
    return tf.debugging.assert_less_equal(
        samples, MAX_AUDIO_SECONDS * sample_rate,
        message=f"a recording may last at most {MAX_AUDIO_SECONDS} s")


def decode_wav(data, sample_rate=SAMPLE_RATE):
    """WAV bytes (a string scalar) -> float32 [samples], mono, in [-1, 1].

    Raises (at run time) InvalidArgument for bytes that are no WAV file
    `tf.audio.decode_wav` reads, more than `MAX_AUDIO_BYTES`, a sample rate
    other than `sample_rate`, or more than `MAX_AUDIO_SECONDS` seconds.
    """
    with tf.control_dependencies(_wav_file_checks(data)):
        return _decode_checked_wav(tf.identity(data), sample_rate)


def waveforms_from_bytes(data, sample_rate=SAMPLE_RATE):
    """WAV bytes string [batch] -> `(waveforms float32 [batch, samples],
    lengths int32 [batch])`, zero-padded to the longest."""
    # The files' checks run for the whole batch at once, not a file at a time.
    with tf.control_dependencies(_wav_file_checks(data)):
        data = tf.identity(data)
    ragged = tf.map_fn(lambda one: _decode_checked_wav(one, sample_rate), data,
                       fn_output_signature=tf.RaggedTensorSpec([None], tf.float32))
    return ragged.to_tensor(), tf.cast(ragged.row_lengths(), tf.int32)


def _decode_checked_wav(data, sample_rate):
    """`decode_wav` of a file `_wav_file_checks` has passed."""
    audio, rate = tf.audio.decode_wav(data)
    checks = [
        tf.debugging.assert_equal(
            rate, sample_rate,
            message=f"recordings must be sampled at {sample_rate} Hz (resample before sending)"),
        assert_within_duration_cap(tf.shape(audio)[0], sample_rate),
    ]
    with tf.control_dependencies(checks):
        return tf.reduce_mean(audio, axis=1)


# A WAV file of more chunks is refused (speech files hold two to four:
# "fmt ", "data", perhaps "LIST" and "fact"); it bounds the walk below.
MAX_WAV_CHUNKS = 64


def _wav_file_checks(data):
    """Assertions, file by file of a string tensor of any shape, that each
    has at most `MAX_AUDIO_BYTES` and is laid out as `tf.audio.decode_wav`
    reads a WAV file: the RIFF/WAVE header, the "fmt " chunk after it, then
    at most `MAX_WAV_CHUNKS` chunks, none of which claims to end 2 GiB or
    more into the file.

    decode_wav refuses such files too, but its messages quote the bytes it
    found where a header or a chunk's name should be, which need not be
    UTF-8: a Python client then gets a UnicodeDecodeError instead of the
    error, and a REST client a message that is no valid JSON string. These
    refuse them first, in words of their own, walking the chunks as
    decode_wav does (its `DecodeLin16WaveAsFloatVector`).
    """
    size = tf.cast(tf.strings.length(data), tf.int64)
    within_cap = tf.debugging.assert_less_equal(
        size, tf.constant(MAX_AUDIO_BYTES, tf.int64),
        message=f"a recording may have at most {MAX_AUDIO_BYTES} bytes "
                f"({MAX_AUDIO_SECONDS} s at {SAMPLE_RATE} Hz)")
    with tf.control_dependencies([within_cap]):
        # Reads past the end read zeros; the walk stops 8 bytes before it.
        padded = tf.strings.join([data, b"\0" * 40])

    def bytes_at(offset, width):
        widths = tf.fill(tf.shape(offset), tf.constant(width, tf.int64))
        return tf.strings.substr(padded, offset, widths)

    def text_at(offset):
        return bytes_at(offset, 4)

    def number_at(offset, width):  # little-endian, as WAV stores its numbers
        digits = tf.io.decode_raw(bytes_at(offset, width), tf.uint8, fixed_length=width)
        weights = tf.constant([1, 1 << 8, 1 << 16, 1 << 24][:width], tf.int64)
        return tf.reduce_sum(tf.cast(digits, tf.int64) * weights, axis=-1)

    at = tf.zeros_like(size)  # an offset for each file
    header = tf.debugging.assert_equal(
        tf.logical_and(text_at(at) == b"RIFF", text_at(at + 8) == b"WAVE"), True,
        message="not a WAV file (no RIFF/WAVE header)")
    with tf.control_dependencies([header]):
        form = tf.debugging.assert_equal(
            text_at(at + 12) == b"fmt ", True,
            message="not a WAV file decode_wav reads (no fmt chunk after the header)")
    with tf.control_dependencies([form]):
        start = 20 + number_at(at + 16, 4)  # after the format chunk
    # Bytes a sample of all channels takes: the data chunk is read in whole samples.
    block = tf.maximum(number_at(at + 32, 2), 1)

    def walking(offset, chunks):
        return tf.logical_and(offset + 8 <= size, chunks <= MAX_WAV_CHUNKS)

    def more(offset, chunks, furthest):
        return tf.reduce_any(walking(offset, chunks))

    def next_chunk(offset, chunks, furthest):
        going = walking(offset, chunks)
        here = tf.where(going, offset, 0)  # a file whose walk ended reads its start
        chunk_size = number_at(here + 4, 4)
        claimed = here + 8 + chunk_size
        read = here + 8 + chunk_size // block * block
        following = tf.where(text_at(here) == b"data", read, claimed)
        return (tf.where(going, following, offset), chunks + tf.cast(going, tf.int64),
                tf.where(going, tf.maximum(furthest, claimed), furthest))

    _, chunks, furthest = tf.while_loop(more, next_chunk, (start, at, at))
    return [
        tf.debugging.assert_less_equal(
            chunks, tf.constant(MAX_WAV_CHUNKS, tf.int64),
            message=f"a WAV file may hold at most {MAX_WAV_CHUNKS} chunks"),
        # decode_wav keeps its place in a 32-bit int.
        tf.debugging.assert_less(
            furthest, tf.constant(1 << 31, tf.int64),
            message="not a WAV file decode_wav reads (a chunk claims to end 2 GiB or more "
                    "into the file)"),
    ]


def encode_wav(samples, sample_rate=SAMPLE_RATE):
    """float [samples] in [-1, 1] -> 16-bit PCM mono WAV bytes (Python's `wave`)."""
    import io
    import wave

    import numpy as np

    pcm = (np.clip(np.asarray(samples, np.float64), -1.0, 1.0) * 32767).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def read_wav(path):
    """`(float32 samples in [-1, 1], sample rate)` of a 16-bit PCM mono WAV file."""
    import wave

    import numpy as np

    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * f.getsampwidth()}-bit samples; 16-bit PCM expected")
        frames = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768
        channels, rate = f.getnchannels(), f.getframerate()
    return frames.reshape(-1, channels).mean(axis=1), rate


def speech_text_dataset(records_path, targets_path, tokenizer, batch_size=32,
                        max_target_length=100, shuffle=False, seed=None,
                        sample_rate=SAMPLE_RATE):
    """Batches of `({"waveform", "lengths", "decoder_input_ids"}, target_ids)`
    for `fit`: `pipeline.records_dataset` of WAV files, decoded by the
    function the export runs on a client's bytes."""
    from keras_seq2seq.data.pipeline import records_dataset

    def model_inputs(data):
        waveform, lengths = waveforms_from_bytes(data, sample_rate)
        return {"waveform": waveform, "lengths": lengths}

    # Batches of recordings within half a second of each other's length
    # (16-bit mono WAV: 2 bytes a sample after the header).
    half_second = sample_rate
    boundaries = range(half_second, 2 * sample_rate * MAX_AUDIO_SECONDS, half_second)
    return records_dataset(records_path, targets_path, tokenizer, model_inputs, batch_size,
                           max_target_length, shuffle, seed, size_boundaries=boundaries)
