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
