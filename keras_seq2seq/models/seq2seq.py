"""Encoder-decoder models: `AttentionSeq2Seq` and `Seq2Seq`."""

import keras
import numpy as np
from keras import ops

from keras_seq2seq.layers import RNNEncoder
from keras_seq2seq.models.encoder_attention_decoder import EncoderAttentionDecoder
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class AttentionSeq2Seq(EncoderAttentionDecoder):
    """An RNN encoder-decoder with attention (Bahdanau 2015, Luong 2015).

    Trained with `compile` + `fit` on teacher-forced batches:
    `call({"source_ids": [B, S], "decoder_input_ids": [B, T]})` returns logits
    [B, T, target_size] (`vocabulary_size`, unless a `target_vocabulary` is
    given). Id 0 is padding on both sides.

    For decoding, `encode` runs the encoder once and `step` advances the
    decoder one token (the `SequenceModel` interface);
    `keras_seq2seq.decoding.generate` builds greedy search, beam search and
    sampling on these alone.

    Args:
        vocabulary_size: size of the (shared) source and target vocabulary.
        embedding_dim: size of the token embeddings.
        units: size of the encoder outputs and of each decoder layer.
        encoder_layers, decoder_layers: stacked RNN layers.
        cell_type: `"lstm"` or `"gru"`, for encoder and decoder.
        bidirectional: bidirectional encoder (each direction `units // 2`).
        attention: a name from `layers.attention.ATTENTION_MECHANISMS`
            (`"luong_general"`, `"luong_dot"`, `"luong_concat"`,
            `"bahdanau"`, `"location_sensitive"`) or `None`.
        attention_units: hidden size of additive attention mechanisms.
        attention_options: more constructor arguments of the named attention
            mechanism (see `EncoderAttentionDecoder`).
        input_feeding: feed the previous attentional vector to the decoder.
        dropout: dropout rate in encoder and decoder.
        reverse_source: reverse source sentences (Sutskever et al. 2014).
        init_scale: if set, every weight starts uniform in
            [-init_scale, init_scale] (OpenNMT's `param_init`) instead of
            each layer's Keras default.
        source_vocabulary, target_vocabulary: optional sorted lists of the
            vocabulary ids each side uses, special ids 0-3 first (OpenNMT's
            per-side vocabularies over a joint SentencePiece model; see
            `text.vocabulary_in_use`). The source embedding then has a row
            per listed id (other ids read as UNK); the target embedding and
            the output layer have one per target id, so the softmax spans
            only what the target language uses. Logits, `step` and its
            inputs then count in *target indices* (positions in
            `target_vocabulary`): `compute_loss` maps labels to them and
            `generate` maps decoded indices back (`output_ids`). None:
            the whole vocabulary.

    Example:

    >>> model = AttentionSeq2Seq(vocabulary_size=1000, units=128)
    >>> model.compile(optimizer="adam", loss=SequenceCrossEntropy())
    >>> model.fit(dataset, epochs=3)
    """

    # Without attention (`Seq2Seq`) the encoder's final states carry the source.
    attention_required = False

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=128,
        units=256,
        encoder_layers=1,
        decoder_layers=1,
        cell_type="lstm",
        bidirectional=True,
        attention="luong_general",
        attention_units=None,
        attention_options=None,
        input_feeding=True,
        dropout=0.0,
        reverse_source=False,
        init_scale=None,
        source_vocabulary=None,
        target_vocabulary=None,
        **kwargs,
    ):
        source_vocabulary = _checked_subset(source_vocabulary, vocabulary_size, "source")
        target_vocabulary = _checked_subset(target_vocabulary, vocabulary_size, "target")
        # Before the base's layers: `.keras` files name a model's embeddings
        # by their order in `model.layers` ("layers/embedding" is the source
        # one), so the source embedding must stay first for saved models to
        # load (Keras tracks attributes set before `Layer.__init__`).
        self.source_embedding = keras.layers.Embedding(
            len(source_vocabulary or range(vocabulary_size)), embedding_dim,
            name="source_embedding")
        super().__init__(
            vocabulary_size, embedding_dim=embedding_dim, units=units,
            decoder_layers=decoder_layers, cell_type=cell_type, attention=attention,
            attention_units=attention_units, attention_options=attention_options,
            input_feeding=input_feeding, dropout=dropout,
            # The embedding rows and outputs of the target side.
            target_size=len(target_vocabulary or range(vocabulary_size)), **kwargs)
        self.source_vocabulary = source_vocabulary
        self.target_vocabulary = target_vocabulary
        self.source_size = self.source_embedding.input_dim
        self.encoder_layers = encoder_layers
        self.bidirectional = bidirectional
        self.reverse_source = reverse_source
        self.init_scale = init_scale
        self.encoder = RNNEncoder(
            units,
            num_layers=encoder_layers,
            cell_type=cell_type,
            bidirectional=bidirectional,
            dropout=dropout,
            reverse_input=reverse_source,
            name="encoder",
        )

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.init_scale:
            # OpenNMT's `param_init`: every weight uniform in [-s, s]. On
            # Multi30k it learned much faster than Keras' per-layer defaults
            # (validation token accuracy 32% vs 18% after one epoch).
            for variable in self.weights:
                variable.assign(keras.random.uniform(
                    variable.shape, -self.init_scale, self.init_scale, dtype=variable.dtype))

    # -- the encoder: an RNN over the embedded source tokens ------------------

    def build_encoder(self):
        self.source_embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))

    def encoder_outputs(self, source_ids, training=False, fused_lstm=False):
        """int [batch, source], 0-padded -> `(memory, states)` (see `RNNEncoder`)."""
        source_ids = ops.convert_to_tensor(source_ids, "int32")
        embedded = self.embedding_dropout(
            self.source_embedding(self._source_rows(source_ids)), training=training)
        return self.encoder(embedded, mask=self.source_mask(source_ids), training=training,
                            fused_lstm=fused_lstm)

    def source_inputs(self, inputs):
        return inputs["source_ids"]

    def source_mask(self, source_ids):
        return ops.not_equal(ops.convert_to_tensor(source_ids, "int32"), self.pad_id)

    # -- vocabularies: ids, target indices, extended ids ----------------------

    def in_vocabulary(self, ids):
        """Ids past the vocabulary (a `WordTokenizer`'s extended ids) as UNK."""
        return ops.where(ops.greater_equal(ids, self.vocabulary_size), UNK_ID, ids)

    def embedding_rows(self, token_ids):
        return self.in_vocabulary(token_ids)

    def target_index(self, ids):
        """Vocabulary ids -> target indices (ids outside `target_vocabulary` as
        UNK); unchanged without a target vocabulary."""
        if self.target_vocabulary is None:
            return ids
        return self._positions_in(self.target_vocabulary, ids)

    def output_space(self):
        """Vocabulary ids (or target indices), and whether extended ids copy."""
        return {"vocabulary_size": self.vocabulary_size,
                "target_vocabulary": self.target_vocabulary,
                "copies_source": self.copies_source}

    def output_ids(self, target_indices):
        """The inverse of `target_index`: decoded indices -> vocabulary ids."""
        if self.target_vocabulary is None:
            return target_indices
        return ops.take(np.asarray(self.target_vocabulary, "int32"), target_indices)

    def _source_rows(self, source_ids):
        if self.source_vocabulary is None:
            return self.in_vocabulary(source_ids)
        return self._positions_in(self.source_vocabulary, source_ids)

    def _positions_in(self, subset, ids):
        """Each id's position in the side vocabulary `subset` (UNK's if absent)."""
        return ops.take(_index_table(subset, self.vocabulary_size), self.in_vocabulary(ids))

    def length_limits(self, source_ids, max_length, ratio=2.0, extra=10):
        """Per-row output limits: `ratio * source length + extra`, at most
        `max_length` (sources counted without padding, EOS included)."""
        lengths = ops.sum(ops.cast(self.source_mask(source_ids), "float32"), axis=1)
        limits = ops.cast(ops.ceil(ratio * lengths), "int32") + extra
        return ops.minimum(limits, max_length)

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder_layers=self.encoder_layers,
            bidirectional=self.bidirectional,
            reverse_source=self.reverse_source,
            init_scale=self.init_scale,
            source_vocabulary=self.source_vocabulary,
            target_vocabulary=self.target_vocabulary,
        )
        return config

    # Labels arrive as vocabulary ids; logits count in target indices.
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, self.target_index(y), y_pred, sample_weight,
                                    training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, self.target_index(y), y_pred, sample_weight)


def _checked_subset(ids, vocabulary_size, side):
    """`ids` as a list of int, after checking it is a usable side vocabulary."""
    if ids is None:
        return None
    ids = [int(i) for i in ids]
    if ids[:4] != [PAD_ID, UNK_ID, BOS_ID, EOS_ID] or any(a >= b for a, b in zip(ids, ids[1:])):
        raise ValueError(f"{side}_vocabulary must be sorted, without repeats, and start with "
                         f"the special ids 0, 1, 2, 3; got {ids[:6]}...")
    if ids[-1] >= vocabulary_size:
        raise ValueError(f"{side}_vocabulary has id {ids[-1]}, past vocabulary_size "
                         f"{vocabulary_size}")
    return ids


def _index_table(subset, vocabulary_size):
    """int32 [vocabulary_size]: each id's position in `subset`, UNK's if absent."""
    table = np.full(vocabulary_size, UNK_ID, "int32")
    table[subset] = np.arange(len(subset), dtype="int32")
    return table


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class Seq2Seq(AttentionSeq2Seq):
    """The encoder-decoder of Sutskever et al. (2014): no attention.

    The decoder starts from the encoder's final states and sees the source
    only through them. Defaults follow the paper: reversed source,
    unidirectional encoder. Takes the arguments of `AttentionSeq2Seq` except
    the attention ones.
    """

    def __init__(self, vocabulary_size, reverse_source=True, bidirectional=False, **kwargs):
        for key in ("attention", "attention_units", "attention_options", "input_feeding"):
            kwargs.pop(key, None)
        super().__init__(
            vocabulary_size,
            reverse_source=reverse_source,
            bidirectional=bidirectional,
            attention=None,
            input_feeding=False,
            **kwargs,
        )
