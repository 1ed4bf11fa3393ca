import numpy as np
import tensorflow as tf

from keras_seq2seq.text import EOS_ID, PAD_ID, SubwordTokenizer


def _decode(tokenizer, strings):
    ids = tokenizer.encode(tf.constant(strings), max_length=200)
    return [s.decode("utf-8") for s in tokenizer.decode(ids).numpy()]


def test_round_trip_is_natural_text(tokenizer):
    text = ["A man rides a bicycle, quickly!", "Zwei Hunde spielen im Schnee."]
    assert _decode(tokenizer, text) == text


def test_unseen_characters_round_trip_by_byte_fallback(tokenizer):
    text = ["Grüße 😀 — 東京 ok"]
    assert _decode(tokenizer, text) == text


def test_invalid_utf8_becomes_replacement_character(tokenizer):
    assert _decode(tokenizer, [b"ab\xffcd"]) == ["ab\ufffdcd"]


def test_encode_truncates_and_keeps_eos(tokenizer):
    ids = tokenizer.encode(tf.constant(["1 2 3 4 5 6 7 8 9 " * 10, "1"]), max_length=8).numpy()
    assert ids.shape[1] == 8
    assert ids[0, -1] == EOS_ID
    assert ids[1, int((ids[1] != PAD_ID).sum()) - 1] == EOS_ID


def test_decode_stops_at_eos(tokenizer):
    ids = tokenizer.encode(tf.constant(["March"]), max_length=10).numpy()
    junk = tokenizer.encode(tf.constant(["1999"]), max_length=10).numpy()
    joined = tf.concat([ids, junk], axis=1)  # March </s> 1 9 9 9 </s>
    assert tokenizer.decode(joined).numpy()[0].decode() == "March"


def test_saved_and_loaded_tokenizer_is_identical(tokenizer, tmp_path):
    tokenizer.save(str(tmp_path / "t.model"))
    again = SubwordTokenizer.from_file(str(tmp_path / "t.model"))
    s = tf.constant(["the 3rd of March"])
    assert (again.encode(s, 20).numpy() == tokenizer.encode(s, 20).numpy()).all()


def test_too_small_vocabulary_is_a_clear_error():
    import pytest

    from keras_seq2seq.text import train_sentencepiece

    with pytest.raises(ValueError, match="vocab_size 100 is too small"):
        train_sentencepiece(["abc def"] * 10, vocab_size=100)


def test_tokenizer_survives_a_random_seed_reset(tokenizer):
    import keras

    before = tokenizer.encode(tf.constant(["3 March"]), 10).numpy()
    keras.utils.set_random_seed(123)  # clears TF's eager kernel cache
    np_after = tokenizer.encode(tf.constant(["3 March"]), 10).numpy()
    assert (before == np_after).all()


def test_vocabulary_in_use_lists_the_specials_and_every_id_the_lines_give(tokenizer):
    from keras_seq2seq.text import vocabulary_in_use

    lines = ["Zwei Hunde spielen im Schnee.", "3rd of March 1999"]
    ids = tokenizer.tokenize(tf.constant(lines)).flat_values.numpy()
    expected = sorted({0, 1, 2, 3, *ids.tolist()})
    assert vocabulary_in_use(tokenizer, lines, batch_size=1) == expected
    # Bytes that are not UTF-8 count as they tokenize in training (U+FFFD).
    assert vocabulary_in_use(tokenizer, [b"Zwei \xff Hunde"]) == sorted(
        {0, 1, 2, 3, *tokenizer.tokenize(tf.constant([b"Zwei \xff Hunde"])).flat_values.numpy()})


def test_line_breaks_are_a_token_of_their_own_and_come_back(tokenizer):
    from keras_seq2seq.text import LINE_BREAK, WordTokenizer
    from keras_seq2seq.text.words import split_words

    dialogue = "Ann: Where are you?\nBob: at home\r\nAnn: ok"
    assert _decode(tokenizer, [dialogue]) == [dialogue.replace("\r\n", "\n")]
    words = [w.decode() for w in split_words(tf.constant([dialogue]))[0].numpy()]
    assert words.count(LINE_BREAK) == 2 and "\n" not in "".join(words)
    # A line file holds the mark itself: it reads as the same ids.
    marked = "Ann: Where are you? ⏎ Bob: at home ⏎ Ann: ok"
    np.testing.assert_array_equal(tokenizer.encode(tf.constant([dialogue]), 64),
                                  tokenizer.encode(tf.constant([marked]), 64))
    words_tokenizer = WordTokenizer(["Ann", ":", "Bob", "ok", LINE_BREAK])
    ids = words_tokenizer.encode(tf.constant([dialogue]), 64)
    assert ids.numpy()[0].tolist().count(words_tokenizer.words.index(LINE_BREAK) + 4) == 2
    decoded = words_tokenizer.decode(ids, source=tf.constant([dialogue])).numpy()[0].decode()
    assert decoded == dialogue.replace("\r\n", "\n")
