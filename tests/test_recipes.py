"""Recipes as files, their checks, training on your own files, fine-tuning,
and the run folder's refusals."""

import gzip
import json
import os
import platform
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

import keras_seq2seq
from keras_seq2seq import cli
from keras_seq2seq.data import generate_date_pairs
from keras_seq2seq.data.records import iter_records
from keras_seq2seq.errors import RecipeError, RunFolderError
from keras_seq2seq.export import RunFolder
from keras_seq2seq.zoo import builtin_names, load_recipe, recipe_from_dict

# A small model that learns dates in seconds.
SMALL_MODEL = {"class": "attention_seq2seq", "embedding_dim": 32, "units": 64,
               "attention": "luong_general", "input_feeding": False}


def _write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return str(path)


def _date_files(folder, seed, counts=(1500, 200, 200)):
    """Date pairs in parallel files with names a user might pick."""
    names = {}
    for split, count, offset in zip(("train", "val", "test"), counts, (0, 1, 2)):
        pairs = generate_date_pairs(count, seed=seed * 10 + offset)
        names[split] = (_write_lines(os.path.join(folder, f"{split}-written.txt"), [p[0] for p in pairs]),
                        _write_lines(os.path.join(folder, f"{split}-iso.txt"), [p[1] for p in pairs]))
    return names


def _run_cli(args, cwd):
    """The command line in a fresh process: (exit status, stdout, stderr)."""
    result = subprocess.run([sys.executable, "-m", "keras_seq2seq.cli", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=900)
    return result.returncode, result.stdout, result.stderr


# -- the built-in recipes are files ------------------------------------------------------


def test_every_builtin_recipe_loads_and_show_prints_a_file_that_loads_back(tmp_path, capsys):
    names = builtin_names()
    assert {"dates-attention", "multi30k-de-en-attention", "multi30k-en-de-attention",
            "multi30k-de-en-pointer-generator", "convex-hull-5", "convex-hull-10", "tsp-5",
            "tsp-10", "digit-strings-image", "spoken-digit-strings", "samsum-pointer-generator",
            "samsum-attention", "dailydialog-response"} <= set(names)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train", "val", "test_2016_flickr"):
        for side in ("de", "en"):
            with gzip.open(data / f"{name}.{side}.gz", "wt") as f:
                f.write("x\n")
    for name in ("digits-images-idx3-ubyte.gz", "digits-labels-idx1-ubyte.gz"):
        (data / name).write_bytes(b"")
    (data / "recordings").mkdir()
    for name in ("train.csv.gz", "validation.csv.gz", "test.csv.gz",
                 "dialogues_train.txt.gz", "dialogues_validation.txt.gz",
                 "dialogues_test.txt.gz"):
        (data / name).write_bytes(b"")
    for name in names:
        recipe = load_recipe(name, data_dir=str(data))
        assert recipe.name == name
        assert cli.main(["zoo", "--show", name]) == 0
        copy = tmp_path / f"{name}.yaml"
        copy.write_text(capsys.readouterr().out)
        again = load_recipe(str(copy), data_dir=str(data))
        assert again.identity() == recipe.identity()


def test_zoo_and_help_do_not_import_tensorflow():
    code = ("import sys\nfrom keras_seq2seq import cli\ncli.main(['zoo'])\n"
            "try:\n    cli.main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\nprint('clean')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr[-2000:]
    assert "dates-attention" in result.stdout and "--init-from" in result.stdout


ASKS_FOR_ONEDNN_HERE = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="oneDNN is asked for on x86-64 only")


def _onednn_in_a_fresh_process(code, user_choice):
    """What `code` (Python that prints) prints, then whether TensorFlow runs
    oneDNN's kernels, in a process whose TF_ENABLE_ONEDNN_OPTS is `user_choice`."""
    code += ("\nfrom tensorflow.python.util import _pywrap_util_port\n"
             "print(_pywrap_util_port.IsMklEnabled())")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_choice is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_choice
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


@ASKS_FOR_ONEDNN_HERE
@pytest.mark.parametrize("user_choice, expected", [(None, ["None", "True", "True"]),
                                                    ("0", ["0", "False", "False"]),
                                                    ("TRUE", ["TRUE", "True", "True"])])
def test_training_asks_for_onednn_unless_the_user_chose(user_choice, expected):
    # The import alone changes nothing; the call does, unless the user chose.
    printed = _onednn_in_a_fresh_process(
        "import os, keras_seq2seq\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), keras_seq2seq.prefer_onednn_kernels())\n"
        "import tensorflow", user_choice)
    assert printed == expected


@ASKS_FOR_ONEDNN_HERE
def test_the_train_command_asks_for_onednn_and_translate_leaves_tensorflows_choice():
    # TensorFlow's own choice: on by itself on CPUs with AVX-512 VNNI, BF16 or AMX.
    [tensorflows_choice] = _onednn_in_a_fresh_process("", None)
    # Each command fails on its argument after starting TensorFlow.
    for command, expected in ((["train", "--recipe", "no-such-recipe"], "True"),
                              (["translate", "--model", "no-such-export"], tensorflows_choice)):
        printed = _onednn_in_a_fresh_process(
            f"from keras_seq2seq import cli\nprint(cli.main({command!r}))", None)
        assert printed == ["2", expected], command


# -- bad recipes fail before training, in one line -------------------------------------


def _recipe_file(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
name: mine
task: text
data:
  train: {source: train.src, target: train.tgt}
  val: {source: train.src, target: train.tgt}
tokenizer: {type: sentencepiece, vocabulary_size: 300}
model: {class: attention_seq2seq, units: 16}
training: {epochs: 1}
"""


@pytest.mark.parametrize("change, message", [
    (("training: {epochs: 1}", "trainig: {epochs: 1}"),
     "line 8: trainig: unknown key (did you mean 'training'?)"),
    (("training: {epochs: 1}", "training: {epochs: 1, batchsize: 8}"),
     "training.batchsize: unknown key (did you mean 'batch_size'?)"),
    (("training: {epochs: 1}", "training: {epochs: ten}"),
     "training.epochs: expected int, got 'ten'"),
    (("training: {epochs: 1}", "training: {epochs: 1, ema_momentum: 1.5}"),
     "training.ema_momentum: must be in (0, 1), got 1.5"),
    (("training: {epochs: 1}", "training: {epochs: 1, weight_decay: -0.1}"),
     "training.weight_decay: must be in [0, 1), got -0.1"),
    (("training: {epochs: 1}", "training: {epochs: 1, batch_tokens: 50}"),
     "training.batch_tokens: must hold the longest pair the length limits let in (100 tokens), "
     "got 50"),
    (("training: {epochs: 1}", "training: {epochs: 1, schedule: cosin}"),
     "training.schedule: 'cosin' is not one of constant, cosine (did you mean 'cosine'?)"),
    (("train.src, target: train.tgt}\n  val", "missing.src, target: train.tgt}\n  val"),
     "data.train.source: "),
    (("model: {class: attention_seq2seq, units: 16}", "model: {class: attention_seq2seq, unitz: 16}"),
     "model.unitz: AttentionSeq2Seq has no option 'unitz' (did you mean 'units'?)"),
    (("model: {class: attention_seq2seq, units: 16}",
      "model: {class: attention_seq2seq, vocabulary_size: 16}"),
     "model.vocabulary_size: AttentionSeq2Seq has no option 'vocabulary_size' (the task sets it)"),
    (("model: {class: attention_seq2seq, units: 16}", "model: {class: transformer}"),
     "model.class: unknown model 'transformer'"),
    (("model: {class: attention_seq2seq, units: 16}",
      "model: {class: attention_seq2seq, attention: luong_genral}"),
     "model: unknown attention"),
    (("model: {class: attention_seq2seq, units: 16}",
      "model: {class: attention_seq2seq, attention: location_sensitive, "
      "attention_options: {filter: 8}}"),
     "model: attention_options: 'location_sensitive' attention has no option 'filter'; "
     "it takes cumulative, filters, kernel_size"),
    (("tokenizer: {type: sentencepiece, vocabulary_size: 300}",
      "tokenizer: {type: characters, vocabulary_size: 8000}"),
     "tokenizer.vocabulary_size: a characters tokenizer's vocabulary is the characters"),
    (("task: text", "task: text\n  oops: [unclosed"), "not valid YAML"),
    (("vocabulary_size: 300", "vocabulary_size: 40"),
     "tokenizer.vocabulary_size: vocab_size 40 is too small"),
    (("training: {epochs: 1}", "training: {epochs: 1}\nexport: {parallel_searches: 0}"),
     "export.parallel_searches: must be at least 1, got 0"),
    (("training: {epochs: 1}", "training: {epochs: 1}\nexport: {shortlist: -1}"),
     "export.shortlist: must be at least 0, got -1"),
    (("model: {class: attention_seq2seq, units: 16}\ntraining: {epochs: 1}",
      "model: {class: pointer_generator, units: 16}\ntraining: {epochs: 1}\n"
      "export: {shortlist: 10}"),
     "export.shortlist: a PointerGenerator cannot restrict its outputs to a shortlist"),
])
def test_a_bad_recipe_is_one_line_naming_the_key_and_exit_status_2(tmp_path, capsys, change,
                                                                   message):
    (tmp_path / "train.src").write_text("a b\n")
    (tmp_path / "train.tgt").write_text("b a\n")
    path = _recipe_file(tmp_path, GOOD.replace(*change))
    code = cli.main(["train", "--config", str(path), "--work-dir", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]
    assert str(path) in lines[0]
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_bad_recipe_in_a_fresh_process_prints_no_traceback(tmp_path):
    path = _recipe_file(tmp_path, GOOD.replace("epochs: 1", "epochs: 1, batchsize: 8"))
    code, out, err = _run_cli(["train", "--config", str(path)], tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines() == [
        f"error: {path}, line 8: training.batchsize: unknown key (did you mean 'batch_size'?)"]


def test_the_good_recipe_is_good_and_its_paths_resolve_against_its_folder(tmp_path):
    (tmp_path / "train.src").write_text("a b\n")
    (tmp_path / "train.tgt").write_text("b a\n")
    recipe = load_recipe(str(_recipe_file(tmp_path, GOOD)))
    assert recipe.data["train"]["source"] == str(tmp_path / "train.src")
    assert recipe.training["batch_size"] == 64  # defaults filled in


def test_a_builtin_recipe_that_reads_files_asks_for_data():
    with pytest.raises(RecipeError, match="give --data DIR"):
        load_recipe("multi30k-de-en-attention")
    with pytest.raises(RecipeError, match="did you mean 'tsp-10'"):
        load_recipe("tsp-01")


# -- run folders -----------------------------------------------------------------------


def test_run_folders_that_are_not_this_recipes_run_are_refused(tmp_path):
    recipe = load_recipe("dates-attention").identity()
    other = load_recipe("convex-hull-5").identity()
    fresh = RunFolder(tmp_path / "fresh")
    assert fresh.claim(recipe) is False and fresh.claim(recipe) is True  # resumable
    with pytest.raises(RunFolderError, match="another recipe"):
        fresh.claim(other)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not a keras-seq2seq run folder"):
        RunFolder(foreign).claim(recipe)
    old = tmp_path / "old"
    old.mkdir()
    (old / "translator.json").write_text("{}")
    (old / "model.keras").write_text("")
    with pytest.raises(RunFolderError, match="older keras-seq2seq layout"):
        RunFolder(old).claim(recipe)
    with pytest.raises(RunFolderError, match="older keras-seq2seq layout"):
        RunFolder(old).load()
    assert (foreign / "notes.txt").read_text() == "mine"  # nothing overwritten
    code = cli.main(["train", "--recipe", "dates-attention", "--work-dir", str(old)])
    assert code == 2


# -- record files ----------------------------------------------------------------------


def test_record_readers_read_tsv_csv_and_jsonl_plain_or_gzipped(tmp_path):
    pairs = [("ein Hund", "a dog"), ('sagt "hallo", dann', "says 'hello', then")]
    tsv = tmp_path / "pairs.tsv.gz"
    with gzip.open(tsv, "wt", encoding="utf-8") as f:
        f.write("".join(f"{i}\t{s}\t{t}\n" for i, (s, t) in enumerate(pairs)))
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text('de,en\n"ein Hund","a dog"\n"sagt ""hallo"", dann","says \'hello\', then"\n',
                        encoding="utf-8")
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps({"de": s, "en": t}) + "\n" for s, t in pairs))
    for path, fmt, source, target in ((tsv, "tsv", 1, 2), (csv_path, "csv", "de", "en"),
                                      (jsonl, "jsonl", "de", "en")):
        assert [(s, t) for _, s, t in iter_records(str(path), fmt, source, target)] == pairs


def test_multi_line_cells_keep_their_line_breaks_as_a_mark(tmp_path):
    from keras_seq2seq.data.records import write_parallel_files

    path = tmp_path / "dialogues.csv"
    path.write_text('id,dialogue,summary\n1,"Ann: hi\r\nBob: hello\nAnn: bye\n",Ann greets Bob.\n'
                    '2,"Tom: late, sorry",Tom is late.\n', encoding="utf-8")
    spec = {"file": str(path), "format": "csv", "source": "dialogue", "target": "summary"}
    source, target = write_parallel_files(spec, str(tmp_path / "out"), "train")
    assert open(source, encoding="utf-8").read().splitlines() == [
        "Ann: hi ⏎ Bob: hello ⏎ Ann: bye", "Tom: late, sorry"]
    assert open(target, encoding="utf-8").read().splitlines() == ["Ann greets Bob.",
                                                                  "Tom is late."]


@pytest.mark.parametrize("fmt, text, source, target, message", [
    ("tsv", "a\tb\nc\n", 0, 1, "row 2 (ending on line 2): 1 column(s)"),
    ("csv", 'id,dialogue,summary\n1,"A: hi\nB: yo",greeting\n2,"A: x\nB: y"\n', "dialogue",
     "summary", "row 3 (ending on line 5): 2 column(s)"),
    ("csv", "de,en\nx,y\n", "de", "fr", "row 1 (header): no column 'fr'"),
    ("csv", 'de,en\n"x,y\n', "de", "en", "malformed"),
    ("jsonl", '{"de": "x", "en": "y"}\n{"de": "x"\n', "de", "en", "line 2: not a JSON object"),
    ("jsonl", '{"de": "x", "en": "y"}\n{"de": "x"}\n', "de", "en", "line 2: no field 'en'"),
])
def test_a_bad_record_names_the_file_and_row(tmp_path, fmt, text, source, target, message):
    from keras_seq2seq.data import DataError

    path = tmp_path / f"bad.{fmt}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)) as error:
        list(iter_records(str(path), fmt, source, target))
    assert str(path) in str(error.value)


def test_bad_records_can_be_skipped_and_counted(tmp_path):
    from keras_seq2seq.data import DataError

    path = tmp_path / "dialogues.csv"
    path.write_text('id,dialogue,summary\n1,"A: hi\nB: yo",greeting\n2,"A: x\nB: y"\n'
                    '3,"A: bye",farewell\n', encoding="utf-8")
    skipped = []
    records = list(iter_records(str(path), "csv", "dialogue", "summary", skipped))
    assert [(s, t) for _, s, t in records] == [("A: hi\nB: yo", "greeting"),
                                                ("A: bye", "farewell")]
    assert len(skipped) == 1 and "row 3 (ending on line 5)" in skipped[0]
    # A quote never closed leaves nothing to resynchronise on: always an error.
    path.write_text('id,dialogue,summary\n1,"A: hi\nB: yo,greeting\n', encoding="utf-8")
    with pytest.raises(DataError, match="malformed"):
        list(iter_records(str(path), "csv", "dialogue", "summary", []))


# -- training on your own files ---------------------------------------------------------


@pytest.fixture(scope="module")
def own_data_run(tmp_path_factory):
    """`train --train ... --val ... --test ... --like dates-attention`, on
    files with names of the user's choosing, in a fresh process."""
    work = tmp_path_factory.mktemp("own")
    # A small run (CI time): its tests read what it writes and start from it,
    # none reads how well it learned. Its export is unchecked (CI time): the
    # quickstart's test checks the same model's export in a clean process.
    files = _date_files(str(work / "my corpus"), seed=1, counts=(1000, 100, 100))
    code, out, err = _run_cli([
        "train", "--train", *files["train"], "--val", *files["val"], "--test", *files["test"],
        "--like", "dates-attention", "--epochs", "2", "--export-dir", "exports/my-dates",
        "--no-tensorboard", "--no-check"], work)
    assert code == 0, err[-3000:]
    return work, files, out


def test_own_files_train_report_the_held_out_metric_and_export(own_data_run):
    work, files, out = own_data_run
    assert "Held-out exact match, test (" in out and files["test"][0] in out
    assert (work / "exports" / "my-dates" / "1" / "saved_model.pb").exists()
    recipe = RunFolder(work / "runs" / "my-dates").recipe
    assert recipe["name"] == "my-dates" and recipe["data"]["train"]["source"] == files["train"][0]
    assert recipe["model"] == load_recipe("dates-attention").model


def test_own_files_take_the_multi30k_recipe_by_default(tmp_path):
    """`--train` without `--like`: the Multi30k recipe's model and settings,
    though that recipe's own files are nowhere near."""
    files = _date_files(str(tmp_path), seed=3, counts=(5, 5, 5))
    args = cli.build_parser().parse_args(
        ["train", "--train", *files["train"], "--val", *files["val"],
         "--export-dir", "exports/captions"])
    recipe = cli._recipe_of(args, None)
    assert recipe.name == "captions" and recipe.data["train"]["source"] == files["train"][0]
    assert recipe.data["test"] is None and recipe.data["augment"] is None
    assert recipe.identity()["model"] == load_recipe(cli.DEFAULT_LIKE, resolve_data=False).model


def test_fine_tuning_keeps_the_tokenizer_and_lowers_the_loss_on_new_data(own_data_run, tmp_path):
    """`--init-from` a run: same tokenizer file, the run's weights as the
    start, and after training the new data's validation loss is lower than
    the starting model's."""
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import train

    work, _, _ = own_data_run
    start = work / "runs" / "my-dates"
    # New data: the same task, other dates, with a new ending to learn
    # ("... (ISO)") that the first run never saw.
    new = _date_files(str(tmp_path / "new"), seed=7, counts=(1500, 200, 200))
    for split in ("train", "val"):
        lines = open(new[split][1], encoding="utf-8").read().splitlines()
        _write_lines(new[split][1], [line + " iso" for line in lines])
    recipe = load_recipe("dates-attention").on_files(new["train"], new["val"], name="tuned")
    recipe = recipe.replace(training={"epochs": 2})
    task = task_for(recipe, init_from=str(start))
    result = train(task, str(tmp_path / "tuned"), verbose=0,
                   callback_options=dict(tensorboard=False, patience=0, best_checkpoint=False))
    assert (tmp_path / "tuned" / "tokenizer.model").read_bytes() == \
        (start / "tokenizer.model").read_bytes()
    before = keras_seq2seq.load_model(str(start / "model.keras"))
    before.compile(loss=keras_seq2seq.SequenceCrossEntropy())
    after = result.exportable.model
    after.compile(loss=keras_seq2seq.SequenceCrossEntropy())
    _, val = task.datasets()
    loss_after = after.evaluate(val, verbose=0, return_dict=True)["loss"]
    loss_before = before.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert loss_after < 0.7 * loss_before, (loss_before, loss_after)
    np.testing.assert_equal(after.get_config()["units"], before.get_config()["units"])


def test_average_last_makes_the_runs_model_the_mean_of_its_last_epochs(tmp_path, capsys):
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import epoch_checkpoints, train

    files = _date_files(str(tmp_path / "data"), seed=5, counts=(600, 100, 100))
    recipe = load_recipe("dates-attention").on_files(files["train"], files["val"], name="avg")
    recipe = recipe.replace(training={"epochs": 3, "average_last": 2})
    work = str(tmp_path / "run")
    result = train(task_for(recipe), work, verbose=0,
                   callback_options=dict(tensorboard=False, patience=0, best_checkpoint=False))
    kept = epoch_checkpoints(os.path.join(work, "checkpoints"))
    assert [os.path.basename(p) for p in kept] == ["epoch-002.weights.h5", "epoch-003.weights.h5"]
    model = RunFolder(work).load().model
    each = []
    for path in kept:
        model.load_weights(path)
        each.append(model.get_weights())
    saved = RunFolder(work).load().model.get_weights()
    for got, second, third, trained in zip(saved, *each, result.exportable.model.get_weights()):
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, (second + third) / 2, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(trained, got, rtol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(*each))
    assert cli.main(["average", "--run", work, "--last", "3"]) == 2
    assert "keeps 2 epoch checkpoint(s)" in capsys.readouterr().err


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Fails training after epoch 1's callbacks (its backup) have run, as a kill would."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_weight_decay_shrinks_kernels_and_embeddings_not_biases(tmp_path):
    from keras_seq2seq.tasks import task_for

    files = _date_files(str(tmp_path / "data"), seed=5, counts=(200, 50, 50))
    recipe = load_recipe("dates-attention").on_files(files["train"], files["val"], name="decay")
    recipe = recipe.replace(training={"weight_decay": 0.1, "learning_rate": 0.01,
                                      "schedule": "constant"})
    task = task_for(recipe)
    task.prepare(str(tmp_path / "run"))
    model = task.build_model(total_steps=10)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    # A zero gradient moves no weight through Adam: what changes is the decay.
    model.optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for v in model.trainable_variables:
        shrink = 1.0 if v.path.endswith("/bias") else 1 - 0.01 * 0.1
        np.testing.assert_allclose(v.numpy(), before[v.path] * shrink, rtol=1e-6, err_msg=v.path)


def test_ema_momentum_trains_validates_checkpoints_and_resumes_the_average(tmp_path):
    from keras_seq2seq.tasks import task_for
    from keras_seq2seq.training import train

    files = _date_files(str(tmp_path / "data"), seed=5, counts=(600, 100, 100))
    recipe = load_recipe("dates-attention").on_files(files["train"], files["val"], name="ema")
    recipe = recipe.replace(training={"epochs": 2, "average_last": 1, "ema_momentum": 0.9})
    work = str(tmp_path / "run")
    # Early stopping on (it restores its best epoch at the end of every run).
    options = dict(tensorboard=False, patience=5)
    with pytest.raises(KeyboardInterrupt):
        train(task_for(recipe), work, verbose=0, callback_options=options,
              extra_callbacks=[_StopAfterFirstEpoch()])
    # The backup holds the training weights, and their average apart; the
    # epoch's checkpoints hold the average.
    task = task_for(recipe).prepare(work, strategy=tf.distribute.get_strategy())
    interrupted = task.build_model(total_steps=1)
    interrupted.optimizer.build(interrupted.trainable_variables)
    interrupted.load_weights(os.path.join(work, "backup", "latest.weights.h5"))
    average = [v.numpy() for v in interrupted.optimizer._model_variables_moving_average]
    trained = [v.numpy() for v in interrupted.trainable_variables]
    assert not all(np.allclose(a, t) for a, t in zip(average, trained))
    interrupted.load_weights(os.path.join(work, "checkpoints", "epoch-001.weights.h5"))
    for checkpointed, a in zip(interrupted.trainable_variables, average):
        np.testing.assert_allclose(checkpointed.numpy(), a, rtol=1e-6)

    result = train(task_for(recipe), work, verbose=0, callback_options=options)
    assert len(result.history.history["val_loss"]) == 1  # resumed at epoch 2
    model = RunFolder(work).load().model
    saved = model.get_weights()
    model.load_weights(os.path.join(work, "checkpoints", "best.weights.h5"))
    for got, best in zip(saved, model.get_weights()):
        np.testing.assert_allclose(got, best, rtol=1e-6)
    # Validation ran on the average, the model the run keeps (early stopping
    # restored the average of its best epoch, not training weights).
    model.set_weights(saved)
    model.compile(loss=keras_seq2seq.SequenceCrossEntropy())
    _, val = task.datasets()
    loss = model.evaluate(val, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, min(result.history.history["val_loss"]), rtol=1e-4)


@pytest.mark.slow
def test_a_character_level_recipe_file_trains_and_exports(tmp_path):
    """Spelling words backwards, character by character, from a recipe file
    with records in a JSONL file."""
    rng = np.random.default_rng(0)
    letters = list("abcdefghij")
    words = ["".join(rng.choice(letters, size=rng.integers(3, 7))) for _ in range(4000)]
    for split, chunk in (("train", words[:3600]), ("val", words[3600:3800]),
                         ("test", words[3800:])):
        _write_lines(str(tmp_path / "words" / f"{split}.jsonl"),
                     [json.dumps({"word": w, "backwards": w[::-1]}) for w in chunk])
    recipe = {
        "name": "backwards", "task": "text",
        "data": {split: {"file": f"words/{split}.jsonl", "format": "jsonl",
                         "source": "word", "target": "backwards"}
                 for split in ("train", "val", "test")},
        "tokenizer": {"type": "characters"},
        "model": SMALL_MODEL,
        # Measured: 6 epochs learn only the letters' frequencies (0%), 25
        # reach 100% held-out exact match.
        "training": {"epochs": 25, "learning_rate": 0.005, "max_source_length": 12,
                     "max_target_length": 12},
        "metric": "exact_match",
    }
    path = tmp_path / "backwards.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    # The clean-process check of the export is the own-data test's.
    code, out, err = _run_cli(["train", "--config", str(path), "--no-tensorboard",
                               "--patience", "0", "--no-check"], tmp_path)
    assert code == 0, err[-3000:]
    assert (tmp_path / "exports" / "backwards" / "1" / "saved_model.pb").exists()
    from keras_seq2seq.text import SubwordTokenizer

    tokenizer = SubwordTokenizer.from_file(str(tmp_path / "runs" / "backwards" / "tokenizer.model"))
    pieces = [p.decode() for p in tokenizer.id_to_piece(list(range(4, tokenizer.vocab_size))).numpy()]
    assert {p.lstrip("\u2581") for p in pieces if len(p.lstrip("\u2581")) == 1} >= set(letters)
    assert all(len(p.lstrip("\u2581")) <= 1 or p.startswith("<0x") for p in pieces), pieces
    exact = float(out.split("Held-out exact match")[1].split(": ")[1].split("%")[0])
    assert exact >= 90.0, out[-1500:]


def test_recipe_from_dict_checks_as_a_file_does(tmp_path):
    with pytest.raises(RecipeError, match="<recipe dict>: tokenizer.type"):
        recipe_from_dict({"name": "x", "task": "text", "data": {"generate": "dates"},
                          "tokenizer": {"type": "bpe"}, "model": {"class": "seq2seq"}})


@pytest.mark.parametrize("change, message", [
    ({"data": {"generate": "digit_strings", "labels": "L"}}, "data.images, which is missing"),
    ({"data": {"generate": "dates", "images": "I", "labels": "L"}}, "generates digit_strings"),
    ({"tokenizer": {"type": "sentencepiece", "vocabulary_size": 100}}, "type characters"),
    ({"data": {"generate": "digit_strings", "images": "I", "labels": "L", "max_digits": 0}},
     "max_digits"),
    ({"data": {"generate": "digit_strings", "images": "I", "labels": "L",
               "training_noise": 0.02}}, "data.training_noise: only speech strings"),
    ({"data": {"generate": "digit_strings", "images": "I", "labels": "L",
               "training_levels": [0.01, 0.1]}}, "data.training_levels: only speech clips"),
    ({"data": {"generate": "digit_strings", "images": "I", "labels": "L",
               "training_equalization": 6}}, "data.training_equalization: only speech clips"),
    ({"export": {"shortlist": 10}}, "export.shortlist: a shortlist lists outputs for source "
     "tokens: an option of text tasks"),
])
def test_image_recipes_are_checked_before_training(tmp_path, change, message):
    (tmp_path / "I").write_bytes(b"")
    (tmp_path / "L").write_bytes(b"")
    values = {"name": "x", "task": "image",
              "data": {"generate": "digit_strings", "images": "I", "labels": "L"},
              "tokenizer": {"type": "characters"}, "model": {"class": "image_to_text"}}
    values.update(change)
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict(values, base_dir=str(tmp_path))


def test_a_points_tasks_export_searches_as_one_in_float32():
    for key, value in (("xla", True), ("bfloat16_matmuls", True), ("parallel_searches", 2)):
        with pytest.raises(RecipeError, match=f"export.{key}: a points task's export searches"):
            recipe_from_dict({"name": "x", "task": "points",
                              "data": {"generate": "tsp", "points": 5},
                              "model": {"class": "pointer_network"}, "export": {key: value}})


@pytest.mark.slow  # trains a run and exports it twice (about 50 s): CI time
def test_a_recipes_export_settings_export_the_run_and_export_flags_change_them(tmp_path, capsys):
    files = _date_files(str(tmp_path / "data"), seed=4, counts=(300, 40, 40))
    recipe = GOOD.replace("train.src, target: train.tgt}\n  val: {source: train.src, target: "
                          "train.tgt}", f"{files['train'][0]}, target: {files['train'][1]}}}\n"
                          f"  val: {{source: {files['val'][0]}, target: {files['val'][1]}}}")
    recipe = recipe.replace("vocabulary_size: 300", "vocabulary_size: 400")
    recipe += "export: {shortlist: 3, shortlist_frequent: 5, parallel_searches: 2}\n"
    path = _recipe_file(tmp_path, recipe)
    run, exports = tmp_path / "run", tmp_path / "exports"
    assert cli.main(["train", "--config", str(path), "--work-dir", str(run), "--export-dir",
                     str(exports), "--no-check", "--no-tensorboard"]) == 0
    settings = json.loads((exports / "1" / "assets.extra" / "settings.json").read_text())
    assert settings["shortlist"] == {"per_token": 3, "frequent": 5}
    assert settings["parallel_searches"] == 2
    # The run keeps them: a plain export repeats them, flags change them.
    assert RunFolder(str(run)).load().shortlist.per_token == 3
    assert "recipe's export settings" in capsys.readouterr().out
    assert cli.main(["export", "--run", str(run), "--export-dir", str(exports), "--shortlist",
                     "0", "--parallel-searches", "1", "--bfloat16-matmuls", "--no-check"]) == 0
    settings = json.loads((exports / "2" / "assets.extra" / "settings.json").read_text())
    assert settings["shortlist"] is None and settings["parallel_searches"] == 1
    assert settings["matmul_dtype"] == "bfloat16"
    # Export settings change no training: the run is still this recipe's.
    changed = _recipe_file(tmp_path, recipe.replace("parallel_searches: 2", "parallel_searches: 3"))
    assert RunFolder(str(run)).claim(load_recipe(str(changed)).identity())


def test_builtin_image_recipe_asks_for_its_data_folder():
    with pytest.raises(RecipeError, match="mnist-digits"):
        load_recipe("digit-strings-image")


def test_speech_recipes_need_their_recordings_folder(tmp_path):
    values = {"name": "x", "task": "speech", "data": {"generate": "spoken_digit_strings"},
              "tokenizer": {"type": "characters"}, "model": {"class": "speech_to_text"}}
    with pytest.raises(RecipeError, match="data.recordings, which is missing"):
        recipe_from_dict(values, base_dir=str(tmp_path))
    values["data"]["recordings"] = "clips"
    with pytest.raises(RecipeError, match="data.recordings: .*clips: no such file"):
        recipe_from_dict(values, base_dir=str(tmp_path))
    (tmp_path / "clips").mkdir()
    values["data"]["training_noise"] = 0.5
    with pytest.raises(RecipeError, match=r"data.training_noise: must be in \[0.001, 0.1\]"):
        recipe_from_dict(values, base_dir=str(tmp_path))
    del values["data"]["training_noise"]
    for levels in ([0.1, 0.01], [0.01], [0, 0.1], ["a", 0.1], 0.1):
        values["data"]["training_levels"] = levels
        with pytest.raises(RecipeError, match=r"data.training_levels: (must be|expected)"):
            recipe_from_dict(values, base_dir=str(tmp_path))
    values["data"]["training_levels"] = [0.003, 0.1]
    assert recipe_from_dict(values, base_dir=str(tmp_path)).data["training_levels"] == [0.003, 0.1]
    del values["data"]["training_levels"]
    for decibels in (-1, 30):
        values["data"]["training_equalization"] = decibels
        with pytest.raises(RecipeError, match=r"data.training_equalization: must be in \[0, 20\]"):
            recipe_from_dict(values, base_dir=str(tmp_path))
    del values["data"]["training_equalization"]
    assert recipe_from_dict(values, base_dir=str(tmp_path)).data["recordings"] == str(
        tmp_path / "clips")


def test_conversations_become_context_response_pairs(tmp_path):
    from keras_seq2seq.data.records import split_records

    path = tmp_path / "dialogues.txt"
    path.write_text("Hi . __eou__ Hello ! __eou__ How are you ? __eou__ Fine . __eou__\n"
                    "Only one turn __eou__\n", encoding="utf-8")
    spec = {"file": str(path), "format": "turns", "separator": "__eou__", "context_turns": 2}
    assert [(s, t) for _, s, t in split_records(spec)] == [
        ("Hi .", "Hello !"), ("Hi .\nHello !", "How are you ?"),
        ("Hello !\nHow are you ?", "Fine .")]
    recipe = {"name": "chat", "task": "text",
              "data": {"train": dict(spec, context_turns=0), "val": spec}}
    with pytest.raises(RecipeError, match=r"data\.train\.context_turns: must be at least 1"):
        recipe_from_dict(recipe)
