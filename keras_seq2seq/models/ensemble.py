"""`Ensemble`: several trained models searched as one."""

import keras
from keras import ops

from keras_seq2seq.models.base import SequenceModel


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class Ensemble(SequenceModel):
    """Averages its members' log-probabilities at every decoding step.

    Each step runs every member's `step` on its own state and returns the
    mean of their log-probabilities (as OpenNMT-py's ensemble decoding
    does), so greedy search, beam search, sampling, scoring and the exports
    work on an ensemble as on one model. The mean of log-probabilities is a
    product of experts: it sums to at most 1 over the outputs, and scores
    are sums of these means.

    Members must count outputs the same way (`output_space`: same
    vocabulary and target vocabulary, e.g. trained with the same tokenizer
    on the same data, with different seeds); a `ValueError` says which
    differs otherwise.

    Args:
        members: a list of trained `SequenceModel`s.

    Example:

    >>> ensemble = Ensemble([model_a, model_b])
    >>> ids, scores = generate(ensemble, source_ids, max_length=64, beam_size=5)
    """

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].output_space()
        for i, member in enumerate(members[1:], 1):
            if member.output_space() != first:
                differing = sorted(k for k in set(first) | set(member.output_space())
                                   if first.get(k) != member.output_space().get(k))
                raise ValueError(f"ensemble member {i} counts its outputs differently from "
                                 f"member 0 ({', '.join(differing)} differ): members must "
                                 "share the tokenizer and vocabularies")
        self.members = list(members)
        self.copies_source = members[0].copies_source
        if all(member.built for member in self.members):
            self.build()

    def build(self, input_shape=None):
        for member in self.members:
            if not member.built:
                member.build()
        self.built = True

    def output_space(self):
        return self.members[0].output_space()

    def encode(self, inputs, training=False, fused_lstm=False):
        encoded = [member.encode(inputs, training=training, fused_lstm=fused_lstm)
                   for member in self.members]
        return tuple(c for c, _ in encoded), tuple(s for _, s in encoded)

    @property
    def target_size(self):
        """The members' output width (their output spaces are equal)."""
        return self.members[0].target_size

    @property
    def shortlists_outputs(self):
        return all(member.shortlists_outputs for member in self.members)

    def step_weights(self, matmul_dtype=None, outputs=None):
        return tuple(member.step_weights(matmul_dtype, outputs) for member in self.members)

    def step(self, token_ids, state, context, weights=None, output_bias=None):
        weights = weights or (None,) * len(self.members)
        stepped = [member.step(token_ids, s, c, w, output_bias)
                   for member, s, c, w in zip(self.members, state, context, weights)]
        log_probs = _mean([lp for lp, _ in stepped])
        return log_probs, tuple(s for _, s in stepped)

    def call(self, inputs, training=False):
        """Teacher-forced mean log-probabilities [batch, target, outputs] (as logits:
        a loss's log-softmax of them is what the search scores, renormalized)."""
        return _mean([ops.log_softmax(member(inputs, training=training), axis=-1)
                      for member in self.members])

    def length_limits(self, inputs, max_length):
        return self.members[0].length_limits(inputs, max_length)

    def output_ids(self, token_ids):
        return self.members[0].output_ids(token_ids)

    def target_index(self, ids):
        return self.members[0].target_index(ids)

    def source_mask(self, inputs):
        return self.members[0].source_mask(inputs)

    @property
    def has_coverage(self):
        return all(member.has_coverage for member in self.members)

    def coverage(self, state):
        if not self.has_coverage:
            return super().coverage(state)
        return _mean([m.coverage(s) for m, s in zip(self.members, state)])

    @property
    def has_attention(self):
        return all(member.has_attention for member in self.members)

    def attention(self, state):
        """The members' attention, averaged."""
        if not self.has_attention:
            return super().attention(state)
        return _mean([m.attention(s) for m, s in zip(self.members, state)])

    def get_config(self):
        config = super().get_config()
        config["members"] = [keras.saving.serialize_keras_object(m) for m in self.members]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(m) for m in config["members"]]
        return cls(**config)


def _mean(tensors):
    """The elementwise mean of same-shape tensors, one per member."""
    return ops.mean(ops.stack(tensors), axis=0)
