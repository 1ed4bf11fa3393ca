"""BLEU, chrF and ROUGE against the reference tools (sacrebleu, rouge-score)."""

import random

import numpy as np
import pytest

from keras_seq2seq.data.dates import generate_date_pairs
from keras_seq2seq.metrics import (
    corpus_bleu,
    corpus_chrf,
    corpus_rouge,
    distinct_ngrams,
    score_text,
    split_sentences,
    summary_statistics,
)

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

SENTENCES = [
    "A man in an orange hat starring at something.",
    "Two young, White males are outside near many bushes.",
    "Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen.",
    "A little girl climbing into a wooden playhouse!",
    "Un homme (en chemise) joue de la guitare — très bien.",
    "Five people in winter jackets and helmets stand in the snow, with snowmobiles in the background.",
    "People are fixing the roof of a house 2,500 ft. up; 3.5 m/s wind.",
    "😀 emoji and “quotes” & <tags>",
]


def _corpora(seed, count=300):
    rng = random.Random(seed)
    references = [rng.choice(SENTENCES) for _ in range(count)]
    hypotheses = []
    for r in references:
        words = r.split()
        for _ in range(rng.randrange(4)):
            i = rng.randrange(len(words))
            action = rng.random()
            if action < 0.4:
                words[i] = rng.choice(["the", "a", "dog", "Männer", ",", "."])
            elif action < 0.7 and len(words) > 1:
                del words[i]
            else:
                words.insert(i, rng.choice(["very", "big", "!"]))
        hypotheses.append(" ".join(words))
    return hypotheses, references


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleu_and_chrf_equal_sacrebleu(seed):
    hypotheses, references = _corpora(seed)
    assert corpus_bleu(hypotheses, references) == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=0.01)
    assert corpus_chrf(hypotheses, references) == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=0.01)


def test_bleu_and_chrf_edge_cases_equal_sacrebleu():
    cases = [
        (["a man is running"], ["a man is running fast"]),          # brevity penalty
        (["x y z w v", "q r s t"], ["a b c d e", "the dog"]),         # nothing matches
        (["the dog is big and", "a cat"], ["the dog is small and", "a cat sleeps"]),  # no 4-gram match: smoothing
        ([""], ["something"]),                                        # empty hypothesis
        (["2007-12-25", "1999-03-03"], ["2007-12-25", "1999-03-13"]),  # digits and dashes
    ]
    dates = generate_date_pairs(50, seed=0)
    cases.append(([t for _, t in dates], [t for _, t in reversed(dates)]))
    for hypotheses, references in cases:
        assert corpus_bleu(hypotheses, references) == pytest.approx(
            sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=0.01), hypotheses
        assert corpus_chrf(hypotheses, references) == pytest.approx(
            sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=0.01), hypotheses


@pytest.mark.parametrize("use_stemmer", [True, False])
def test_rouge_equals_rouge_score(use_stemmer):
    hypotheses, references = _corpora(3, count=100)
    # Summaries of several sentences, for ROUGE-Lsum.
    hypotheses = [h + " " + hypotheses[i - 1] for i, h in enumerate(hypotheses)]
    references = [r + " " + references[i - 2] for i, r in enumerate(references)]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"],
                                      use_stemmer=use_stemmer)
    expected = [scorer.score(r, h) for r, h in zip(references, hypotheses)]
    got = corpus_rouge(hypotheses, references, use_stemmer=use_stemmer)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert got[name] == pytest.approx(np.mean([e[name].fmeasure for e in expected]), abs=1e-4)
    # ROUGE-Lsum: rouge-score on the texts one sentence a line.
    split = [scorer.score(split_sentences(r), split_sentences(h))["rougeLsum"].fmeasure
             for r, h in zip(references, hypotheses)]
    assert got["rougeLsum"] == pytest.approx(np.mean(split), abs=1e-6)
    # Sentence-level LCS differs from the whole text's once there are two sentences.
    assert got["rougeLsum"] != pytest.approx(got["rougeL"], abs=1e-3)


def test_sentences_split_after_end_marks_and_at_line_breaks():
    assert split_sentences("Tom is late. He'll call Ann!  Why?\nOk") == \
        "Tom is late.\nHe'll call Ann!\nWhy?\nOk"
    assert split_sentences("It costs 2.50 dollars.") == "It costs 2.50 dollars."


def test_summary_statistics_count_novel_and_repeated_ngrams():
    sources = ["Ann: I'm at the station\nBob: ok, wait there"]
    stats = summary_statistics(["Ann is at the station, Bob says wait wait wait wait"], sources)
    words = "ann is at the station bob says wait wait wait wait".split()
    source_words = "ann i m at the station bob ok wait there".split()
    assert stats["novel_unigrams"] == pytest.approx(
        sum(w not in source_words for w in words) / len(words))
    bigrams = list(zip(words, words[1:]))
    source_bigrams = set(zip(source_words, source_words[1:]))
    assert stats["novel_bigrams"] == pytest.approx(
        sum(b not in source_bigrams for b in bigrams) / len(bigrams))
    # "wait wait wait" twice among 9 trigrams: one repeat.
    assert stats["repeated_trigrams"] == pytest.approx(1 / 9)
    assert stats["mean_words"] == 11


def test_score_text_and_mismatched_lengths():
    scores = score_text(["a b c d", "x"], ["a b c d", "y"])
    assert scores["exact_match"] == 0.5 and set(scores) == {
        "bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match"}
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        score_text(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unknown metric"):
        score_text(["a"], ["a"], metrics=["meteor"])


@pytest.mark.parametrize("order", [1, 2])
def test_bleu_of_lower_orders_equals_sacrebleu(order):
    from sacrebleu.metrics import BLEU

    hypotheses, references = _corpora(4, count=200)
    expected = BLEU(max_ngram_order=order).corpus_score(hypotheses, [references]).score
    assert corpus_bleu(hypotheses, references, max_order=order) == pytest.approx(expected, abs=0.01)


def test_distinct_ngrams_count_types_over_tokens():
    texts = ["i am fine .", "i am ok", ""]
    assert distinct_ngrams(texts, 1) == pytest.approx(5 / 7)   # i am fine . i am ok
    assert distinct_ngrams(texts, 2) == pytest.approx(4 / 5)   # "i am" twice
    assert distinct_ngrams([], 2) == 0.0
