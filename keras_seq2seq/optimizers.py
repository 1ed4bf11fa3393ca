"""Optimizers."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, each dense update one fused TensorFlow kernel.

    Keras' Adam updates a variable with about ten separate ops; TensorFlow's
    `ResourceApplyAdam` kernel (the one `tf.compat.v1.train.AdamOptimizer`
    uses) applies the same formula in one pass over the variable, which on
    CPU halves the optimizer's share of a training step. Sparse gradients
    (`tf.IndexedSlices`) and AMSGrad take Keras' own path. Takes the arguments
    of `keras.optimizers.Adam`; its variables, and so its checkpoints, are
    Adam's.

    Example:

    >>> model.compile(optimizer=FusedAdam(1e-3, global_clipnorm=5.0), loss=...)
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        dtype = variable.dtype

        def handle(v):
            # Keras variables hold a tf.Variable; under tf.distribute, the
            # component on the device being updated.
            return (v.value if isinstance(v, keras.Variable) else v).handle

        def constant(x):
            return tf.cast(x, dtype)

        step = constant(self.iterations + 1)
        tf.raw_ops.ResourceApplyAdam(
            var=handle(variable),
            m=handle(self._momentums[index]),
            v=handle(self._velocities[index]),
            beta1_power=tf.pow(constant(self.beta_1), step),
            beta2_power=tf.pow(constant(self.beta_2), step),
            lr=constant(learning_rate),
            beta1=constant(self.beta_1),
            beta2=constant(self.beta_2),
            epsilon=constant(self.epsilon),
            grad=constant(gradient),
        )


@keras.saving.register_keras_serializable(package="keras_seq2seq")
class ShortenableCosineDecay(keras.optimizers.schedules.CosineDecay):
    """`keras.optimizers.schedules.CosineDecay` whose length can be cut short
    while training runs (`training.TimeBudget` fits it into a time budget).

    Keras' `CosineDecay` reads `decay_steps` as a constant of the traced
    training step; here it is a variable, so that `end_at` takes effect
    at the next step, without tracing again. The learning rate then follows
    the cosine over the new length: a schedule cut from 8,000 to 6,000 steps
    at step 2,000 moves there from 86% to 76% of its initial rate and reaches
    its floor (`alpha`, 5% say) at step 6,000, where the 8,000-step schedule
    would still be at 19%.

    Args:
        initial_learning_rate, decay_steps, alpha, name, warmup_target,
            warmup_steps: as `CosineDecay`'s; `decay_steps` is the longest
            the schedule runs.

    Example:

    >>> schedule = ShortenableCosineDecay(1e-3, decay_steps=100, alpha=0.05)
    >>> schedule.end_at(50)
    >>> round(float(schedule(50)), 5), schedule.steps
    (5e-05, 50)
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        super().__init__(initial_learning_rate, decay_steps, alpha=alpha, name=name,
                         warmup_target=warmup_target, warmup_steps=warmup_steps)
        self.longest = int(decay_steps)
        # Under a distribution strategy's scope, one copy a replica, each
        # assigned the same value from the callback.
        self.decay_steps = tf.Variable(float(decay_steps), trainable=False, dtype=tf.float32,
                                       name="decay_steps")

    @property
    def steps(self):
        """The step at which the decay reaches its floor, as it stands now."""
        return int(self.decay_steps.numpy())

    def end_at(self, step):
        """Ends the decay at `step` (at least 1, at most `decay_steps` as
        constructed), sooner or later than it ended before."""
        self.decay_steps.assign(float(min(max(int(step), 1), self.longest)))

    def get_config(self):
        return dict(super().get_config(), decay_steps=self.steps)
