"""The pointer-generator network with coverage (See et al. 2017)."""

import keras
from keras import ops

from keras_seq2seq.models.seq2seq import AttentionSeq2Seq
from keras_seq2seq.text import PAD_ID, UNK_ID

# Floor of the final probabilities before the log: an extended id that no
# source word holds has probability exactly 0.
_FLOOR = 1e-12


def copy_distribution(alignments, source_ids, width):
    """Attention mass summed per token id: [..., source] -> [..., width].

    `alignments` [batch, source] or [batch, target, source]; `source_ids`
    [batch, source] (extended ids, all < width). A scatter-add (`scatter_nd`
    sums repeated ids; TFLite has it as the builtin SCATTER_ND), which costs
    batch x source, not batch x source x width as a one-hot matmul would.
    """
    alignments = ops.cast(alignments, "float32")
    source_ids = ops.cast(source_ids, "int32")
    shape = ops.shape(alignments)
    batch, source = shape[0], shape[-1]
    rows = ops.broadcast_to(ops.reshape(ops.arange(batch, dtype="int32"), (-1, 1)), (batch, source))
    if len(alignments.shape) == 2:
        indices = ops.stack([rows, source_ids], axis=-1)  # [B, S, 2]
        return ops.scatter(indices, alignments, (batch, width))
    steps = shape[1]
    indices = ops.stack([
        ops.broadcast_to(rows[:, None, :], (batch, steps, source)),
        ops.broadcast_to(ops.reshape(ops.arange(steps, dtype="int32"), (1, -1, 1)), (batch, steps, source)),
        ops.broadcast_to(source_ids[:, None, :], (batch, steps, source)),
    ], axis=-1)  # [B, T, S, 3]
    return ops.scatter(indices, alignments, (batch, steps, width))


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class PointerGenerator(AttentionSeq2Seq):
    """An attention encoder-decoder that can also copy source words.

    At each step a switch p_gen = sigmoid(w . [h~_t; x_t] + b), from the
    attentional vector h~_t and the input embedding x_t, mixes generating
    from the vocabulary with copying a source word by its attention weight:

        P(w) = p_gen * P_vocab(w) + (1 - p_gen) * sum_{i: x_i = w} a_t,i

    over the *extended vocabulary* of the example: the vocabulary plus
    `source length` temporary ids (a `WordTokenizer` gives a sentence's k-th
    distinct unknown word the id `vocabulary_size + k`). Inputs may carry
    extended ids; embeddings read them as UNK. `call` and `step` return
    log-probabilities [..., vocabulary_size + source], which
    `SequenceCrossEntropy(from_log_probabilities=True)` and the decoding
    loop take as they are.

    The generator never writes `<unk>`: where the output needs a word the
    vocabulary lacks, copying is the only way to write it. (Trained with
    `<unk>`, the model learns to write `<unk>` for unknown source words, the
    far more common case in translation data, and copies nothing: measured
    on Multi30k, 0% of invented names came through.) Train with
    `ignore_unknown=True`, since `<unk>` targets then have probability 0.

    Coverage (See et al. 2017, section 2.3): `attention="coverage"` feeds the
    running sum of past alignments into the attention scores, and
    `coverage_loss_weight` adds lambda * sum_i min(a_t,i, c_t,i) per target
    token to the loss, which penalises attending to covered positions
    again. Beam search can further rank by a coverage penalty (`beta`).

    Args:
        vocabulary_size: the fixed vocabulary (specials included).
        attention: the attention mechanism (default `"coverage"`).
        coverage_loss_weight: lambda of the coverage loss (0: none).
        **kwargs: the other `AttentionSeq2Seq` arguments.

    Example:

    >>> model = PointerGenerator(vocabulary_size=10_000, units=256)
    >>> model.compile(optimizer="adam", loss=SequenceCrossEntropy(
    ...     ignore_unknown=True, from_log_probabilities=True))
    >>> model.fit(parallel_text_dataset(..., word_tokenizer, extended_ids=True))
    """

    copies_source = True
    returns_log_probabilities = True
    # Its outputs extend the vocabulary with each source's own words.
    shortlists_outputs = False
    factors_log_probabilities = True

    def __init__(self, vocabulary_size, attention="coverage", coverage_loss_weight=1.0, **kwargs):
        if attention is None:
            raise ValueError("a pointer-generator copies by attention: attention cannot be None")
        if kwargs.get("target_vocabulary") is not None:
            raise ValueError("a pointer-generator's outputs extend the whole vocabulary: "
                             "it takes no target_vocabulary")
        super().__init__(vocabulary_size, attention=attention, **kwargs)
        self.coverage_loss_weight = coverage_loss_weight
        self.generation_switch = keras.layers.Dense(
            1, activation="sigmoid", name="generation_switch", dtype="float32")

    def build(self, input_shape=None):
        self.generation_switch.build((None, self.units + self.embedding_dim))
        super().build(input_shape)
        self._is_unknown = ops.equal(ops.arange(self.vocabulary_size), UNK_ID)

    def start_decoder(self, source_ids, memory, states):
        context, state = super().start_decoder(source_ids, memory, states)
        # Copying needs the extended ids of the source beside its encoding.
        return dict(context, source_ids=ops.convert_to_tensor(source_ids, "int32")), state

    def encode(self, inputs, training=False, fused_lstm=False):
        """`AttentionSeq2Seq.encode`, the context holding besides what
        `step_factored` reads of the source: which positions hold the same
        extended id, and which repeat an earlier one (computed once for a
        search rather than at every step, and not in training, which reads
        neither)."""
        context, state = super().encode(inputs, training=training, fused_lstm=fused_lstm)
        source_ids = context["source_ids"]
        same = ops.equal(source_ids[:, :, None], source_ids[:, None, :])  # [sources, S, S]
        positions = ops.arange(ops.shape(source_ids)[1])
        earlier = ops.less(positions[None, :], positions[:, None])  # [S, S]: j before i
        return dict(context, same_ids=ops.cast(same, "float32"),
                    repeats_earlier_id=ops.any(same & earlier[None], axis=-1)), state

    def step_weights(self, matmul_dtype=None, outputs=None):
        """`AttentionSeq2Seq.step_weights`, with `<unk>`'s ban in the output
        bias, read once for the loop instead of applied at every step."""
        weights = super().step_weights(matmul_dtype, outputs)
        kernel, bias = weights["output"]
        weights["output"] = (kernel, ops.where(self._is_unknown, -1e9, bias))
        return weights

    def generator_logits(self, outputs, weights=None):
        """The vocabulary's logits, `<unk>` at -1e9 (the generator never
        writes it; with `step_weights` the bias already bans it)."""
        logits = self.logits(outputs, weights)
        if weights is None:
            logits = ops.where(self._is_unknown, -1e9, logits)
        return logits

    def _final_log_probs(self, outputs, embedded, alignments, source_ids, weights=None):
        """log P over the extended vocabulary, [..., vocabulary + source]."""
        logits = self.generator_logits(outputs, weights)
        switch = self._switch(outputs, embedded)
        extra = ops.shape(source_ids)[1]
        generated = switch * ops.softmax(logits, axis=-1)
        padding = [[0, 0]] * (len(generated.shape) - 1) + [[0, extra]]
        generated = ops.pad(generated, padding)
        copied = (1.0 - switch) * copy_distribution(
            alignments, source_ids, self.vocabulary_size + extra)
        return ops.log(ops.maximum(generated + copied, _FLOOR))

    def _switch(self, outputs, embedded):
        """p_gen [..., 1] from the attentional vectors and input embeddings."""
        return self.generation_switch(
            ops.concatenate([ops.cast(outputs, "float32"), ops.cast(embedded, "float32")], -1))

    def generation_probabilities(self, inputs):
        """p_gen [batch, target] of teacher-forced `inputs` (as `call` takes
        them): how far each output token was generated from the vocabulary
        (1) rather than copied from the source (0)."""
        outputs, embedded, _, _ = self._teacher_forced(inputs, training=False)
        return ops.squeeze(self._switch(outputs, embedded), -1)

    def step(self, token_ids, state, context, weights=None):
        """One decoder step: `(log_probs [rows, vocabulary + source], state)`."""
        output, embedded, state = self._decoder_step(token_ids, state, context, weights)
        source_ids = context["source_ids"]
        sources, source = ops.shape(source_ids)[0], ops.shape(source_ids)[1]

        def per_source(x):  # [rows, d] -> [sources, k, d]: the rows of a source together
            return ops.reshape(x, (sources, -1, ops.shape(x)[-1]))

        log_probs = self._final_log_probs(per_source(output), per_source(embedded),
                                          per_source(state["alignments"]), source_ids, weights)
        return ops.reshape(log_probs, (-1, self.vocabulary_size + source)), state

    def step_factored(self, token_ids, state, context, weights=None):
        """`step` in factored form (`SequenceModel.step_factored`).

        Outside the source's words a word's log-probability is
        log p_gen + its log-probability under the generator: a search finds
        a row's best among the generator's best words and the source's
        words, whose mixture is computed at the source's positions only,
        with no pass over the whole extended vocabulary (mixture, padding,
        scatter, logarithm). The source's extended ids are the exceptions.
        A generated word is not floored at 1e-12 as in `step` (where words
        under it tie), except through p_gen's floor.
        """
        # The generator's log-softmax, one kernel, rather than its logits and
        # their log-normalizer apart (a logsumexp is four passes over the
        # row): 1.07x sentences/s at batch 1, 1.02x at batch 32.
        output, embedded, state = self._decoder_step(token_ids, state, context, weights)
        source_ids = context["source_ids"]  # [sources, source]
        shape = ops.shape(source_ids)
        sources, source = shape[0], shape[1]
        log_probs = ops.log_softmax(self.generator_logits(output, weights), axis=-1)  # [rows, V]
        switch = self._switch(output, embedded)  # [rows, 1]
        offsets = ops.log(ops.maximum(switch, _FLOOR))

        rows = ops.shape(log_probs)[0]
        beam = rows // sources

        def per_row(x):  # [sources, source] -> [rows, source]: each source's on its rows
            return ops.reshape(ops.broadcast_to(x[:, None, :], (sources, beam, source)),
                               (rows, source))

        row_ids = per_row(source_ids)
        # Each position's copy mass: the attention summed over the positions holding its id.
        alignments = ops.reshape(ops.cast(state["alignments"], "float32"), (sources, beam, source))
        copied = ops.reshape(ops.matmul(alignments, context["same_ids"]), (rows, source))
        in_vocabulary = ops.less(row_ids, self.vocabulary_size)
        flat = ops.arange(rows, dtype="int32")[:, None] * self.vocabulary_size + ops.where(
            in_vocabulary, row_ids, 0)
        generated = ops.where(in_vocabulary,
                              ops.exp(ops.take(ops.reshape(log_probs, (-1,)), flat)), 0.0)
        scores = ops.log(ops.maximum(switch * generated + (1.0 - switch) * copied, _FLOOR))
        # An id held twice: its first position speaks for it.
        scores = ops.where(per_row(context["repeats_earlier_id"]), -1e9, scores)
        return log_probs, offsets, row_ids, scores, state

    def call(self, inputs, training=False, return_attention=False):
        """Teacher-forced log-probabilities [batch, target, vocabulary + source].

        Adds the coverage loss (`add_loss`) when `coverage_loss_weight` is set.
        """
        outputs, embedded, alignments, context = self._teacher_forced(inputs, training)
        log_probs = self._final_log_probs(outputs, embedded, alignments, context["source_ids"])
        if self.coverage_loss_weight:
            self.add_loss(self.coverage_loss_weight * coverage_loss(
                alignments, ops.not_equal(inputs["decoder_input_ids"], PAD_ID)))
        if return_attention:
            return log_probs, alignments
        return log_probs

    def get_config(self):
        config = super().get_config()
        config["coverage_loss_weight"] = self.coverage_loss_weight
        return config


def coverage_loss(alignments, target_mask):
    """Mean over real target steps of sum_i min(a_t,i, c_t,i) (See et al. eq. 12).

    Args:
        alignments: float [batch, target, source].
        target_mask: bool [batch, target], False at padding.
    """
    alignments = ops.cast(alignments, "float32")
    coverage = ops.cumsum(alignments, axis=1) - alignments  # sum over earlier steps
    per_step = ops.sum(ops.minimum(alignments, coverage), axis=-1)
    mask = ops.cast(target_mask, "float32")
    return ops.sum(per_step * mask) / ops.maximum(ops.sum(mask), 1.0)
