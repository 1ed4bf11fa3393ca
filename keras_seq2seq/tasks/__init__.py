"""Tasks: a recipe's inputs, preprocessing, model, metrics and exportable.

    task = task_for(load_recipe("dates-attention"))
    training.train(task, "runs/dates")      # the same function for every task
"""

from keras_seq2seq.tasks.base import Task
from keras_seq2seq.tasks.reading import ImageTextTask, ReadingTask, SpeechTextTask
from keras_seq2seq.tasks.points import PointsTask
from keras_seq2seq.tasks.text import TextTask, translate_file, translate_texts

TASKS = {"text": TextTask, "points": PointsTask, "image": ImageTextTask,
         "speech": SpeechTextTask}


def task_for(recipe, init_from=None):
    """The task a recipe names (`task: text | points | image | speech`)."""
    return TASKS[recipe.task](recipe, init_from=init_from)


__all__ = ["ImageTextTask", "PointsTask", "ReadingTask", "SpeechTextTask", "TASKS", "Task", "TextTask", "task_for", "translate_file",
           "translate_texts"]
