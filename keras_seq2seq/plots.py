"""Pictures: attention heatmaps and training curves, as PNG files."""

import json
import os

import keras

from keras_seq2seq.text.words import JOINER


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def attention_matrix(translator, text):
    """The attention of the best translation of one sentence.

    Decodes `text` with the translator's greedy search, then runs the model
    teacher-forced on that output to read its alignments.

    Returns:
        `(source_pieces, target_pieces, weights [target, source])`, pieces
        as str (EOS shown as "</s>").
    """
    return _greedy_attention(translator, text)[1:]


def _greedy_attention(translator, text):
    """`(inputs, source_pieces, target_pieces, weights)`: `attention_matrix`'s
    figures, after the teacher-forced model inputs that give them."""
    import tensorflow as tf

    source_ids = translator.encode_text(tf.constant([text]))
    ids, _ = translator.search(source_ids, beam_size=1)
    target = [int(i) for i in ids[0, 0].numpy() if i != 0]
    model = translator.model
    inputs = {"source_ids": source_ids,
              "decoder_input_ids": tf.constant([[model.start_id] + target[:-1]], tf.int32)}
    _, alignments = model(inputs, return_attention=True)
    if alignments is None:
        raise ValueError("this model has no attention to plot")

    def pieces(id_list):
        names = translator.tokenizer.id_to_piece(tf.constant(id_list, tf.int32)).numpy()
        # A copied word's extended id is resolved against the source text.
        copied = translator.decode_text(tf.constant(id_list, tf.int32)[:, None],
                                        tf.fill([len(id_list)], text)).numpy()
        return ["</s>" if i == model.end_id
                else (c if i >= translator.tokenizer.vocab_size else p).decode("utf-8").replace(JOINER, "")
                for i, p, c in zip(id_list, names, copied)]

    source = [int(i) for i in source_ids[0].numpy() if i != 0]
    weights = alignments[0].numpy()[: len(target), : len(source)]
    return inputs, pieces(source), pieces(target), weights


def plot_attention(translator, text, path):
    """Writes the attention heatmap of `text`'s translation to `path` (PNG).

    Source pieces run along the x axis, target pieces down the y axis.
    Returns the translation's pieces.
    """
    source, target, weights = attention_matrix(translator, text)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(source) + 2), max(3, 0.4 * len(target) + 1.5)))
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(source)), source, rotation=70, fontsize=9)
    ax.set_yticks(range(len(target)), target, fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return target


def plot_copying(translator, text, path):
    """Draws what a pointer-generator copied and what it generated (PNG).

    The attention over the source for each token of `text`'s (greedy)
    output, as `plot_attention`, and beside each output token its
    generation probability p_gen: near 1, written from the vocabulary; near
    0, copied from where the attention points.

    Returns `(output pieces, p_gen per piece)`.
    """
    inputs, source, target, weights = _greedy_attention(translator, text)
    p_gen = translator.model.generation_probabilities(inputs).numpy()[0, : len(target)]
    plt = _pyplot()
    fig, (ax, bar) = plt.subplots(
        1, 2, gridspec_kw={"width_ratios": [max(4, len(source)), 1.5]},
        figsize=(max(6, 0.22 * len(source) + 3), max(3, 0.35 * len(target) + 1.5)))
    ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(source)), source, rotation=80, fontsize=7)
    ax.set_yticks(range(len(target)), target, fontsize=8)
    ax.set_xlabel("source")
    ax.set_title("attention")
    bar.imshow(p_gen[:, None], cmap="coolwarm", aspect="auto", vmin=0.0, vmax=1.0)
    for row, value in enumerate(p_gen):
        bar.text(0, row, f"{value:.2f}", ha="center", va="center", fontsize=7)
    bar.set_xticks([])
    bar.set_yticks([])
    bar.set_title("p_gen")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return target, p_gen.tolist()


def plot_image_attention(pixels, attention, pieces, path):
    """Draws where an image model looked while writing each token (PNG).

    One panel per token, top to bottom: the image the model read, with the
    attention over its feature map stretched over it (each cell over the
    pixels it covers) in red.

    Args:
        pixels: float [height, width] in [0, 1], the fitted image.
        attention: float [tokens, rows, cols], each token's weights.
        pieces: the tokens' names, as str.
    """
    import numpy as np

    plt = _pyplot()
    height, width = pixels.shape
    count = len(pieces)
    fig, axes = plt.subplots(count, 1, figsize=(max(4, width / 32), 0.75 * count + 0.5),
                             squeeze=False)
    for ax, weights, piece in zip(axes[:, 0], attention, pieces):
        ax.imshow(pixels, cmap="gray", vmin=0.0, vmax=1.0, extent=(0, width, height, 0))
        scaled = weights / max(float(np.max(weights)), 1e-9)
        ax.imshow(scaled, cmap="Reds", alpha=0.55, vmin=0.0, vmax=1.0,
                  extent=(0, width, height, 0), interpolation="nearest")
        ax.set_ylabel(piece.replace("\u2581", "_") or "?", rotation=0, labelpad=14, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_spectrogram_attention(features, attention, pieces, path):
    """Draws where a speech model listened while writing each token (PNG).

    Top: the log-mel spectrogram the model heard (time left to right, low
    frequencies at the bottom). Below it, on the same time axis: one row
    per token, its attention over the encoder's positions, each position
    stretched over the frames it summarizes.

    Args:
        features: float [frames, mel_bins], the normalized log-mel features.
        attention: float [tokens, positions], each token's weights.
        pieces: the tokens' names, as str.
    """
    plt = _pyplot()
    frames = features.shape[0]
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(max(5, frames / 40), 2 + 0.3 * len(pieces)),
        gridspec_kw={"height_ratios": [2, max(1, 0.25 * len(pieces))]})
    top.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
               extent=(0, frames, 0, features.shape[1]))
    top.set_ylabel("mel bin")
    bottom.imshow(attention, aspect="auto", cmap="Reds", vmin=0.0, interpolation="nearest",
                  extent=(0, frames, len(pieces), 0))
    bottom.set_yticks([i + 0.5 for i in range(len(pieces))],
                      [p.replace("\u2581", "_") or "?" for p in pieces], fontsize=9)
    bottom.set_xlabel("frame")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class TrainingCurves(keras.callbacks.Callback):
    """Redraws the loss and metric curves of training to a PNG after every epoch.

    One panel per quantity (loss, then each metric), training and validation
    together. The figures also go to `history.json` beside the PNG, so that a
    resumed run draws its earlier epochs too.

    Args:
        path: the PNG file (its folder is created).
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.history_path = os.path.splitext(path)[0] + ".json"

    def on_train_begin(self, logs=None):
        self.history = {}
        if os.path.exists(self.history_path):
            with open(self.history_path) as f:
                self.history = json.load(f)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float)) or hasattr(value, "__float__"):
                series = self.history.setdefault(key, {})
                series[str(epoch + 1)] = float(value)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.history_path, "w") as f:
            json.dump(self.history, f)
        self._draw()

    def _draw(self):
        names = [k for k in self.history if not k.startswith("val_") and k != "learning_rate"]
        if not names:
            return
        plt = _pyplot()
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.4), squeeze=False)
        for ax, name in zip(axes[0], names):
            for key, label in ((name, "training"), (f"val_{name}", "validation")):
                series = self.history.get(key)
                if series:
                    epochs = sorted(int(e) for e in series)
                    ax.plot(epochs, [series[str(e)] for e in epochs], marker="o", label=label)
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.legend()
        fig.tight_layout()
        fig.savefig(self.path, dpi=100)
        plt.close(fig)
