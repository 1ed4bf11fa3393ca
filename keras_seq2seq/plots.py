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
    import tensorflow as tf

    source_ids = translator.encode_text(tf.constant([text]))
    ids, _ = translator.search(source_ids, beam_size=1)
    target = [int(i) for i in ids[0, 0].numpy() if i != 0]
    model = translator.model
    decoder_inputs = tf.constant([[model.start_id] + target[:-1]], tf.int32)
    _, alignments = model({"source_ids": source_ids, "decoder_input_ids": decoder_inputs},
                          return_attention=True)
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
    return pieces(source), pieces(target), weights


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
