import gzip
import os

import numpy as np
import pytest

from keras_seq2seq.data import (
    DataError,
    check_parallel_files,
    generate_date_pairs,
    parallel_text_dataset,
    write_dates_dataset,
)
from keras_seq2seq.data.pipeline import batches_per_epoch, length_report
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID
from tests.conftest import write_lines


def test_mismatched_line_counts_name_both_files(tmp_path):
    src = write_lines(tmp_path / "a.src", ["one", "two", "three"])
    tgt = write_lines(tmp_path / "a.tgt", ["eins", "zwei"])
    with pytest.raises(DataError, match=r"a\.tgt has 2 lines but .*a\.src has more"):
        check_parallel_files(src, tgt)


def test_empty_files(tmp_path):
    src = write_lines(tmp_path / "e.src", [])
    tgt = write_lines(tmp_path / "e.tgt", [])
    with pytest.raises(DataError, match="are empty"):
        check_parallel_files(src, tgt)
    full = write_lines(tmp_path / "f.tgt", ["x"])
    with pytest.raises(DataError, match=r"e\.src is empty"):
        check_parallel_files(src, full)


def test_invalid_utf8_names_file_and_line(tmp_path):
    src = tmp_path / "bad.src"
    src.write_bytes(b"fine\nalso fine\nbroken \xff\xfe here\n")
    tgt = write_lines(tmp_path / "bad.tgt", ["a", "b", "c"])
    with pytest.raises(DataError, match=r"bad\.src, line 3: not valid UTF-8"):
        check_parallel_files(str(src), tgt)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        check_parallel_files(str(tmp_path / "nope.src"), str(tmp_path / "nope.tgt"))


def test_gzip_files_are_read(tmp_path, tokenizer):
    for name, lines in [("g.src.gz", ["3 March 1999", "4 May 2001"]), ("g.tgt.gz", ["1999-03-03", "2001-05-04"])]:
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    assert check_parallel_files(str(tmp_path / "g.src.gz"), str(tmp_path / "g.tgt.gz"))["usable"] == 2
    ds = parallel_text_dataset(
        str(tmp_path / "g.src.gz"), str(tmp_path / "g.tgt.gz"), tokenizer, batch_size=4, shuffle=False
    )
    assert sum(int(t.shape[0]) for _, t in ds) == 2


def test_pipeline_shift_padding_and_filtering(tmp_path, tokenizer):
    sources = ["3 March 1999", "", "the 21st of June 1987", "x " * 200, "12/25/07"]
    targets = ["1999-03-03", "blank source", "1987-06-21", "too long", "2007-12-25"]
    src = write_lines(tmp_path / "p.src", sources)
    tgt = write_lines(tmp_path / "p.tgt", targets)
    ds = parallel_text_dataset(
        src, tgt, tokenizer, batch_size=8, max_source_length=40, max_target_length=40,
        shuffle=False, on_bad_line="skip",
    )
    seen = 0
    for inputs, labels in ds:
        source, decoder_in, labels = (
            inputs["source_ids"].numpy(), inputs["decoder_input_ids"].numpy(), labels.numpy()
        )
        assert decoder_in.shape == labels.shape
        for s, d, t in zip(source, decoder_in, labels):
            seen += 1
            n = int((t != PAD_ID).sum())
            assert d[0] == BOS_ID and t[n - 1] == EOS_ID
            np.testing.assert_array_equal(d[1:n], t[: n - 1])  # teacher-forcing shift
            assert (t[n:] == PAD_ID).all() and (d[n:] == PAD_ID).all()
            m = int((s != PAD_ID).sum())
            assert s[m - 1] == EOS_ID and (s[m:] == PAD_ID).all()
    # The blank-source pair and the overlong pair are dropped.
    assert seen == 3


def test_cached_pipeline_tokenizes_once_and_reshuffles_each_epoch(tmp_path, tokenizer):
    sources = [f"{day} March {1950 + day}" for day in range(1, 29)]
    targets = [f"{1950 + day}-03-{day:02d}" for day in range(1, 29)]
    src = write_lines(tmp_path / "c.src", sources)
    tgt = write_lines(tmp_path / "c.tgt", targets)

    def epoch(ds):
        return [tuple(t[t != PAD_ID]) for _, labels in ds for t in labels.numpy()]

    plain = epoch(parallel_text_dataset(src, tgt, tokenizer, batch_size=4, shuffle=False))
    cached = parallel_text_dataset(src, tgt, tokenizer, batch_size=4, seed=1, cache=True)
    first = epoch(cached)
    assert sorted(first) == sorted(plain) and len(first) == 28
    # Later epochs read the ids kept from the first: the files are not read again.
    write_lines(tmp_path / "c.tgt", ["2000-01-01"] * 28)
    second = epoch(cached)
    assert sorted(second) == sorted(plain) and second != first


@pytest.mark.parametrize("batch_tokens", [None, 60, 600])
@pytest.mark.parametrize("truncate_source", [False, True])
def test_token_batches_hold_the_budget_and_the_batches_are_counted_ahead(
        tmp_path, tokenizer, batch_tokens, truncate_source):
    rng = np.random.default_rng(0)
    words = ["March", "the", "21st", "of", "June", "1987", "12/25/07", "bicycle"]
    sources = [" ".join(rng.choice(words, rng.integers(1, 14))) for _ in range(300)]
    targets = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(300)]
    src = write_lines(tmp_path / "t.src", sources)
    tgt = write_lines(tmp_path / "t.tgt", targets)
    limits = dict(max_source_length=30, max_target_length=20)
    batches = [(inputs["source_ids"].numpy(), labels.numpy()) for inputs, labels in
               parallel_text_dataset(src, tgt, tokenizer, batch_size=16, batch_tokens=batch_tokens,
                                     shuffle=False, truncate_source=truncate_source, **limits)]
    report = length_report(src, tgt, tokenizer, **limits, truncate_source=truncate_source)
    # The batches a cosine schedule is planned over: as many as the pipeline makes.
    assert len(batches) == batches_per_epoch(report["length_counts"], 16, batch_tokens)
    assert sum(labels.shape[0] for _, labels in batches) == sum(report["length_counts"])
    assert sum(report["length_counts"]) == 300 - (
        report["long_targets"] if truncate_source else report["long_pairs"])
    assert report["long_sources"] > 0  # the limits leave pairs out
    for source, labels in batches:
        padded = labels.shape[0] * max(source.shape[1], labels.shape[1])
        if batch_tokens is None:
            assert labels.shape[0] <= 16
        else:
            assert padded <= batch_tokens
    if batch_tokens == 600:  # short sentences: more of them than 16 a batch
        assert max(labels.shape[0] for _, labels in batches) > 16


def test_bad_lines_fail_with_their_line_number_or_are_skipped_and_counted(tmp_path, tokenizer):
    src = tmp_path / "b.src"
    src.write_bytes(b"3 March 1999\n \t\nbad \xff byte\n" + b"y" * 1500 + b"\n12/25/07\n")
    tgt = write_lines(tmp_path / "b.tgt", ["1999-03-03", "x", "y", "z", "2007-12-25"])
    with pytest.raises(DataError, match=r"b\.src, line 2: blank line"):
        check_parallel_files(str(src), tgt)
    report = check_parallel_files(str(src), tgt, on_bad_line="skip")
    assert report == {"pairs": 5, "blank": 1, "undecodable": 1, "overlong": 1, "usable": 2}
    ds = parallel_text_dataset(str(src), tgt, tokenizer, batch_size=8, shuffle=False,
                               on_bad_line="skip")
    assert sum(int(t.shape[0]) for _, t in ds) == 2  # the pipeline drops the same pairs
    long_src = write_lines(tmp_path / "o.src", ["fine", "y" * 1500])
    long_tgt = write_lines(tmp_path / "o.tgt", ["fine", "fine"])
    with pytest.raises(DataError, match=r"o\.src, line 2: 1500 characters, more than 1000"):
        check_parallel_files(long_src, long_tgt)


def test_dates_are_deterministic_and_held_out_is_unseen(tmp_path):
    assert generate_date_pairs(50, seed=3) == generate_date_pairs(50, seed=3)
    assert generate_date_pairs(50, seed=3) != generate_date_pairs(50, seed=4)
    paths = write_dates_dataset(str(tmp_path), train=500, val=50, test=50)
    train = set(open(paths["train"][0]).read().splitlines())
    test = open(paths["test"][0]).read().splitlines()
    assert len(test) == 50 and not train.intersection(test)
    import datetime

    for line in open(paths["test"][1]).read().splitlines():
        datetime.date.fromisoformat(line)


# -- files that appear whole or not at all ------------------------------------


def test_atomic_path_renames_only_what_was_written_whole(tmp_path):
    from keras_seq2seq.data.atomic import atomic_path

    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as part:
            with open(part, "w") as f:
                f.write("half")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["run.json"]
    with atomic_path(str(target)) as part:
        assert part == str(target) + ".part"
        with open(part, "w") as f:
            f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["run.json"]


def test_atomic_paths_nested_are_all_renamed_or_none(tmp_path):
    from keras_seq2seq.data.atomic import atomic_path

    first, second = str(tmp_path / "train.source"), str(tmp_path / "train.target")
    with pytest.raises(ValueError):
        with atomic_path(first) as a, atomic_path(second) as b:
            open(a, "w").close()
            open(b, "w").close()
            raise ValueError("no records")
    assert os.listdir(tmp_path) == []
    with atomic_path(first) as a, atomic_path(second) as b:
        open(a, "w").close()
        open(b, "w").close()
    assert sorted(os.listdir(tmp_path)) == ["train.source", "train.target"]


def test_atomic_path_keeps_an_ending_the_writer_needs(tmp_path):
    from keras_seq2seq.data.atomic import atomic_path

    path = str(tmp_path / "epoch-001.weights.h5")
    with atomic_path(path, extension=".weights.h5") as part:
        assert part == str(tmp_path / "epoch-001.part.weights.h5")
        open(part, "w").close()
    assert os.listdir(tmp_path) == ["epoch-001.weights.h5"]
