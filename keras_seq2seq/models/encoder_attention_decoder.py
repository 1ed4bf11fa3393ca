"""`EncoderAttentionDecoder`: an encoder of the subclass's under the attention decoder."""

import keras
from keras import ops

from keras_seq2seq.layers import AttentionDecoder
from keras_seq2seq.layers.lstm_sequence import kernel_matmul
from keras_seq2seq.models.base import SequenceModel, add_per_input


class EncoderAttentionDecoder(SequenceModel):
    """The base of the models that write text with an `AttentionDecoder`:
    `AttentionSeq2Seq` (an RNN over the source's tokens), `ImageToText` and
    `SpeechToText`. An encoder of the subclass's gives a memory, and the
    decoder attends over it while it writes, one token a step; `step`,
    teacher-forced `call`, the output layer and the attention accessors are
    written here once.

    Subclasses build `self.encoder` and implement `build_encoder`,
    `encoder_outputs`, `source_inputs` and `source_mask`; they may add
    training losses of the encoder's own (`add_encoder_losses`) and map
    token ids to embedding rows (`embedding_rows`).

    Args:
        vocabulary_size: size of the output vocabulary (the tokenizer's).
        embedding_dim: size of the output token embeddings.
        units: size of the memory and of each decoder layer.
        decoder_layers: stacked decoder RNN layers.
        cell_type: `"lstm"` or `"gru"`.
        attention: a name from `layers.attention.ATTENTION_MECHANISMS`; None
            (where `attention_required` is False) for a decoder that starts
            from the encoder's final states and sees the source only
            through them.
        attention_units: hidden size of additive attention mechanisms.
        attention_options: more constructor arguments of the named attention
            mechanism (`layers.attention.attention_options(name)` lists
            them), e.g. `{"filters": 16, "kernel_size": 31}` for
            `"location_sensitive"`.
        input_feeding: feed the previous attentional vector to the decoder.
        dropout: dropout rate in encoder and decoder.
        target_size: rows of the target embedding and width of the output
            layer (default `vocabulary_size`; fewer with a side vocabulary).
    """

    # Whether the model can only read its input through attention (an image
    # or a recording has no final states that could carry it alone).
    attention_required = True
    shortlists_outputs = True

    def __init__(self, vocabulary_size, embedding_dim=64, units=128, decoder_layers=1,
                 cell_type="lstm", attention="bahdanau", attention_units=None,
                 input_feeding=True, dropout=0.0, target_size=None, attention_options=None,
                 **kwargs):
        super().__init__(**kwargs)
        if attention is None and self.attention_required:
            raise ValueError(f"{self.__class__.__name__} reads its input through attention: "
                             "give an attention mechanism")
        self.vocabulary_size = vocabulary_size
        self.target_size = target_size or vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.decoder_layers = decoder_layers
        self.cell_type = cell_type
        self.attention_name = attention
        self.attention_units = attention_units
        self.attention_options = dict(attention_options or {})
        self.input_feeding = input_feeding
        self.dropout = dropout
        self.target_embedding = keras.layers.Embedding(
            self.target_size, embedding_dim, name="target_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.decoder = AttentionDecoder(
            units, num_layers=decoder_layers, cell_type=cell_type, attention=attention,
            attention_units=attention_units, input_feeding=input_feeding, dropout=dropout,
            attention_options=attention_options, name="decoder")
        # Under mixed precision the projection, the largest matmul of a
        # training step, runs in the low precision (as Keras' mixed-precision
        # guide advises); `logits` casts its result to float32 for the softmax
        # and the loss.
        self.output_projection = keras.layers.Dense(self.target_size, name="output_projection")

    # -- what subclasses implement ------------------------------------------------

    def build_encoder(self):
        """Builds `self.encoder` (and any layer before it) for the model's inputs."""
        raise NotImplementedError

    def encoder_outputs(self, inputs, training=False, fused_lstm=False):
        """`(memory [batch, source, units], states)`, states as `RNNEncoder`
        gives them; `fused_lstm` as `RNNEncoder` takes it."""
        raise NotImplementedError

    def source_inputs(self, inputs):
        """What `encode` takes, from `call`'s dict of inputs."""
        raise NotImplementedError

    def add_encoder_losses(self, inputs, memory, decoder_input_ids):
        """Adds (`add_loss`) training losses of the encoder's own, if any:
        `inputs` as `encode` takes them, `memory` the encoder's output,
        `decoder_input_ids` [batch, target] BOS and the target, PAD after.
        Called in training only; none by default."""

    def embedding_rows(self, token_ids):
        """Decoder input tokens -> rows of the target embedding (the identity
        by default)."""
        return token_ids

    # -- the SequenceModel interface --------------------------------------------

    def build(self, input_shape=None):
        self.build_encoder()
        self.target_embedding.build((None, None))
        self.decoder.build((None, None, self.embedding_dim), (None, None, self.units))
        self.output_projection.build((None, None, self.units))
        self.built = True

    def encode(self, inputs, training=False, fused_lstm=False):
        """The input (see the subclass) -> `(context, state)`: the decoder's
        per-input constants (dict of `memory`, `keys`, `mask`) and its
        initial state (see `AttentionDecoder`)."""
        memory, states = self.encoder_outputs(inputs, training=training, fused_lstm=fused_lstm)
        return self.start_decoder(inputs, memory, states)

    def start_decoder(self, inputs, memory, states):
        """`(context, state)` of the decoder over the encoder's `memory` and
        final `states` (subclasses may add to the context what their steps
        read beside the memory)."""
        context = self.decoder.prepare_context(memory, self.source_mask(inputs))
        return context, self.decoder.initial_state(states, context)

    def step(self, token_ids, state, context, weights=None, output_bias=None):
        """Advances the decoder by one token (inference mode).

        Args:
            token_ids: int [rows], the previous tokens (BOS at the start).
            state: the decoder state, [rows, ...].
            context: from `encode`, [inputs, ...], shared by the k =
                rows // inputs rows of each input, which come together.
            weights: `step_weights()`, or None to read the variables here.
            output_bias: optional [inputs, outputs], added to each input's
                rows' logits (see `SequenceModel.step`).

        Returns:
            `(log_probs, state)`: log_probs float32 [rows, target_size].
        """
        output, _, state = self._decoder_step(token_ids, state, context, weights)
        logits = self.logits(output, weights)
        if output_bias is not None:
            logits = add_per_input(logits, output_bias)
        return ops.log_softmax(logits, axis=-1), state

    def step_weights(self, matmul_dtype=None, outputs=None):
        """The decoder's and the output layer's weights (see `SequenceModel`;
        `AttentionDecoder.step_weights` for `matmul_dtype`). With `outputs`,
        the output layer's columns of those outputs only, gathered once."""
        self.check_shortlist(outputs)
        projection = self.output_projection
        kernel = ops.cast(projection.kernel, matmul_dtype or projection.compute_dtype)
        bias = ops.cast(projection.bias, "float32")
        weights = {"decoder": self.decoder.step_weights(matmul_dtype)}
        if outputs is not None:
            outputs = ops.convert_to_tensor(outputs, "int32")
            kernel, bias = ops.take(kernel, outputs, axis=1), ops.take(bias, outputs)
            weights["outputs"] = outputs
        weights["output"] = (kernel, bias)
        return weights

    def _decoder_step(self, token_ids, state, context, weights=None):
        """`step` up to the output layer: `(output, embedded input, state)`."""
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        if weights is not None and "outputs" in weights:
            # A shortlist's positions -> the output indices the embedding reads.
            token_ids = ops.take(weights["outputs"], token_ids)
        embedded = self.target_embedding(self.embedding_rows(token_ids))
        output, state = self.decoder.step(embedded, state, context, training=False,
                                          weights=None if weights is None else weights["decoder"])
        return output, embedded, state

    def logits(self, outputs, weights=None):
        """The output layer: decoder outputs [..., units] -> float32 logits
        [..., target_size], with `step_weights()` if given."""
        if weights is None:
            projection = self.output_projection
            kernel, bias = ops.cast(projection.kernel, outputs.dtype), projection.bias
        else:
            kernel, bias = weights["output"]
        # The product in the compute dtype (or `step_weights`' matmul
        # dtype), the bias added after the cast to float32, in training and
        # search alike: a bfloat16 bias and its gradient over [batch,
        # target, vocabulary] cost more than float32 ones.
        return ops.cast(kernel_matmul(outputs, kernel), "float32") + ops.cast(bias, "float32")

    def length_limits(self, inputs, max_length):
        """Every output may use the whole buffer, `max_length` tokens."""
        mask = self.source_mask(inputs)
        return ops.full((ops.shape(mask)[0],), max_length, "int32")

    @property
    def has_coverage(self):
        # Every attention decoder sums its alignments (`AttentionDecoder`).
        return self.attention_name is not None

    def coverage(self, state):
        if not self.has_coverage:
            return super().coverage(state)
        return state["coverage"]

    @property
    def has_attention(self):
        return self.attention_name is not None

    def attention(self, state):
        if not self.has_attention:
            return super().attention(state)
        return state["alignments"]

    # -- teacher-forced training --------------------------------------------------

    def call(self, inputs, training=False, return_attention=False):
        """Teacher-forced logits [batch, target, target_size] (float32);
        with `return_attention`, also the alignments [batch, target, source]
        (None without attention), for plotting. In training, adds the
        encoder's own losses (`add_encoder_losses`)."""
        outputs, _, alignments, _ = self._teacher_forced(inputs, training)
        logits = self.logits(outputs)
        return (logits, alignments) if return_attention else logits

    def _teacher_forced(self, inputs, training):
        """`call` up to the output layer: `(outputs, embedded inputs,
        alignments, context)` over the whole target."""
        source = self.source_inputs(inputs)
        decoder_input_ids = ops.convert_to_tensor(inputs["decoder_input_ids"], "int32")
        memory, states = self.encoder_outputs(source, training=training)
        if training:
            self.add_encoder_losses(source, memory, decoder_input_ids)
        context, state = self.start_decoder(source, memory, states)
        embedded = self.embedding_dropout(
            self.target_embedding(self.embedding_rows(self.target_index(decoder_input_ids))),
            training=training)
        outputs, alignments = self.decoder(embedded, context, state, training=training)
        return outputs, embedded, alignments, context

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            decoder_layers=self.decoder_layers,
            cell_type=self.cell_type,
            attention=self.attention_name,
            attention_units=self.attention_units,
            attention_options=self.attention_options,
            input_feeding=self.input_feeding,
            dropout=self.dropout,
        )
        return config
