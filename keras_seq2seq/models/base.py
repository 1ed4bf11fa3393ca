"""`SequenceModel`: what every model offers the search and the exports.

A model is two functions for decoding, `encode(inputs) -> (context, state)`
and `step(token_ids, state, context) -> (log_probs, state)`, plus the few
facts about its token space that a search needs (start, end and padding ids,
how long an output may be, how decoded tokens map to what callers see).
`keras_seq2seq.decoding.generate` is written once against this class, for
text models and pointer networks alike; exports call the same methods.
"""

import keras
import tensorflow as tf

from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID


def _in_multi_worker_mode(strategy):
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def add_per_input(values, per_input):
    """`values` [rows, n] plus `per_input` [inputs, n], each input's row on
    its k = rows // inputs rows (which come together, as `step`'s do)."""
    ops = keras.ops
    grouped = ops.reshape(values, (ops.shape(per_input)[0], -1, ops.shape(values)[-1]))
    return ops.reshape(grouped + per_input[:, None, :], ops.shape(values))


class MultiWorkerFitFixes:
    """Makes `keras.Model.fit` work under `MultiWorkerMirroredStrategy` (Keras 3.15).

    Mixed into a `keras.Model` subclass, it repairs two faults of Keras' TF
    trainer in multi-worker mode (keras-team/keras#20585):

    - before the first step Keras builds the model from a batch it averages
      across workers with `strategy.reduce`, which accepts one tensor, not a
      nest of them (`Attempt to convert a value ({...: PerReplica ...})`).
      Only the batch's shapes matter there, so this worker's batch is used.
    - each step's logs are averaged with `strategy.reduce(..., axis=0)`,
      which fails on scalar metrics ("Invalid reduction dimension 0"). The
      logs are given a leading axis of 1 so that this reduction averages
      them across workers.

    Without a multi-worker strategy it changes nothing.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is None or not _in_multi_worker_mode(self.distribute_strategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            batch = next(batches)
            break
        local = self.distribute_strategy.experimental_local_results
        data_batch = tf.nest.map_structure(
            lambda v: local(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v, batch)
        return super()._maybe_symbolic_build(data_batch=data_batch)

    def _reducible(self, logs):
        if not _in_multi_worker_mode(self.distribute_strategy):
            return logs
        return {k: tf.reshape(v, [1]) if v.shape.rank == 0 else v for k, v in logs.items()}

    def train_step(self, data):
        return self._reducible(super().train_step(data))

    def test_step(self, data):
        return self._reducible(super().test_step(data))


class SequenceModel(MultiWorkerFitFixes, keras.Model):
    """Base class of the package's encoder-decoders.

    Subclasses implement `encode`, `step` and `length_limits`, and set the
    class attributes below where they differ. Training is plain Keras
    (`call` gives teacher-forced logits); decoding never calls `call`.

    Class attributes:
        pad_id: the padding token, never emitted by a search. It is 0 for
            every model: the search's output buffers are zero-filled.
        start_id: the first decoder input of every output.
        end_id: the token that ends an output.
        copies_source: whether outputs extend the vocabulary with copied
            source words (the data pipeline then builds extended ids).
        returns_log_probabilities: whether `call` returns normalized
            log-probabilities (a mixture of distributions) instead of
            logits; the loss then reads them as they are.
        shortlists_outputs: whether `step_weights` takes `outputs`, a
            shortlist of the outputs to score.
        factors_log_probabilities: whether `step_factored` exists.
    """

    pad_id = PAD_ID
    start_id = BOS_ID
    end_id = EOS_ID
    copies_source = False
    returns_log_probabilities = False
    shortlists_outputs = False
    factors_log_probabilities = False

    def with_dtype_policy(self, policy):
        """The same model, config and weights, computing under `policy` (a
        name such as `"float32"` or `"mixed_bfloat16"`) on plain variables,
        or on a strategy's if called in its scope."""
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            copy = self.__class__.from_config(dict(self.get_config(), dtype=policy))
            copy.build()
            copy.set_weights(self.get_weights())
        finally:
            keras.config.set_dtype_policy(previous)
        return copy

    def encode(self, inputs, training=False, fused_lstm=False):
        """`inputs` [batch, ...] -> `(context, state)`: per-example constants
        for every step, and the decoder's initial state. `fused_lstm`: run
        the encoder's LSTM layers as TensorFlow's fused kernel (`RNNEncoder`;
        graph-mode searches only)."""
        raise NotImplementedError

    def step(self, token_ids, state, context, weights=None, output_bias=None):
        """`token_ids` [rows] -> `(log_probs [rows, outputs] float32, state)`.

        `state` holds [rows, ...] tensors; `context` (from `encode`) holds
        [inputs, ...] ones, each input's shared by its k = rows // inputs
        rows, which come together (the hypotheses of a beam search).
        `weights`: `step_weights()`, read once before a loop of steps (None:
        the step reads the model's variables itself). `output_bias`: for
        models that shortlist their outputs (`shortlists_outputs`), an
        optional float32 [inputs, outputs] added to each input's rows'
        scores before they are normalized (`add_per_input`): 0 where the
        input may write an output, -1e9 where it may not (each input's own
        shortlist, `decoding.generate`)."""
        raise NotImplementedError

    def step_factored(self, token_ids, state, context, weights=None):
        """`step` with its log-probabilities in factored form, for searches
        that read only each row's best outputs and need not write out the
        whole row (models whose `factors_log_probabilities`).

        Returns `(logits [rows, outputs], offsets [rows, 1], exception_ids
        int32 [rows, e], exception_scores [rows, e], state)`: the
        log-probability of output w in a row is `logits[w] + offset`,
        except for the row's exception ids, where it is their exception
        score, never below `logits[w] + offset` (an id listed twice: the
        first one's score; the others' are -1e9). So a row's k best are
        among its k + b best logits (b: how many outputs the search bans)
        and its exceptions."""
        raise NotImplementedError

    def step_weights(self, matmul_dtype=None, outputs=None):
        """The weights `step` reads, read once (and cast) for a loop of many
        steps; `matmul_dtype` "bfloat16" asks for bfloat16 matrix products
        in a float32 model. None (the default): the step reads its own.

        `outputs`: optional int32 [n], a sorted subset of the step's
        outputs that starts with the special ids 0-3 (a shortlist, see
        `decoding.LexicalShortlist`). The step then scores only these: its
        `log_probs` are [rows, n], normalized over them, and its
        `token_ids` count in positions of `outputs` too. Models that cannot
        restrict their outputs (`shortlists_outputs` False) raise
        ValueError (`check_shortlist`)."""
        self.check_shortlist(outputs)
        return None

    def check_shortlist(self, outputs):
        """Raises ValueError if `outputs` (a shortlist) is given to a model
        that cannot restrict its outputs (`shortlists_outputs` False)."""
        if outputs is not None and not self.shortlists_outputs:
            raise ValueError(f"{self.__class__.__name__} cannot restrict its outputs to a "
                             "shortlist")

    def length_limits(self, inputs, max_length):
        """int32 [batch]: the most tokens (end included) each output may have,
        at most `max_length`."""
        raise NotImplementedError

    def output_space(self):
        """What the step's outputs count, as a JSON-able dict: models with
        equal output spaces can be ensembled (`Ensemble`). By default, the
        model class."""
        return {"class": self.__class__.__name__}

    def output_ids(self, token_ids):
        """Decoded tokens -> the ids callers see (the identity by default)."""
        return token_ids

    def target_index(self, ids):
        """Label ids -> the positions logits count them in (the identity by
        default; the inverse of `output_ids` for labels)."""
        return ids

    @property
    def has_coverage(self):
        """Whether `coverage(state)` exists, for the search's coverage penalty."""
        return False

    def coverage(self, state):
        """float32 [rows, source]: attention summed over the steps so far."""
        raise ValueError(f"{self.__class__.__name__} keeps no attention coverage, "
                         "so it has no coverage penalty (beta must be 0)")

    @property
    def has_attention(self):
        """Whether `attention(state)` exists, for alignments."""
        return False

    def attention(self, state):
        """float32 [rows, source]: the attention of the step just taken."""
        raise ValueError(f"{self.__class__.__name__} has no attention over its source, "
                         "so it has no alignments")

    def source_mask(self, inputs):
        """bool [batch, source]: real (not padding) source positions."""
        raise ValueError(f"{self.__class__.__name__} has no source positions to mask")
