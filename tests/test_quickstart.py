"""The quickstart in a reduced setting, and its SavedModel in a clean process."""

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

from keras_seq2seq import cli

# Runs in a fresh interpreter that never imports keras_seq2seq.
CLEAN_PROCESS = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    loaded = tf.saved_model.load(sys.argv[1])
    out = loaded.signatures["serving_default"](text=tf.constant(["3rd of March 1999", "", "12/25/07"]))
    greedy = loaded.signatures["greedy"](text=tf.constant(["3rd of March 1999"]))
    print(json.dumps({
        "modules": sorted(m for m in sys.modules if m.startswith("keras_seq2seq")),
        "translation": [t.decode("utf-8") for t in out["translation"].numpy()],
        "score": [float(s) for s in out["score"].numpy()],
        "greedy": [t.decode("utf-8") for t in greedy["translation"].numpy()],
    }))
    """
)


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart")
    cwd = os.getcwd()
    os.chdir(workdir)  # the quickstart must work from any folder
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            assert cli.main(["quickstart", "--train-size", "3000", "--epochs", "2"]) == 0
    finally:
        os.chdir(cwd)
    (workdir / "quickstart.out").write_text(out.getvalue(), encoding="utf-8")
    return workdir


def test_quickstart_exports_a_versioned_savedmodel(quickstart_run, capsys):
    version = quickstart_run / "exports" / "quickstart" / "1"
    assert (version / "saved_model.pb").exists()
    settings = json.loads((version / "assets.extra" / "settings.json").read_text())
    assert settings["model"] == "AttentionSeq2Seq"
    printed = (quickstart_run / "quickstart.out").read_text(encoding="utf-8")
    assert "Checked: the export" in printed and "Example translations" in printed


def test_savedmodel_runs_with_only_tensorflow_and_tensorflow_text(quickstart_run):
    version = quickstart_run / "exports" / "quickstart" / "1"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", CLEAN_PROCESS, str(version)],
        capture_output=True, text=True, env=env, cwd=str(quickstart_run), timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["modules"] == []
    assert len(out["translation"]) == 3 and all(isinstance(t, str) for t in out["translation"])
    assert all(s <= 0 for s in out["score"])
    assert out["greedy"][0] == out["translation"][0]


def test_translate_command_reads_a_file(quickstart_run, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("3rd of March 1999\n12/25/07\n", encoding="utf-8")
    assert cli.main([
        "translate", "--model", str(quickstart_run / "exports" / "quickstart"),
        "--input", str(source), "--output", str(tmp_path / "out.txt"),
    ]) == 0
    assert len((tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()) == 2


def test_translate_nbest_beam_and_sampling(quickstart_run, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("3rd of March 1999\n12/25/07\n", encoding="utf-8")
    out = tmp_path / "nbest.txt"
    assert cli.main([
        "translate", "--model", str(quickstart_run / "exports" / "quickstart"),
        "--input", str(source), "--output", str(out), "--beam", "3", "--n-best", "3",
    ]) == 0
    blocks = out.read_text(encoding="utf-8").strip().split("\n\n")
    assert len(blocks) == 2
    for block in blocks:
        scores = [float(line.split("\t")[0]) for line in block.splitlines()]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert cli.main([
        "translate", "--model", str(quickstart_run / "runs" / "quickstart"),
        "--input", str(source), "--output", str(tmp_path / "sample1.txt"),
        "--sampling", "--top-k", "3", "--seed", "1",
    ]) == 0
    first = (tmp_path / "sample1.txt").read_text(encoding="utf-8").splitlines()
    assert len(first) == 2
    # The export samples through its `sampling` signature, as the run folder
    # does: the same seed, the same outputs.
    assert cli.main(["translate", "--model", str(quickstart_run / "exports" / "quickstart"),
                     "--input", str(source), "--output", str(tmp_path / "exported1.txt"),
                     "--sampling", "--top-k", "3", "--seed", "1"]) == 0
    assert (tmp_path / "exported1.txt").read_text(encoding="utf-8").splitlines() == first


def test_export_shortlist_flags_name_the_training_pairs_they_lack(quickstart_run, capsys):
    # The flags' success path, a shortlisted export with parallel searches,
    # is test_shortlist.py's.
    run = quickstart_run / "runs" / "quickstart"
    export_dir = quickstart_run / "shortlisted"
    # Generated data: the recipe names no training files to count.
    assert cli.main(["export", "--run", str(run), "--export-dir", str(export_dir),
                     "--shortlist", "5"]) == 2
    assert "--shortlist-data" in capsys.readouterr().err
    assert cli.main(["export", "--run", str(run), "--export-dir", str(export_dir),
                     "--shortlist", "5", "--shortlist-data", str(run / "data" / "nowhere.src"),
                     str(run / "data" / "train.tgt")]) == 2
    assert "nowhere.src: no such file" in capsys.readouterr().err
    assert not export_dir.exists() or not os.listdir(export_dir)


def test_tflite_command(quickstart_run, tmp_path, capsys):
    out = tmp_path / "dates.tflite"
    assert cli.main(["tflite", str(quickstart_run / "exports" / "quickstart"), str(out),
                     "--quantize", "dynamic"]) == 0
    assert out.exists() and (tmp_path / "dates.spm.model").exists()
    assert "MB" in capsys.readouterr().out


def test_train_with_missing_data_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["train", "--recipe", "multi30k-de-en-attention", "--data", str(tmp_path),
                     "--work-dir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "data.train.source" in err and "train.de.gz: no such file" in err
    assert "Traceback" not in err


def test_zoo_lists_the_quickstart_recipe(capsys):
    assert cli.main(["zoo"]) == 0
    assert "dates-attention" in capsys.readouterr().out


def test_evaluate_command(quickstart_run, tmp_path, capsys):
    data = quickstart_run / "runs" / "quickstart" / "data"
    source = tmp_path / "test.src"
    references = tmp_path / "test.tgt"
    source.write_text("".join(open(data / "test.src").readlines()[:40]))
    references.write_text("".join(open(data / "test.tgt").readlines()[:40]))
    capsys.readouterr()
    out = tmp_path / "hypotheses.txt"
    assert cli.main(["evaluate", "--model", str(quickstart_run / "exports" / "quickstart"),
                     "--source", str(source), "--references", str(references),
                     "--output", str(out)]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match", "perplexity",
            "sentences_per_s"} <= set(scores)
    assert scores["sentences"] == 40 and 1.0 <= scores["perplexity"] < 100
    # Scoring the written translations again gives the same figures.
    assert cli.main(["evaluate", "--hypotheses", str(out), "--references", str(references),
                     "--metrics", "bleu,chrf,exact_match"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("bleu", "chrf", "exact_match"):
        assert again[name] == pytest.approx(scores[name])
    (tmp_path / "short.txt").write_text("x\n")
    assert cli.main(["evaluate", "--hypotheses", str(tmp_path / "short.txt"),
                     "--references", str(references)]) == 2
    assert "1 hypotheses but 40 references" in capsys.readouterr().err


def test_plot_attention_and_training_curves(quickstart_run, tmp_path):
    from keras_seq2seq.export import Translator
    from keras_seq2seq.plots import attention_matrix

    source = tmp_path / "one.txt"
    source.write_text("3rd of March 1999\n")
    png = tmp_path / "attention.png"
    assert cli.main(["translate", "--model", str(quickstart_run / "exports" / "quickstart"),
                     "--input", str(source), "--output", str(tmp_path / "out.txt"),
                     "--plot-attention", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    translator = Translator.load_run(str(quickstart_run / "runs" / "quickstart"))
    source_pieces, target_pieces, weights = attention_matrix(translator, "3rd of March 1999")
    assert weights.shape == (len(target_pieces), len(source_pieces))
    assert source_pieces[-1] == "</s>" and target_pieces[-1] == "</s>"
    assert abs(weights.sum(axis=1) - 1).max() < 1e-4  # each row is a distribution
    # Training drew its curves beside the TensorBoard logs.
    logs = quickstart_run / "runs" / "quickstart" / "logs"
    assert (logs / "curves.png").read_bytes()[:4] == b"\x89PNG"
    history = json.loads((logs / "curves.json").read_text())
    assert set(history["loss"]) == {"1", "2"} and "val_loss" in history


def test_sampling_signature_with_top_k_1_is_greedy_and_a_seed_repeats(quickstart_run):
    import tensorflow as tf

    from keras_seq2seq.export.saved_model import resolve_export

    loaded = tf.saved_model.load(resolve_export(str(quickstart_run / "exports" / "quickstart")))
    text = tf.constant(["3rd of March 1999", "12/25/07", "July 4, 1776", ""])

    def sample(top_k, top_p, seed):
        return loaded.signatures["sampling"](
            text=text, temperature=tf.constant(1.0), top_k=tf.constant(top_k),
            top_p=tf.constant(top_p), seed=tf.constant(seed))

    greedy = loaded.signatures["greedy"](text=text)["translation"].numpy().tolist()
    assert sample(1, 1.0, [3, 0])["translation"].numpy().tolist() == greedy
    first, again = sample(0, 0.9, [5, 0]), sample(0, 0.9, [5, 0])
    assert first["translation"].numpy().tolist() == again["translation"].numpy().tolist()
    assert (first["score"].numpy() <= 0).all()


def test_retiring_finished_sentences_keeps_a_trained_models_nbest(quickstart_run):
    import numpy as np
    import tensorflow as tf

    from keras_seq2seq.data import generate_date_pairs
    from keras_seq2seq.decoding import generate
    from keras_seq2seq.export import load_run

    translator = load_run(str(quickstart_run / "runs" / "quickstart"))
    sources = [s for s, _ in generate_date_pairs(48, seed=11)] + ["", "12", "x" * 40]
    source_ids = translator.encode_text(tf.constant(sources))

    def search(retire):
        return generate(translator.model, source_ids, translator.max_target_length,
                        beam_size=5, alpha=0.6, retire_finished=retire)

    (want, want_scores), (got, got_scores) = search(False), search(True)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_allclose(got_scores.numpy(), want_scores.numpy(), rtol=1e-5)
    # Sentences did finish at different steps (each when its longest hypothesis ended).
    assert len(set((want.numpy() != 0).sum(-1).max(-1))) > 1
