"""Encoder-decoder models: `AttentionSeq2Seq` and `Seq2Seq`."""

import keras
from keras import ops

from keras_seq2seq.distribute import MultiWorkerFitFixes
from keras_seq2seq.layers import AttentionDecoder, RNNEncoder
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class AttentionSeq2Seq(MultiWorkerFitFixes, keras.Model):
    """An RNN encoder-decoder with attention (Bahdanau 2015, Luong 2015).

    Trained with `compile` + `fit` on teacher-forced batches:
    `call({"source_ids": [B, S], "decoder_input_ids": [B, T]})` returns logits
    [B, T, vocabulary]. Id 0 is padding on both sides.

    For decoding, `encode` runs the encoder once and `step` advances the
    decoder one token; `keras_seq2seq.decoding` builds greedy search, beam
    search and sampling on these two alone.

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
        input_feeding: feed the previous attentional vector to the decoder.
        dropout: dropout rate in encoder and decoder.
        reverse_source: reverse source sentences (Sutskever et al. 2014).
        init_scale: if set, every weight starts uniform in
            [-init_scale, init_scale] (OpenNMT's `param_init`) instead of
            each layer's Keras default.

    Example:

    >>> model = AttentionSeq2Seq(vocabulary_size=1000, units=128)
    >>> model.compile(optimizer="adam", loss=SequenceCrossEntropy())
    >>> model.fit(dataset, epochs=3)
    """

    # Whether the outputs extend the vocabulary with copied source words
    # (the data pipeline then builds extended ids; see `PointerGenerator`).
    copies_source = False

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
        input_feeding=True,
        dropout=0.0,
        reverse_source=False,
        init_scale=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.cell_type = cell_type
        self.bidirectional = bidirectional
        self.attention_name = attention
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.dropout = dropout
        self.reverse_source = reverse_source
        self.init_scale = init_scale

        self.source_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="target_embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.encoder = RNNEncoder(
            units,
            num_layers=encoder_layers,
            cell_type=cell_type,
            bidirectional=bidirectional,
            dropout=dropout,
            reverse_input=reverse_source,
            name="encoder",
        )
        self.decoder = AttentionDecoder(
            units,
            num_layers=decoder_layers,
            cell_type=cell_type,
            attention=attention,
            attention_units=attention_units,
            input_feeding=input_feeding,
            dropout=dropout,
            name="decoder",
        )
        # Under mixed precision the projection, the largest matmul of a
        # training step, runs in the low precision (as Keras' mixed-precision
        # guide advises); `logits` casts its result to float32 for the softmax
        # and the loss.
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID

    def build(self, input_shape=None):
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))
        self.decoder.build((None, None, self.embedding_dim), (None, None, self.units))
        self.output_projection.build((None, None, self.units))
        if self.init_scale:
            # OpenNMT's `param_init`: every weight uniform in [-s, s]. On
            # Multi30k it learned much faster than Keras' per-layer defaults
            # (validation token accuracy 32% vs 18% after one epoch).
            for variable in self.weights:
                variable.assign(keras.random.uniform(
                    variable.shape, -self.init_scale, self.init_scale, dtype=variable.dtype))
        self.built = True

    # -- the two pieces decoding is built on ---------------------------------

    def in_vocabulary(self, ids):
        """Ids past the vocabulary (a `WordTokenizer`'s extended ids) as UNK."""
        return ops.where(ops.greater_equal(ids, self.vocabulary_size), UNK_ID, ids)

    def encode(self, source_ids, training=False):
        """Encodes a batch of sources.

        Args:
            source_ids: int [batch, source], 0-padded.

        Returns:
            `(context, state)`: the decoder's per-source constants (dict of
            `memory`, `keys`, `mask`) and its initial state (see
            `AttentionDecoder`).
        """
        source_ids = ops.convert_to_tensor(source_ids, "int32")
        mask = ops.not_equal(source_ids, self.pad_id)
        embedded = self.embedding_dropout(
            self.source_embedding(self.in_vocabulary(source_ids)), training=training)
        memory, encoder_states = self.encoder(embedded, mask=mask, training=training)
        context = self.decoder.prepare_context(memory, mask)
        return context, self.decoder.initial_state(encoder_states, context)

    def step(self, token_ids, state, context):
        """Advances the decoder by one token (inference mode).

        Args:
            token_ids: int [batch], the previous tokens (BOS at the start).
            state: the decoder state.
            context: from `encode`, tiled to the same batch.

        Returns:
            `(log_probs, state)`: log_probs float32 [batch, vocabulary].
        """
        output, _, state = self._decoder_step(token_ids, state, context)
        return ops.log_softmax(self.logits(output), axis=-1), state

    def logits(self, outputs):
        """The output layer: decoder outputs [..., units] -> float32 logits [..., vocabulary]."""
        return ops.cast(self.output_projection(outputs), "float32")

    def _decoder_step(self, token_ids, state, context):
        """`step` up to the output layer: `(output, embedded input, state)`."""
        token_ids = self.in_vocabulary(ops.convert_to_tensor(token_ids, "int32"))
        embedded = self.target_embedding(token_ids)
        output, state = self.decoder.step(embedded, state, context, training=False)
        return output, embedded, state

    def generate(self, source_ids, max_length=64, beam_size=1, **options):
        """Translations of a batch of source ids.

        Args:
            source_ids: int [batch, source], 0-padded, EOS-terminated (as
                `SubwordTokenizer.encode` gives).
            max_length: longest output, in tokens.
            beam_size: 1 for greedy search, more for beam search.
            **options: `keras_seq2seq.decoding.decode` options (`alpha`,
                `beta`, `min_length`, `no_repeat_ngram_size`).

        Returns:
            `(ids [batch, beam, max_length], scores [batch, beam])`, best first.
        """
        from keras_seq2seq.decoding import translate

        return translate(self, source_ids, max_length, beam_size=beam_size, **options)

    # -- teacher-forced training ----------------------------------------------

    def call(self, inputs, training=False, return_attention=False):
        """Teacher-forced logits [batch, target, vocabulary] (float32).

        With `return_attention=True` also returns the alignments
        [batch, target, source] (None without attention), for plotting.
        """
        outputs, _, alignments, _ = self._teacher_forced(inputs, training)
        logits = self.logits(outputs)
        if return_attention:
            return logits, alignments
        return logits

    def _teacher_forced(self, inputs, training):
        """`call` up to the output layer: `(outputs, embedded inputs,
        alignments, context)` over the whole target."""
        context, state = self.encode(inputs["source_ids"], training=training)
        decoder_input_ids = self.in_vocabulary(
            ops.convert_to_tensor(inputs["decoder_input_ids"], "int32"))
        embedded = self.embedding_dropout(
            self.target_embedding(decoder_input_ids), training=training)
        outputs, alignments = self.decoder(embedded, context, state, training=training)
        return outputs, embedded, alignments, context

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            cell_type=self.cell_type,
            bidirectional=self.bidirectional,
            attention=self.attention_name,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            dropout=self.dropout,
            reverse_source=self.reverse_source,
            init_scale=self.init_scale,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class Seq2Seq(AttentionSeq2Seq):
    """The encoder-decoder of Sutskever et al. (2014): no attention.

    The decoder starts from the encoder's final states and sees the source
    only through them. Defaults follow the paper: reversed source,
    unidirectional encoder. Takes the arguments of `AttentionSeq2Seq` except
    the attention ones.
    """

    def __init__(self, vocabulary_size, reverse_source=True, bidirectional=False, **kwargs):
        for key in ("attention", "attention_units", "input_feeding"):
            kwargs.pop(key, None)
        super().__init__(
            vocabulary_size,
            reverse_source=reverse_source,
            bidirectional=bidirectional,
            attention=None,
            input_feeding=False,
            **kwargs,
        )
