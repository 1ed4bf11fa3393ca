"""Spoken digit strings, composed from single Free Spoken Digit Dataset clips.

`../shared/data/fsdd/recordings` holds clips named
`{digit}_{speaker}_{index}.wav` (8 kHz mono, indexes 5-49 of each speaker
and digit). They are split by index first (`SPLIT_INDEXES`), so every
speaker is in every split but no recording is in two, and each split's
strings are composed only from its own clips: 1 to `max_digits` digits,
each clip at a random gain, with random pauses (and leading and trailing
silence) and a little Gaussian noise, written as a 16-bit WAV file, the
bytes a client sends. Targets are the digits with spaces ("4 0 7").
Training clips may also be played at a random speed (speed perturbation,
Ko et al. 2015): a new tempo and pitch for each use of a clip, so that
2,100 recordings stand for more voices; training strings may take louder
noise than validation and test ones (multi-condition training): the added
noise is at a level of its own, not relative to the voice, so the quietest
speakers' clips are the ones it drowns; training clips may be played at
levels drawn for each use (`levels`), so that every voice is heard both
loud and drowned, not only the quietest speaker's; and each training clip
may pass through a random smooth equalizer (`equalization`, channel
augmentation): the clips of one string come from different recordings,
each with its own microphone and room colouring, which the front-end's
per-utterance normalization cannot take out clip by clip.
"""

import functools
import os
import re

import numpy as np

from keras_seq2seq.data.audio import SAMPLE_RATE, encode_wav, read_wav

# Clip indexes of each split (of 5-49; 0-4 are kept out of the shared folder).
SPLIT_INDEXES = {"test": range(5, 10), "val": range(10, 15), "train": range(15, 50)}

# The added Gaussian noise's standard deviation (full scale 1.0) is drawn from
# [NOISE_FLOOR, upper end]; validation and test strings use NOISE_CEILING.
NOISE_FLOOR, NOISE_CEILING = 0.001, 0.01

_CLIP_NAME = re.compile(r"(\d)_([A-Za-z]+)_(\d+)\.wav")


def read_clips(folder, split):
    """`(list of float32 sample arrays, list of digits)`: the split's clips."""
    clips, digits = [], []
    for name in sorted(os.listdir(folder)):
        match = _CLIP_NAME.fullmatch(name)
        if not match or int(match.group(3)) not in SPLIT_INDEXES[split]:
            continue
        samples, rate = read_wav(os.path.join(folder, name))
        if rate != SAMPLE_RATE:
            raise ValueError(f"{os.path.join(folder, name)}: {rate} Hz; {SAMPLE_RATE} expected")
        clips.append(samples)
        digits.append(int(match.group(1)))
    if not clips:
        raise ValueError(f"{folder} holds no {{digit}}_{{speaker}}_{{index}}.wav clips of the "
                         f"{split} indexes {SPLIT_INDEXES[split].start}-"
                         f"{SPLIT_INDEXES[split].stop - 1}")
    return clips, digits


def change_speed(samples, speed):
    """`samples` played `speed` times as fast (tempo and pitch both change):
    linear interpolation at steps of `speed` samples."""
    positions = np.arange(0.0, len(samples) - 1, speed)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def equalize(samples, weights_db):
    """`samples` through a zero-phase filter whose gain in decibels is
    `sum(w_k cos(k pi f))` over `weights_db` (k = 1, 2, ...; `f` in [0, 1],
    1 the Nyquist frequency: a tilt, a bump, a ripple), at the same
    root-mean-square level as before."""
    # A power-of-two transform is several times faster than one of the
    # clip's own length; the smooth curve's short impulse response barely
    # reaches the zero padding.
    size = 1 << max(int(len(samples) - 1).bit_length(), 1)
    spectrum = np.fft.rfft(samples, size)
    gains = 10.0 ** (np.asarray(weights_db) @ _cosines(len(weights_db), len(spectrum)) / 20)
    filtered = np.fft.irfft(spectrum * gains, size)[: len(samples)]
    level = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return (filtered * (level / max(float(np.sqrt(np.mean(filtered ** 2))), 1e-12))
            ).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _cosines(count, bins):
    """[count, bins]: cos(k pi f) for k = 1..count over `bins` frequencies f in [0, 1]."""
    return np.cos(np.pi * np.arange(1, count + 1)[:, None] * np.linspace(0.0, 1.0, bins))


def compose_utterance(clips, digits, rng, max_digits=7, speed_perturbation=0.0,
                      noise=NOISE_CEILING, levels=None, equalization=0.0):
    """One recording of a random string of 1 to `max_digits` of the clips.

    `speed_perturbation` d plays each clip at a speed drawn uniformly from
    [1 - d, 1 + d] (0: as recorded; the random draws of other utterances
    are then unchanged). `noise` is the upper end of the added noise's
    standard deviation (the draws are the same whatever it is). `levels`
    `(low, high)`: each clip is scaled to a root-mean-square level drawn
    log-uniformly from [low, high] instead of by a gain drawn from [0.5,
    1.5] (one draw either way, so the other draws stay in step).
    `equalization` e passes each clip through a random smooth equalizer
    within +-e dB (`equalize`; 0: none, and no draws).

    Returns `(wav bytes, "4 0 7")`.
    """
    count = int(rng.integers(1, max_digits + 1))
    chosen = rng.integers(0, len(clips), count)

    def silence(low, high):
        return np.zeros(int(rng.uniform(low, high) * SAMPLE_RATE), np.float32)

    parts = [silence(0.05, 0.3)]
    for i in chosen:
        if levels:
            level = np.exp(rng.uniform(np.log(levels[0]), np.log(levels[1])))
            clip = clips[i] * (level / max(float(np.sqrt(np.mean(clips[i] ** 2))), 1e-9))
        else:
            clip = clips[i] * rng.uniform(0.5, 1.5)
        if speed_perturbation:
            clip = change_speed(clip, rng.uniform(1 - speed_perturbation, 1 + speed_perturbation))
        if equalization:
            # Three weights of at most e / 3: the curve stays within +-e dB.
            clip = equalize(clip, rng.uniform(-1, 1, 3) * equalization / 3)
        parts += [clip / max(1.0, float(np.abs(clip).max()) / 0.99), silence(0.03, 0.35)]
    parts[-1] = silence(0.05, 0.3)
    audio = np.concatenate(parts)
    audio = audio + rng.normal(0, rng.uniform(NOISE_FLOOR, noise), audio.shape)
    return encode_wav(audio), " ".join(str(digits[i]) for i in chosen)


def write_spoken_digit_strings(folder, recordings, sizes, max_digits=7, seed=0,
                               speed_perturbation=0.0, training_noise=NOISE_CEILING,
                               training_levels=None, training_equalization=0.0):
    """Composes each split's utterances from its own clips, once, into `folder`.

    Args:
        recordings: the FSDD `recordings` folder.
        sizes: `{split: number of utterances}` for "train", "val", "test".
        seed: the composition seed of the training utterances (validation
            and test ones have fixed seeds of their own).
        speed_perturbation: for training utterances only (see
            `compose_utterance`); validation and test clips play as recorded.
        training_noise: the upper end of the training utterances' noise
            level (`compose_utterance`'s `noise`); validation and test ones
            keep `NOISE_CEILING`.
        training_levels: `(low, high)` root-mean-square levels of the
            training clips (`compose_utterance`'s `levels`); validation and
            test clips keep their random gains in [0.5, 1.5].
        training_equalization: the training clips' random equalizers'
            largest gain, in dB (`compose_utterance`'s `equalization`);
            validation and test clips play unfiltered.

    Returns:
        `{split: path}` of `SPLIT.tfrecord` files, one WAV file a record,
        each beside a `SPLIT.txt` of its targets (`digit_strings.targets_path`).
    """
    from keras_seq2seq.data.digit_strings import write_records

    def compose(split, count):
        clips, digits = read_clips(recordings, split)
        rng = np.random.default_rng({"train": 1000 + seed, "val": 2000, "test": 3000}[split])
        speed, noise, levels, equalization = (
            (speed_perturbation, training_noise, training_levels, training_equalization)
            if split == "train" else (0.0, NOISE_CEILING, None, 0.0))
        pairs = [compose_utterance(clips, digits, rng, max_digits, speed, noise, levels,
                                   equalization) for _ in range(count)]
        return [p for p, _ in pairs], [t for _, t in pairs]

    return write_records(folder, sizes, compose)
