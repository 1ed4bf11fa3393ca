"""`training.fit`: what it hands to Keras."""

import tensorflow as tf

from keras_seq2seq import training


class _RecordingModel:
    """Stands in for a `keras.Model`: `fit` records its inputs."""

    def fit(self, x, validation_data=None, **kwargs):
        self.x, self.validation_data = x, validation_data


def test_fit_hands_keras_the_same_batches_with_autotuning_off():
    """Keras drops an iterator at every epoch and validation; with autotuning
    on, TensorFlow waits for the iterator's autotuning thread to wake (up to
    60 s), so `fit` turns it off (see `without_autotuning`)."""
    batches = tf.data.Dataset.range(10).map(lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE)
    batches = batches.batch(3).prefetch(tf.data.AUTOTUNE)
    assert batches.options().autotune.enabled is not False

    model = _RecordingModel()
    training.fit(model, batches, batches, epochs=1, callbacks=[], verbose=0)
    for dataset in (model.x, model.validation_data):
        assert dataset.options().autotune.enabled is False
        assert [b.tolist() for b in dataset.as_numpy_iterator()] == [
            [0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]

    training.fit(model, batches, None, epochs=1, callbacks=[], verbose=0)
    assert model.validation_data is None
