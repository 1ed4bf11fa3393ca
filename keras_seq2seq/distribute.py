"""Training on several devices and machines with tf.distribute.

    strategy = distribution_strategy("multi_worker")   # first, before other TF work
    with strategy.scope():
        model = ...; model.compile(...)
    model.fit(shard_batches(dataset, strategy), ...)

Keras 3.15 cannot `fit` under `MultiWorkerMirroredStrategy` as it is
(keras-team/keras#20585): `models.base.MultiWorkerFitFixes` works around its
two faults, and every model of the package includes it.
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
    if on_one_machine(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def on_one_machine(strategy):
    """Whether every replica of `strategy` is in this process (no
    multi-worker cluster), so that one clock decides for all of them."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is None or not resolver.task_type


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
