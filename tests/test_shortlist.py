"""Lexical shortlists: the outputs a search scores, and what they change."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_seq2seq import AttentionSeq2Seq, Ensemble, PointerGenerator
from keras_seq2seq.decoding import LexicalShortlist, generate
from keras_seq2seq.errors import UserError
from keras_seq2seq.export import RunFolder, Translator
from keras_seq2seq.text import EOS_ID, PAD_ID
from tests.conftest import peaked_model, write_lines

VOCABULARY = 40
SOURCES = np.array([[7, 9, 12, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]], "int32")


def _pairs():
    """Source token 10 always comes with output 20, 11 with 21 (and 22 once);
    output 5 is in every pair."""
    return ([[10, 3], [20, 5, 3]], [[10, 12], [20, 5]], [[11], [21, 5]], [[11, 13], [21, 5]],
            [[13], [22, 5]], [[11], [22, 5]])


def test_each_source_token_keeps_the_outputs_it_comes_with_most():
    shortlist = LexicalShortlist.from_pairs(_pairs(), VOCABULARY, 30, per_token=1, frequent=1)
    # Output 5 comes with every source token, so with none in particular:
    # the frequent list has it.
    assert shortlist.table[10].tolist() == [20] and shortlist.table[11].tolist() == [21]
    assert shortlist.frequent.tolist() == [5]
    assert shortlist.table[2].tolist() == [0]  # never seen: padding only
    # Strongest first: c(s, t)^2 / (c(s) c(t)) is 4/6 for 21, 9/18 for 5 and
    # 1/6 for 22 (seen once with 11, once with 13).
    wider = LexicalShortlist.from_pairs(_pairs(), VOCABULARY, 30, per_token=2, frequent=1)
    assert wider.table[11].tolist() == [21, 5]


def test_a_batch_may_write_the_specials_frequent_outputs_its_tokens_lists_and_a_prefix():
    shortlist = LexicalShortlist.from_pairs(_pairs(), VOCABULARY, 30, per_token=1, frequent=1)
    # 99 is past the table (an extended id): read as unknown.
    outputs = shortlist.outputs([[10, 3, 0], [11, 99, 3]], prefix=[[25, 0], [0, 0]])
    assert outputs.numpy().tolist() == [0, 1, 2, 3, 5, 20, 21, 25]
    # For XLA: a size that follows the shapes (6 tokens + 4 specials + 1
    # frequent + 4 prefix slots), the listed ids first, then the lowest others.
    fixed = shortlist.outputs([[10, 3, 0], [11, 99, 3]], prefix=[[25, 0], [0, 0]],
                              static_size=True).numpy().tolist()
    assert len(fixed) == 15 and fixed == sorted(set(fixed))
    assert set(outputs.numpy().tolist()) <= set(fixed)
    assert shortlist.outputs([[10]], static_size=True).shape == (6,)
    # Each sentence's own list, in positions of the batch's.
    _, allowed = shortlist.lists([[10, 3, 0], [11, 99, 3]], prefix=[[25, 0], [0, 0]])
    assert allowed.numpy().tolist() == [[True] * 6 + [False, True],
                                        [True] * 5 + [False, True, False]]


def test_a_shortlist_names_outputs_the_model_has():
    with pytest.raises(ValueError, match="past the model's 30 outputs"):
        LexicalShortlist(np.array([[0], [31]]), np.array([5]), 30)


@pytest.fixture(scope="module")
def model():
    return peaked_model(VOCABULARY, seed=4)


def _listing(outputs):
    """A shortlist that lists `outputs` (the specials first) for any source."""
    return LexicalShortlist(np.zeros((VOCABULARY, 1)), np.asarray(outputs)[4:], VOCABULARY)


def test_a_shortlist_of_every_output_searches_as_the_whole_vocabulary(model):
    want = generate(model, SOURCES, max_length=8, beam_size=3, alpha=0.6)
    got = generate(model, SOURCES, max_length=8, beam_size=3, alpha=0.6,
                   shortlist=_listing(np.arange(VOCABULARY)))
    np.testing.assert_array_equal(want[0], got[0])
    np.testing.assert_allclose(want[1], got[1], rtol=1e-6)


def test_each_source_searches_only_its_own_list_as_if_alone(model):
    table = np.zeros((VOCABULARY, 3), "int32")
    table[7, 0], table[9, 0], table[8] = 8, 30, [13, 21, 34]  # SOURCES' tokens
    shortlist = LexicalShortlist(table, np.array([5, 17]), VOCABULARY)
    got = generate(model, SOURCES, max_length=8, beam_size=3, alpha=0.6, shortlist=shortlist)
    in_parts = generate(model, SOURCES, max_length=8, beam_size=3, alpha=0.6,
                        shortlist=shortlist, parallel_searches=2)
    for i, own in enumerate([[0, 1, 2, 3, 5, 8, 17, 30], [0, 1, 2, 3, 5, 13, 17, 21, 34]]):
        alone = generate(model, SOURCES[i : i + 1], max_length=8, beam_size=3, alpha=0.6,
                         shortlist=_listing(own))
        for each in (got, in_parts):
            np.testing.assert_array_equal(each[0][i : i + 1], alone[0])
            np.testing.assert_allclose(each[1][i : i + 1], alone[1], rtol=1e-5)
        assert set(np.unique(got[0][i])) <= set(own)
    # Not the search of the batch's union of lists.
    union = generate(model, SOURCES, max_length=8, beam_size=3, alpha=0.6,
                     shortlist=_listing([0, 1, 2, 3, 5, 8, 13, 17, 21, 30, 34]))
    assert not np.allclose(got[1], union[1])


def test_an_ensembles_members_each_normalize_over_the_shortlist(model):
    """The ensemble averages its members' log-probabilities, each normalized
    over the sentence's list: with every output listed, its search without
    a shortlist (no renormalization of the average on top)."""
    ensemble = Ensemble([model, peaked_model(VOCABULARY, seed=7)])
    want = generate(ensemble, SOURCES, max_length=8, beam_size=3, alpha=0.6)
    got = generate(ensemble, SOURCES, max_length=8, beam_size=3, alpha=0.6,
                   shortlist=_listing(np.arange(VOCABULARY)))
    np.testing.assert_array_equal(want[0], got[0])
    np.testing.assert_allclose(want[1], got[1], rtol=1e-5)


def test_a_shortlisted_search_is_the_search_of_the_model_without_the_other_outputs(model):
    listed = np.array([0, 1, 2, 3, 5, 8, 13, 17, 21, 30, 34], "int32")
    got = generate(model, SOURCES, max_length=8, beam_size=3, shortlist=_listing(listed))
    # The same model with every other output's bias at -1e9: the log-softmax
    # over the listed outputs, and nothing else can win.
    without = AttentionSeq2Seq.from_config(model.get_config())
    without.build()
    without.set_weights(model.get_weights())
    bias = np.full(VOCABULARY, -1e9, "float32")
    bias[listed] = model.output_projection.bias.numpy()[listed]
    without.output_projection.bias.assign(bias)
    want = generate(without, SOURCES, max_length=8, beam_size=3)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
    assert set(np.unique(got[0])) <= set(listed)
    # Not the whole vocabulary's search.
    assert not np.array_equal(got[0], generate(model, SOURCES, max_length=8, beam_size=3)[0])


def test_models_whose_outputs_are_not_a_vocabulary_refuse_a_shortlist(tokenizer):
    generator = PointerGenerator(VOCABULARY, embedding_dim=8, units=16)
    generator.build()
    assert not generator.shortlists_outputs
    with pytest.raises(ValueError, match="shortlist"):
        generator.step_weights(outputs=[0, 1, 2, 3])
    with pytest.raises(UserError, match="shortlist"):
        Translator(generator, tokenizer, 16, 8, shortlist=LexicalShortlist(
            np.zeros((VOCABULARY, 1)), np.array([5]), VOCABULARY))


TEXTS = ["3rd of March 1999", "12/25/07", "tomorrow", "5 May 2001"]


@pytest.fixture(scope="module")
def translator(tokenizer):
    return Translator(peaked_model(tokenizer.vocab_size, seed=5, units=32), tokenizer,
                      max_source_length=32, max_target_length=12,
                      beam_size=3, check_texts=TEXTS[:2])


@pytest.fixture(scope="module")
def shortlisted(translator):
    return translator.with_shortlist(*_shortlist_pairs(), per_token=3, frequent=5)


def _shortlist_pairs():
    """(sources, targets) the shortlist counts."""
    from keras_seq2seq.data import generate_date_pairs

    pairs = generate_date_pairs(300, seed=3)
    return [s for s, _ in pairs], [t for _, t in pairs]


def _pieces(translator, texts):
    return set(translator.tokenizer.encode(tf.constant(texts), 64).numpy().ravel())


def test_a_translator_writes_for_each_sentence_only_what_its_shortlist_lists_for_it(shortlisted):
    source = shortlisted.encode_text(tf.constant(TEXTS))
    out = shortlisted.translate_ids(source)
    for i in range(len(TEXTS)):
        own = shortlisted.shortlist.outputs(source[i : i + 1])
        assert set(np.unique(out["target_ids"][i])) <= set(own.numpy())
        assert len(own) < len(shortlisted.shortlist.outputs(source))
    assert len(shortlisted.shortlist.outputs(source)) < shortlisted.model.target_size
    assert shortlisted.settings["shortlist"] == {"per_token": 3, "frequent": 5}


@pytest.mark.parametrize("searches", [1, 2])
def test_a_shortlisted_sentence_translates_the_same_alone_and_in_any_request(shortlisted, searches):
    translator = shortlisted.with_parallel_searches(searches)
    together = translator.translate_ids(translator.encode_text(tf.constant(TEXTS)))
    for i, text in enumerate(TEXTS):
        alone = translator.translate_ids(translator.encode_text(tf.constant([text])))
        np.testing.assert_array_equal(together["target_ids"][i], alone["target_ids"][0])
        np.testing.assert_allclose(together["scores"][i], alone["scores"][0], rtol=1e-5,
                                   atol=1e-6)


def test_a_prefix_outside_the_shortlist_still_starts_every_hypothesis(shortlisted):
    listed = set(shortlisted.shortlist.outputs(
        shortlisted.encode_text(tf.constant(TEXTS[:1]))).numpy())
    piece = next(i for i in range(4, shortlisted.tokenizer.vocab_size) if i not in listed)
    prefix = shortlisted.tokenizer.id_to_piece(tf.constant([piece])).numpy()[0].decode()
    out = shortlisted.beam_search_options(
        tf.constant(TEXTS[:1]), tf.constant(3), tf.constant(0.6), tf.constant(0.0),
        tf.constant(12), tf.constant([prefix.replace("\u2581", " ").strip() or prefix]))
    prefix_ids = shortlisted.encode_target(
        tf.constant(TEXTS[:1]), tf.constant([prefix.replace("\u2581", " ").strip()]),
        add_eos=False).numpy()[0]
    prefix_ids = prefix_ids[prefix_ids != PAD_ID]
    for text in out["translations"].numpy()[0]:
        ids = shortlisted.tokenizer.encode(tf.constant([text]), 64, add_eos=False).numpy()[0]
        assert ids[: len(prefix_ids)].tolist() == prefix_ids.tolist()


def test_the_shortlist_goes_with_the_run_folder_and_the_export(translator, shortlisted, tmp_path):
    from keras_seq2seq import cli

    shortlisted.save_run(str(tmp_path / "run"))
    loaded = RunFolder(str(tmp_path / "run")).load()
    np.testing.assert_array_equal(loaded.shortlist.table, shortlisted.shortlist.table)
    np.testing.assert_array_equal(loaded.shortlist.frequent, shortlisted.shortlist.frequent)
    text = tf.constant(TEXTS)
    want = shortlisted.beam_search(text)
    np.testing.assert_array_equal(loaded.beam_search(text)["translations"], want["translations"])
    # `keras-seq2seq export --shortlist` counts the same pairs into the same
    # shortlist, and the export serves it as it was searched, here with two
    # parallel searches (CI time: the clean-process check of exports is
    # test_export.py's and the quickstart's; a shortlist adds only
    # TensorFlow ops to the graph).
    translator.save_run(str(tmp_path / "plain"))
    sources, targets = _shortlist_pairs()
    data = [write_lines(tmp_path / "pairs.src", sources), write_lines(tmp_path / "pairs.tgt", targets)]
    assert cli.main(["export", "--run", str(tmp_path / "plain"), "--export-dir",
                     str(tmp_path / "export"), "--shortlist", "3", "--shortlist-frequent", "5",
                     "--shortlist-data", *data, "--parallel-searches", "2", "--no-check"]) == 0
    version = tmp_path / "export" / "1"
    assert (version / "assets.extra" / "run" / "shortlist.npz").exists()
    settings = json.loads((version / "assets.extra" / "settings.json").read_text())
    assert settings["shortlist"] == {"per_token": 3, "frequent": 5}
    assert settings["parallel_searches"] == 2
    beam_search = tf.saved_model.load(str(version)).signatures["beam_search"]
    np.testing.assert_array_equal(beam_search(text=text)["translations"], want["translations"])
    # A request of one: one of the two searches gets no sentence.
    np.testing.assert_array_equal(beam_search(text=text[:1])["translations"],
                                  want["translations"][:1])
    # TFLite converts the whole vocabulary's search.
    assert shortlisted.for_tflite().shortlist is None


def test_the_xla_search_searches_a_shortlist_of_a_size_xla_can_compile(shortlisted):
    from keras_seq2seq.export.translator import XLA_SOURCE_BUCKET, _pad_to_bucket

    source = shortlisted.encode_text(tf.constant(TEXTS[:1]))
    # Held by a name: a tf.function method keeps only a weak reference to
    # its object, which a temporary loses before the call.
    compiled = shortlisted.with_xla_search()
    got = compiled.translate_ids(source)
    padded = _pad_to_bucket(source, XLA_SOURCE_BUCKET)
    want = generate(shortlisted.model, padded, 12, beam_size=3, alpha=0.6,
                    shortlist=shortlisted.shortlist, retire_finished=False)
    np.testing.assert_array_equal(got["target_ids"], want[0])
    np.testing.assert_allclose(got["scores"], want[1], rtol=1e-4, atol=1e-5)
    # The ids that pad the list to a compilable size are not searched: the
    # graph's search of the sentence, whose list has none, writes the same.
    graph = shortlisted.translate_ids(source)
    np.testing.assert_array_equal(got["target_ids"], graph["target_ids"])
    np.testing.assert_allclose(got["scores"], graph["scores"], rtol=1e-4, atol=1e-5)


def test_shortlist_training_pairs_must_be_parallel(translator):
    with pytest.raises(UserError, match="parallel"):
        translator.with_shortlist(["a", "b"], ["c"])
