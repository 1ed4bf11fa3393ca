"""Attention mechanisms: score a query against every position of a memory.

All mechanisms share one interface so that decoders need not know which one
they hold:

    keys = attention.process_memory(memory)          # once per source
    context, alignments = attention(query, memory, keys, mask,
                                    previous_alignments)

where `alignments` are `attention.alignments(query, keys, mask,
previous_alignments)` and `context` the memory they weigh.

Shapes: query [batch, queries, query_dim]; memory [batch, source, memory_dim];
mask bool [batch, source]; previous_alignments [batch, queries, source];
context [batch, queries, memory_dim]; alignments [batch, queries, source].
Queries of one batch entry share its memory: the target steps of a sentence
in training, or the hypotheses of a sentence in beam search. Padded source
positions get exactly zero weight. Scores and the softmax are computed in
float32 even under mixed precision.
"""

import inspect

import keras
from keras import ops


class AttentionMechanism(keras.layers.Layer):
    """Base class. Subclasses implement `process_memory` and `score`.

    Args:
        units: size of the attention's hidden projection, where it has one.
    """

    # True for mechanisms whose scores depend on the previous step's
    # alignments; they can only run one decoder step at a time.
    uses_previous_alignments = False
    # True where those are the running sum of all previous alignments.
    cumulative = False
    # True where `score` is each key's dot product with the query (no
    # weights of its own): the decoder's training loop then differentiates
    # the scores by hand (`layers/decoder_recurrence.py`).
    scores_are_dot_products = False

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        # Masks are passed explicitly (`mask=`); this silences Keras' warning
        # about memories that arrive with an implicit one.
        self.supports_masking = True

    def process_memory(self, memory):
        """Query-independent projection of the memory, computed once."""
        return memory

    def _build_additive(self, query_dim, memory_dim):
        """Weights of the additive score v . tanh(W query + U memory)."""
        self.memory_projection = keras.layers.Dense(
            self.units, use_bias=False, name="memory_projection"
        )
        self.memory_projection.build((None, None, memory_dim))
        self.query_projection = keras.layers.Dense(
            self.units, use_bias=True, name="query_projection"
        )
        self.query_projection.build((None, None, query_dim))
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")

    def _additive_score(self, query, keys, per_query=None):
        """v . tanh(W query + keys [+ per_query]), keys being U memory
        [batch, source, units] and `per_query` an optional term of each
        query's own, [batch, queries, source, units]."""
        # expand_dims rather than [:, None] indexing: TFLite has no builtin
        # for a strided slice that adds an axis to a tensor of unknown shape.
        hidden = ops.expand_dims(self.query_projection(query), 2) + ops.expand_dims(keys, 1)
        if per_query is not None:
            hidden = hidden + per_query
        hidden = ops.tanh(hidden)
        return ops.einsum("btsu,u->bts", hidden, ops.cast(self.v, hidden.dtype))

    def score(self, query, keys, previous_alignments=None):
        """Unnormalised scores [batch, queries, source]."""
        raise NotImplementedError

    def _previous(self, previous_alignments, keys):
        """`previous_alignments` (or coverage) [batch, queries, source] in the
        keys' dtype."""
        if previous_alignments is None:
            raise ValueError(f"{type(self).__name__} needs previous_alignments")
        return ops.cast(previous_alignments, keys.dtype)

    def alignments(self, query, keys, mask=None, previous_alignments=None):
        """The softmax of the scores: float32 [batch, queries, source], 0 at
        masked positions. `call` is this and the context it weighs; the
        decoder's training loop differentiates the two apart
        (`layers/decoder_recurrence.py`)."""
        scores = ops.cast(self.score(query, keys, previous_alignments), "float32")
        if mask is None:
            return ops.softmax(scores, axis=-1)
        valid = ops.cast(mask, "bool")[:, None, :]
        scores = ops.where(valid, scores, -1e9)
        return ops.softmax(scores, axis=-1) * ops.cast(valid, "float32")

    def call(self, query, memory, keys=None, mask=None, previous_alignments=None):
        if keys is None:
            keys = self.process_memory(memory)
        alignments = self.alignments(query, keys, mask, previous_alignments)
        context = ops.einsum("bts,bsd->btd", ops.cast(alignments, memory.dtype), memory)
        return context, alignments

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class LuongAttention(AttentionMechanism):
    """Multiplicative attention (Luong et al. 2015).

    Args:
        score_mode: `"dot"` (query . memory; needs equal sizes), `"general"`
            (query . W memory) or `"concat"` (v . tanh(W [query; memory])).
        units: hidden size of the `"concat"` score; `"general"` projects the
            memory to the query size and ignores it.

    Example:

    >>> attention = LuongAttention("general")
    >>> context, alignments = attention(query, memory, mask=mask)
    """

    def __init__(self, score_mode="general", units=None, **kwargs):
        super().__init__(units=units, **kwargs)
        if score_mode not in ("dot", "general", "concat"):
            raise ValueError(
                f"score_mode must be 'dot', 'general' or 'concat', got {score_mode!r}"
            )
        if score_mode == "concat" and not units:
            raise ValueError("LuongAttention('concat') needs units")
        self.score_mode = score_mode

    def build(self, query_shape, memory_shape=None, *args, **kwargs):
        query_dim = query_shape[-1]
        memory_dim = memory_shape[-1] if memory_shape is not None else query_dim
        if self.score_mode == "dot" and query_dim != memory_dim:
            raise ValueError(
                f"'dot' attention needs query and memory of one size, got "
                f"{query_dim} and {memory_dim}"
            )
        if self.score_mode == "general":
            self.memory_projection = keras.layers.Dense(
                query_dim, use_bias=False, name="memory_projection"
            )
            self.memory_projection.build((None, None, memory_dim))
        elif self.score_mode == "concat":
            self._build_additive(query_dim, memory_dim)
        self.built = True

    @property
    def scores_are_dot_products(self):
        # "general" projects the memory into its keys, once per source.
        return self.score_mode in ("dot", "general")

    def process_memory(self, memory):
        if self.score_mode == "dot":
            return memory
        return self.memory_projection(memory)

    def score(self, query, keys, previous_alignments=None):
        if self.score_mode == "concat":
            return self._additive_score(query, keys)
        return ops.einsum("btq,bsq->bts", query, keys)

    def get_config(self):
        config = super().get_config()
        config["score_mode"] = self.score_mode
        return config


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class BahdanauAttention(AttentionMechanism):
    """Additive attention (Bahdanau et al. 2015): v . tanh(W q + U m).

    Args:
        units: size of the hidden projection.

    Example:

    >>> attention = BahdanauAttention(units=128)
    >>> context, alignments = attention(query, memory, mask=mask)
    """

    def __init__(self, units=128, **kwargs):
        super().__init__(units=units, **kwargs)

    def build(self, query_shape, memory_shape=None, *args, **kwargs):
        memory_dim = memory_shape[-1] if memory_shape is not None else query_shape[-1]
        self._build_additive(query_shape[-1], memory_dim)
        self.built = True

    def process_memory(self, memory):
        return self.memory_projection(memory)

    def score(self, query, keys, previous_alignments=None):
        return self._additive_score(query, keys)


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class LocationSensitiveAttention(AttentionMechanism):
    """Additive attention that also sees where it looked before.

    Chorowski et al. 2015: v . tanh(W q + U m + V (F * a_prev)), where F is a
    1-D convolution over the previous step's alignments `a_prev`. It helps
    the decoder move monotonically through the source. One query at a time.

    Args:
        units: size of the hidden projection.
        filters: number of location filters.
        kernel_size: width of the location convolution (odd).
        cumulative: use the sum of all previous alignments instead of the
            last one (as Tacotron 2 does).
    """

    uses_previous_alignments = True

    def __init__(self, units=128, filters=32, kernel_size=15, cumulative=False, **kwargs):
        super().__init__(units=units, **kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.cumulative = cumulative

    def build(self, query_shape, memory_shape=None, *args, **kwargs):
        memory_dim = memory_shape[-1] if memory_shape is not None else query_shape[-1]
        self._build_additive(query_shape[-1], memory_dim)
        self.location_convolution = keras.layers.Conv1D(
            self.filters, self.kernel_size, padding="same", use_bias=False,
            name="location_convolution",
        )
        self.location_convolution.build((None, None, 1))
        self.location_projection = keras.layers.Dense(
            self.units, use_bias=False, name="location_projection"
        )
        self.location_projection.build((None, None, self.filters))
        self.built = True

    def process_memory(self, memory):
        return self.memory_projection(memory)

    def score(self, query, keys, previous_alignments=None):
        previous = self._previous(previous_alignments, keys)
        shape = ops.shape(previous)
        # One convolution over every query's alignments: [batch * queries, source, 1].
        features = self.location_convolution(ops.reshape(previous, (-1, shape[2], 1)))
        location = ops.reshape(self.location_projection(features),
                               (shape[0], shape[1], shape[2], self.units))
        return self._additive_score(query, keys, location)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, cumulative=self.cumulative
        )
        return config


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class CoverageAttention(BahdanauAttention):
    """Additive attention that sees how much each position has been attended.

    See et al. 2017, eq. 11: v . tanh(W q + U m_i + w_c c_i + b), where the
    coverage c_i is the sum of the alignments of all previous steps at
    position i. It lets the decoder avoid attending (and so repeating) what
    it has covered. One query at a time.

    Args:
        units: size of the hidden projection.

    Example:

    >>> attention = CoverageAttention(units=128)
    >>> context, alignments = attention(query, memory, mask=mask,
    ...                                 previous_alignments=coverage)
    """

    uses_previous_alignments = True
    # The decoder passes the running sum of alignments, not the last ones.
    cumulative = True

    def build(self, query_shape, memory_shape=None, *args, **kwargs):
        super().build(query_shape, memory_shape)
        self.coverage_weight = self.add_weight(
            name="coverage_weight", shape=(self.units,), initializer="glorot_uniform")
        self.built = True

    def score(self, query, keys, previous_alignments=None):
        coverage = self._previous(previous_alignments, keys)  # the decoder passes coverage
        location = ops.expand_dims(coverage, -1) * ops.cast(self.coverage_weight, keys.dtype)
        return self._additive_score(query, keys, location)


# Each name: a class and the constructor arguments the name sets; every
# class also takes `units` (Luong's "dot" and "general" ignore it).
ATTENTION_MECHANISMS = {
    "bahdanau": (BahdanauAttention, {}),
    "luong_dot": (LuongAttention, {"score_mode": "dot"}),
    "luong_general": (LuongAttention, {"score_mode": "general"}),
    "luong_concat": (LuongAttention, {"score_mode": "concat"}),
    "location_sensitive": (LocationSensitiveAttention, {}),
    "location_sensitive_cumulative": (LocationSensitiveAttention, {"cumulative": True}),
    "coverage": (CoverageAttention, {}),
}


def attention_options(name):
    """The constructor arguments `get_attention(name, units, options)` takes
    in `options`: those of the class that neither `units` nor the name sets."""
    cls, preset = ATTENTION_MECHANISMS[name]
    parameters = inspect.signature(cls.__init__).parameters
    return sorted(key for key, parameter in parameters.items()
                  if parameter.kind is parameter.POSITIONAL_OR_KEYWORD
                  and key not in ("self", "units", *preset))


def get_attention(name, units, options=None):
    """An attention mechanism by name (see `ATTENTION_MECHANISMS`).

    `options`: more constructor arguments of its class, by name
    (`attention_options(name)` lists them), e.g. `{"filters": 16,
    "kernel_size": 31}` for `"location_sensitive"`.
    """
    if name not in ATTENTION_MECHANISMS:
        raise ValueError(
            f"unknown attention {name!r}; choose one of {sorted(ATTENTION_MECHANISMS)}"
        )
    options = dict(options or {})
    accepted = attention_options(name)
    for key in options:
        if key not in accepted:
            raise ValueError(f"attention_options: {name!r} attention has no option {key!r}; "
                             f"it takes {', '.join(accepted) or 'none'}")
    cls, preset = ATTENTION_MECHANISMS[name]
    return cls(units=units, **preset, **options)
