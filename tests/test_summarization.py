"""Summaries of multi-line dialogues: CSV records whose cells span lines,
source truncation counted, ROUGE as the task's metric, trigram blocking,
and an export that takes a dialogue as a string with newlines."""

import csv
import random

import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq.metrics import repeated_ngram_rate

# Many names and places, each rarer than the words every dialogue shares, so
# that a vocabulary of those words (19) leaves them all to copying.
NAMES = ["Amanda", "Jerry", "Tom", "Ola", "Kasia", "Zbigniew", "Hannah", "Ruben", "Ines",
         "Marek", "Lucy", "Omar", "Greta", "Pavel", "Sofia", "Jonas", "Mia", "Karim", "Elena",
         "Bruno", "Ada", "Felix", "Nora", "Igor", "Lena", "Hugo", "Vera", "Emil", "Rosa", "Leo"]
PLACES = ["station", "office", "gym", "cinema", "park", "library", "bakery", "airport",
          "museum", "school", "garage", "harbour", "market", "pool", "theatre"]
VOCABULARY = 4 + 19  # specials + : I ' ll be at the pm ok , see you there great ) will . blah ⏎


def _dialogue(rng, long=False):
    first, second = rng.sample(NAMES, 2)
    place = rng.choice(PLACES)
    time = f"{rng.randrange(1, 12)} pm"
    turns = [f"{first}: I'll be at the {place} at {time}", f"{second}: ok, see you there",
             f"{first}: great :)"]
    if long:
        turns += [f"{second}: " + " ".join(["blah"] * 30)] * 3
    return "\n".join(turns), f"{first} will be at the {place} at {time}."


def _write_csv(path, count, rng, long_every=0):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "dialogue", "summary"])
        for i in range(count):
            dialogue, summary = _dialogue(rng, long=bool(long_every) and i % long_every == 0)
            writer.writerow([f"d{i}", dialogue, summary])
    return str(path)


@pytest.fixture(scope="module")
def summary_run(tmp_path_factory):
    from keras_seq2seq.export import export_saved_model
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import train
    from keras_seq2seq.zoo import recipe_from_dict

    folder = tmp_path_factory.mktemp("summaries")
    rng = random.Random(0)
    files = {split: _write_csv(folder / f"{split}.csv", count, rng, long_every)
             for split, count, long_every in (("train", 600, 10), ("val", 40, 0),
                                              ("test", 40, 0))}
    recipe = recipe_from_dict({
        "name": "tiny-summaries", "task": "text",
        "data": {split: {"file": path, "format": "csv", "source": "dialogue",
                         "target": "summary"} for split, path in files.items()},
        "tokenizer": {"type": "words", "vocabulary_size": VOCABULARY},
        "model": {"class": "pointer_generator", "units": 64, "embedding_dim": 32,
                  "attention": "coverage", "coverage_loss_weight": 1.0},
        # ROUGE-1 and -2 read 100 after 2 epochs as after 6 (3: CI time).
        "training": {"batch_size": 16, "epochs": 3, "learning_rate": 0.01,
                     "max_source_length": 48, "truncate_source": True,
                     "max_target_length": 20},
        "decoding": {"beam_size": 3, "alpha": 1.0, "no_repeat_ngram_size": 3},
        "metric": "rouge",
    })
    task = task_for(recipe)
    result = train(task, str(folder / "run"), verbose=0)
    # Unchecked (the clean-process check is tested in test_export.py): CI time.
    export = export_saved_model(result.exportable, str(folder / "export"), check=False)
    return task, result, export, task.evaluate(result.exportable)


def test_long_dialogues_are_truncated_and_counted(summary_run):
    task, _, _, _ = summary_run
    sources = open(task.paths["train"][0], encoding="utf-8").read().splitlines()
    lengths = task.tokenizer.tokenize(tf.constant(sources)).row_lengths().numpy() + 1
    long = int((lengths > 48).sum())
    assert long == 60
    assert f"Truncating {long} sources over 48 tokens (of 600 train pairs)" in task.notes()


def test_rouge_is_the_metric_and_copies_score(summary_run):
    task, _, _, scores = summary_run
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "novel_bigrams", "repeated_trigrams",
            "mean_words"} <= set(scores)
    # Names, places and times the vocabulary lacks can only be copied.
    assert scores["rouge1"] > 60 and scores["rouge2"] > 40, scores
    assert "ROUGE-1" in task.describe(scores)


def test_export_takes_dialogues_with_newlines_and_blocks_repeated_trigrams(summary_run):
    _, _, export, _ = summary_run
    loaded = tf.saved_model.load(export).signatures
    serve = loaded["serving_default"]
    dialogue = "Ruben: I'll be at the cinema at 7 pm\nOla: ok, see you there\nRuben: great :)"
    out = serve(text=tf.constant([dialogue, dialogue.replace("\n", " ⏎ ")]))["translation"]
    first, marked = (t.decode() for t in out.numpy())
    assert first == marked and "Ruben" in first and "cinema" in first
    huge = "Tom: " + " ".join(["blah"] * 20_000)
    texts = serve(text=tf.constant(["", huge, "\n\n"]))["translation"].numpy()
    assert len(texts) == 3
    beams = loaded["beam_search"](text=tf.constant([huge]))
    for text in beams["translations"].numpy()[0]:
        assert repeated_ngram_rate([text.decode()], 3) == 0.0


def test_trigram_blocking_is_a_setting_of_the_export(summary_run):
    _, result, _, _ = summary_run
    assert result.exportable.settings["no_repeat_ngram_size"] == 3
    assert np.isfinite(result.exportable.serving_default(
        tf.constant(["Tom: hi"]))["score"].numpy()).all()


def test_copying_is_drawn_with_the_generation_probability(summary_run, tmp_path):
    from PIL import Image

    from keras_seq2seq.plots import plot_copying

    _, result, _, _ = summary_run
    translator = result.exportable
    dialogue = "Zbigniew: I'll be at the gym at 5 pm\nHannah: ok, see you there\nZbigniew: great :)"
    pieces, p_gen = plot_copying(translator, dialogue, str(tmp_path / "copying.png"))
    assert len(pieces) == len(p_gen) and pieces[-1] == "</s>"
    assert Image.open(tmp_path / "copying.png").size[0] > 100
    # Names and places lie outside the vocabulary: written by copying, with a
    # lower p_gen than "will", which the summaries have and the dialogues lack.
    # (A word in both, "the", may be copied as well as generated.)
    assert not set(translator.tokenizer.words) & set(NAMES + PLACES)
    copied = [p for piece, p in zip(pieces, p_gen) if piece in ("Zbigniew", "gym")]
    generated = [p for piece, p in zip(pieces, p_gen) if piece == "will"]
    assert len(copied) == 2 and generated and max(copied) < 0.5 < generated[0], \
        list(zip(pieces, p_gen))


# -- responses: conversations in, the next turn out ------------------------------------


@pytest.mark.slow  # 24 epochs to learn replies (about 50 s): CI time
def test_conversations_train_a_response_model_scored_by_beam_search_and_sampling(tmp_path):
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import train
    from keras_seq2seq.zoo import recipe_from_dict

    rng = random.Random(1)
    files = {}
    for split, count in (("train", 300), ("val", 30), ("test", 30)):
        lines = []
        for _ in range(count):
            name, place = rng.choice(NAMES), rng.choice(PLACES)
            lines.append(f" Hi , I am {name} . __eou__ Hello {name} ! __eou__ "
                         f"Where is the {place} ? __eou__ The {place} is near . __eou__")
        files[split] = tmp_path / f"dialogues_{split}.txt"
        files[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = recipe_from_dict({
        "name": "tiny-responses", "task": "text",
        "data": {split: {"file": str(path), "format": "turns", "context_turns": 2}
                 for split, path in files.items()},
        "tokenizer": {"type": "sentencepiece", "vocabulary_size": 320},
        # 32 units sat on the unigram plateau (loss 3.3) for as many epochs as
        # the seed and the batches' order made it, writing empty or one-token
        # replies to every context (no bigrams to count) when early stopping
        # ended the run there: seeds 0 and 2 with the training pairs shuffled
        # after tokenization. 64 units leave it in the second epoch and
        # learned replies on seeds 0, 1 and 2 (24 epochs).
        "model": {"class": "attention_seq2seq", "units": 64, "embedding_dim": 16},
        "training": {"batch_size": 32, "epochs": 24, "learning_rate": 0.01,
                     "max_target_length": 16},
        "decoding": {"beam_size": 3},
        "metric": "response",
    })
    task = task_for(recipe)
    result = train(task, str(tmp_path / "run"), verbose=0)
    sources = open(task.paths["test"][0], encoding="utf-8").read().splitlines()
    assert len(sources) == 90 and "⏎" in sources[1]  # 3 responses a conversation
    scores = task.evaluate(result.exportable)
    for key in ("beam", "sampled"):
        assert 0 <= scores[f"bleu1_{key}"] <= 100 and 0 <= scores[f"bleu2_{key}"] <= 100
        assert 0 < scores[f"distinct1_{key}"] <= 1 and 0 < scores[f"distinct2_{key}"] <= 1
    assert "sampled (top_p 0.9, seed 0)" in task.describe(scores)
    # Sampling varies what beam search says the same way every time.
    assert scores["distinct2_sampled"] > scores["distinct2_beam"]
