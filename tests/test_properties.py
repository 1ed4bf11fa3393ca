"""Property tests: arbitrary Unicode and bytes through the pipeline and the signatures."""

import keras
import numpy as np
import pytest
import tensorflow as tf

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from keras_seq2seq import AttentionSeq2Seq  # noqa: E402
from keras_seq2seq.data import DataError, parallel_text_dataset  # noqa: E402
from keras_seq2seq.export import Translator  # noqa: E402
from keras_seq2seq.text import BOS_ID, EOS_ID, PAD_ID  # noqa: E402

# Lines as they can come in a text file: no line breaks inside.
LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
    max_size=60,
)
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def translator(tokenizer):
    keras.utils.set_random_seed(3)
    model = AttentionSeq2Seq(tokenizer.vocab_size, embedding_dim=8, units=16)
    model.build()
    return Translator(model, tokenizer, max_source_length=24, max_target_length=12, beam_size=2)


@SETTINGS
@given(st.lists(st.tuples(LINE, LINE), min_size=1, max_size=12))
def test_pipeline_keeps_exactly_the_usable_pairs(tmp_path_factory, tokenizer, pairs):
    folder = tmp_path_factory.mktemp("pairs")
    for side, name in ((0, "s.txt"), (1, "t.txt")):
        (folder / name).write_text("".join(p[side] + "\n" for p in pairs), encoding="utf-8")
    def make():
        return parallel_text_dataset(str(folder / "s.txt"), str(folder / "t.txt"), tokenizer,
                                     batch_size=4, max_source_length=80, max_target_length=80,
                                     shuffle=False, on_bad_line="skip")

    if not any(s.strip() and t.strip() for s, t in pairs):
        with pytest.raises(DataError, match="no usable line pairs"):
            make()
        return
    ds = make()
    got = []
    for inputs, targets in ds:
        for source, decoder_in, target in zip(inputs["source_ids"].numpy(),
                                              inputs["decoder_input_ids"].numpy(), targets.numpy()):
            n = int((target != PAD_ID).sum())
            assert decoder_in[0] == BOS_ID and target[n - 1] == EOS_ID
            np.testing.assert_array_equal(decoder_in[1:n], target[: n - 1])
            got.append(tokenizer.decode(source[None]).numpy()[0].decode("utf-8"))
    usable = [s for s, t in pairs if s.strip() and t.strip()
              and len(tokenizer.tokenize(tf.constant([s])).flat_values) < 80
              and len(tokenizer.tokenize(tf.constant([t])).flat_values) < 80]
    # Bucketing may reorder pairs; the multiset of sources must match.
    expected = sorted(tokenizer.decode(tokenizer.encode(tf.constant([s]), 80)).numpy()[0].decode()
                      for s in usable)
    assert sorted(got) == expected


@SETTINGS
@given(st.lists(st.one_of(LINE, st.binary(max_size=40)), min_size=0, max_size=6))
def test_signatures_answer_any_strings(translator, texts):
    batch = tf.constant([t.encode("utf-8") if isinstance(t, str) else t for t in texts],
                        dtype=tf.string, shape=[len(texts)])
    out = translator.serving_default(batch)
    assert out["translation"].shape == (len(texts),)
    assert np.all(np.isfinite(out["score"].numpy()))
    for translation in out["translation"].numpy():
        translation.decode("utf-8")  # always valid UTF-8 out
    beams = translator.beam_search(batch)
    assert beams["translations"].shape == (len(texts), 2)
