"""Pointer networks (Vinyals et al. 2015): outputs are positions in the input."""

import keras
from keras import ops

from keras_seq2seq.data.points import END_TOKEN, POINTER_OFFSET
from keras_seq2seq.layers import AttentionDecoder, BahdanauAttention, RNNEncoder
from keras_seq2seq.models.base import SequenceModel

START_TOKEN = 0
NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class PointerNetwork(SequenceModel):
    """An LSTM encoder over points and a decoder that points back into them.

    At each step the decoder's output is a distribution over the input
    positions, the content-based attention scores of Vinyals et al. (2015,
    eq. 3), `u_j = v . tanh(W1 e_j + W2 d_i)`, softmaxed over j. A learned
    extra position ends the output, so outputs vary in length (convex hull).
    The decoder's input at each step is the point it chose at the step before.

    Token space (shared with `keras_seq2seq.data.points`): 0 is the start
    input and padding, 1 ends the output, input position i is token i + 2.
    `step` therefore fits `keras_seq2seq.decoding.generate` unchanged, which
    never emits padding; `output_ids` turns tokens into 0-based positions.

    `call({"points": [B, n, dims], "decoder_input_ids": [B, T]})` returns
    masked logits [B, T, n + 2] for `SequenceCrossEntropy`.

    Args:
        units: size of the point embedding, encoder and decoder LSTMs.
        encoder_layers, decoder_layers: stacked LSTM layers.
        bidirectional: bidirectional encoder.
        attention_units: hidden size of the pointer's additive scores.
        glimpse: `None` (the paper's model), or an attention name from
            `layers.attention.ATTENTION_MECHANISMS`: the decoder first attends
            over the encoded points and points from that attentional vector
            (a "glimpse", Vinyals et al. 2016 / Bello et al. 2017).
        mask_chosen: positions already chosen cannot be chosen again, in
            training and decoding.
        permutation: outputs are permutations of all n positions (TSP): the
            end position is allowed only once every position has been chosen.
            Needs `mask_chosen`.
        dropout: dropout rate in encoder and decoder.
        point_dims: coordinates per point.

    Example:

    >>> model = PointerNetwork(units=128, mask_chosen=True, permutation=True)
    >>> model.compile(optimizer="adam", loss=SequenceCrossEntropy())
    >>> model.fit(pointer_dataset(points, targets, batch_size=128), epochs=5)
    >>> indices, scores = generate(model, points, max_length=n + 1, beam_size=5)
    """

    pad_id = START_TOKEN
    start_id = START_TOKEN
    end_id = END_TOKEN

    def __init__(
        self,
        units=128,
        encoder_layers=1,
        decoder_layers=1,
        bidirectional=False,
        attention_units=None,
        glimpse=None,
        mask_chosen=True,
        permutation=False,
        dropout=0.0,
        point_dims=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if permutation and not mask_chosen:
            raise ValueError("permutation outputs need mask_chosen=True")
        self.units = units
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.bidirectional = bidirectional
        self.attention_units = attention_units or units
        self.glimpse = glimpse
        self.mask_chosen = mask_chosen
        self.permutation = permutation
        self.dropout = dropout
        self.point_dims = point_dims

        self.point_embedding = keras.layers.Dense(units, name="point_embedding")
        self.encoder = RNNEncoder(
            units, num_layers=encoder_layers, bidirectional=bidirectional, dropout=dropout,
            name="encoder",
        )
        self.decoder = AttentionDecoder(
            units, num_layers=decoder_layers, attention=glimpse,
            attention_units=self.attention_units, input_feeding=False, dropout=dropout,
            name="decoder",
        )
        self.pointer = BahdanauAttention(units=self.attention_units, name="pointer")

    def build(self, input_shape=None):
        self.point_embedding.build((None, None, self.point_dims))
        self.encoder.build((None, None, self.units))
        self.decoder.build((None, None, self.units), (None, None, self.units))
        self.pointer.build((None, None, self.units), (None, None, self.units))
        # The decoder's first input, and the memory row of the end position.
        self.start_input = self.add_weight(
            name="start_input", shape=(self.units,), initializer="random_uniform")
        self.end_memory = self.add_weight(
            name="end_memory", shape=(self.units,), initializer="random_uniform")
        self.built = True

    # -- the two pieces decoding is built on ---------------------------------

    def encode(self, points, training=False, fused_lstm=False):
        """Encodes a batch of point sets.

        Args:
            points: float [batch, n, dims].
            fused_lstm: as `RNNEncoder` takes it.

        Returns:
            `(context, state)`: per-instance constants (the decoder's, plus
            `"inputs"` [batch, n + 2, units], the decoder input of each token,
            and `"pointer_keys"` [batch, n + 2, attention_units]) and the
            initial state (the decoder's, plus `"chosen"` float32
            [batch, n + 2], 1 where a token was chosen).
        """
        points = ops.convert_to_tensor(points, self.compute_dtype)
        batch, n = ops.shape(points)[0], ops.shape(points)[1]
        embedded = self.point_embedding(points)
        mask = ops.ones((batch, n), "bool")
        memory, encoder_states = self.encoder(embedded, mask=mask, training=training,
                                              fused_lstm=fused_lstm)
        context = self.decoder.prepare_context(memory, mask)

        def rows(*vectors):
            return ops.stack([ops.cast(v, memory.dtype) for v in vectors])[None] * ops.ones(
                (batch, 1, 1), memory.dtype)

        zeros = ops.zeros((self.units,), memory.dtype)
        # Rows follow the token space: start (never pointed at), end, points.
        pointer_memory = ops.concatenate([rows(zeros, self.end_memory), memory], axis=1)
        context["pointer_keys"] = self.pointer.process_memory(pointer_memory)
        context["inputs"] = ops.concatenate(
            [rows(self.start_input, zeros), ops.cast(embedded, memory.dtype)], axis=1)
        state = self.decoder.initial_state(encoder_states, context)
        state["chosen"] = ops.zeros((batch, n + POINTER_OFFSET), "float32")
        return context, state

    def length_limits(self, points, max_length):
        """n positions at most, then the end: n + 1 for every instance."""
        points = ops.convert_to_tensor(points)
        return ops.minimum(ops.full((ops.shape(points)[0],), ops.shape(points)[1] + 1, "int32"),
                           max_length)

    def output_ids(self, token_ids):
        """Tokens -> 0-based input positions, -1 for the end and after it."""
        return ops.where(token_ids >= POINTER_OFFSET, token_ids - POINTER_OFFSET, -1)

    def _masked_logits(self, scores, chosen):
        """Bans the start token always, chosen positions and an early end by option.

        scores and chosen: float32 [..., n + 2].
        """
        width = ops.shape(scores)[-1]
        token = ops.arange(width)
        banned = ops.equal(token, START_TOKEN) | ops.zeros_like(scores, "bool")
        if self.mask_chosen:
            is_point = token >= POINTER_OFFSET
            banned = banned | ((chosen > 0) & is_point)
        if self.permutation:
            points_chosen = ops.sum(chosen[..., POINTER_OFFSET:], axis=-1, keepdims=True)
            incomplete = points_chosen < ops.cast(width - POINTER_OFFSET, "float32")
            banned = banned | (ops.equal(token, END_TOKEN) & incomplete)
        return ops.where(banned, NEG_INF, scores)

    def step_weights(self, matmul_dtype=None, outputs=None):
        """The decoder's weights (see `SequenceModel.step_weights`; a
        pointer network's outputs are its input's positions: no shortlist)."""
        self.check_shortlist(outputs)
        return self.decoder.step_weights(matmul_dtype)

    def step(self, token_ids, state, context, weights=None):
        """Advances the decoder by one choice (inference mode).

        Args:
            token_ids: int [rows], the previous choice (0 at the start).
            state: the decoder state (see `encode`), [rows, ...].
            context: from `encode`, [instances, ...], shared by the k =
                rows // instances rows of each instance (its beam), in order.
            weights: `step_weights()` (None: read here).

        Returns:
            `(log_probs, state)`: log_probs float32 [rows, n + 2].
        """
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        instances = ops.shape(context["inputs"])[0]
        # [instances, k]: each instance's rows choose among its own inputs.
        per_instance = ops.reshape(token_ids, (instances, -1))
        inputs = ops.take_along_axis(context["inputs"], per_instance[..., None], axis=1)
        inputs = ops.reshape(inputs, (-1, inputs.shape[-1]))
        decoder_state = {k: v for k, v in state.items() if k != "chosen"}
        output, decoder_state = self.decoder.step(inputs, decoder_state, context, training=False,
                                                  weights=weights)
        width = ops.shape(state["chosen"])[-1]
        chosen = state["chosen"] + ops.one_hot(token_ids, width, dtype="float32")
        scores = self.pointer.score(ops.reshape(output, (instances, -1, output.shape[-1])),
                                    context["pointer_keys"])
        scores = ops.cast(ops.reshape(scores, (-1, width)), "float32")
        logits = self._masked_logits(scores, chosen)
        return ops.log_softmax(logits, axis=-1), dict(decoder_state, chosen=chosen)

    # -- teacher-forced training ----------------------------------------------

    def call(self, inputs, training=False):
        """Teacher-forced masked logits [batch, target, n + 2] (float32)."""
        context, state = self.encode(inputs["points"], training=training)
        state.pop("chosen")
        decoder_input_ids = ops.convert_to_tensor(inputs["decoder_input_ids"], "int32")
        embedded = ops.take_along_axis(context["inputs"], decoder_input_ids[..., None], axis=1)
        outputs, _ = self.decoder(embedded, context, state, training=training)
        scores = ops.cast(self.pointer.score(outputs, context["pointer_keys"]), "float32")
        width = ops.shape(scores)[-1]
        # What was chosen before each step: its own input and every earlier one.
        chosen = ops.cumsum(ops.one_hot(decoder_input_ids, width, dtype="float32"), axis=1)
        return self._masked_logits(scores, chosen)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            bidirectional=self.bidirectional,
            attention_units=self.attention_units,
            glimpse=self.glimpse,
            mask_chosen=self.mask_chosen,
            permutation=self.permutation,
            dropout=self.dropout,
            point_dims=self.point_dims,
        )
        return config
