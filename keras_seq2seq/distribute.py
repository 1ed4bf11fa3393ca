"""Training on several devices and machines with tf.distribute.

    strategy = distribution_strategy("multi_worker")   # first, before other TF work
    with strategy.scope():
        model = ...; model.compile(...)
    model.fit(shard_batches(dataset, strategy), ...)

Keras 3.15 cannot `fit` under `MultiWorkerMirroredStrategy` as it is
(keras-team/keras#20585): `MultiWorkerFitFixes` works around its two faults,
and the package's models include it.
"""

import os

import tensorflow as tf


def distribution_strategy(name="default"):
    """A `tf.distribute` strategy by name.

    Args:
        name: `"default"` (one device), `"mirrored"` (every GPU of this
            machine, or its CPU) or `"multi_worker"` (`MultiWorkerMirroredStrategy`,
            the cluster and this process' role read from `TF_CONFIG`).

    Create it before any other TensorFlow work: the multi-worker strategy
    must configure the runtime's collectives first.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multi_worker reads the cluster from the TF_CONFIG environment "
                "variable, which is not set (see the README's 'Training on several machines')")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multi_worker")


def is_chief(strategy):
    """Whether this process writes checkpoints, logs and exports: always,
    except for the workers of a multi-worker cluster other than the chief
    (task `chief`, or `worker` 0 in a cluster without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_dir(strategy, work_dir):
    """The chief writes to `work_dir`; any other worker to a folder of its own
    inside it (its backups must outlive a restart, its logs go nowhere else)."""
    if is_chief(strategy):
        return work_dir
    resolver = strategy.cluster_resolver
    return os.path.join(work_dir, f"{resolver.task_type}-{resolver.task_id}")


def shard_batches(dataset, strategy):
    """Shards by batch across workers (one text file cannot be sharded by file)."""
    if strategy.num_replicas_in_sync == 1 and is_chief(strategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _in_multi_worker_mode(strategy):
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


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
