"""Corpus metrics of detokenized text: BLEU, chrF, ROUGE, and perplexity.

BLEU and ROUGE come from keras-hub; chrF, which keras-hub lacks, is written
here. All are tested against the reference tools (sacrebleu, rouge-score):

- `corpus_bleu`: keras-hub's `Bleu` counts the n-grams (its default
  tokenizer is sacrebleu's "13a"); its own score has no smoothing, so the
  score is computed from its counts with sacrebleu's default exponential
  smoothing, which differs only when a whole corpus has no match of some
  n-gram order.
- `corpus_chrf`: sacrebleu's default chrF (character 6-grams, beta 2,
  whitespace ignored, statistics summed over the corpus).
- `corpus_rouge`: ROUGE-1, -2 and -L from keras-hub's `RougeN` / `RougeL`
  (which run rouge-score per text; F1 averaged over texts, Porter stemming
  on by default, as summarization papers report it), and ROUGE-Lsum, which
  keras-hub lacks, from rouge-score itself over the texts split into
  sentences (`split_sentences`); fractions in [0, 1] like rouge-score's.

Beside ROUGE, `summary_statistics` says how a summary was made: the share of
its n-grams not in the source (a copy model can buy ROUGE by copying), its
repeated trigrams and its length.
"""

import collections
import math
import re

import numpy as np

from keras_seq2seq.metrics.sequence import exact_match


def _check(hypotheses, references):
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not references:
        raise ValueError("no references to compare with")
    return hypotheses, references


def corpus_bleu(hypotheses, references, max_order=4):
    """Corpus BLEU in [0, 100], as `sacrebleu.corpus_bleu(hypotheses, [references])`."""
    import keras_hub

    hypotheses, references = _check(hypotheses, references)
    bleu = keras_hub.metrics.Bleu(max_order=max_order)
    with np.errstate(divide="ignore"):  # its own (unused) score divides by 0 on empty output
        bleu.update_state([[r] for r in references], hypotheses)
    # The counts keras-hub keeps; the score as sacrebleu computes it from them.
    correct = bleu._matches.numpy().astype(np.float64)
    total = bleu._possible_matches.numpy().astype(np.float64)
    sys_len = float(bleu._translation_length.numpy())
    ref_len = float(bleu._reference_length.numpy())
    if not correct.any():
        return 0.0
    precisions = np.zeros(max_order)
    smooth = 1.0
    for n in range(max_order):
        if total[n] == 0:
            break
        if correct[n] == 0:
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    brevity = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len else 0.0)
    logs = [math.log(p) if p > 0 else -9999999999 for p in precisions]
    return brevity * math.exp(sum(logs) / max_order)


def corpus_chrf(hypotheses, references, char_order=6, beta=2.0):
    """Corpus chrF in [0, 100], as `sacrebleu.corpus_chrf(hypotheses, [references])`."""
    hypotheses, references = _check(hypotheses, references)
    stats = np.zeros((char_order, 3))  # per order: hypothesis, reference, matching n-grams
    for hypothesis, reference in zip(hypotheses, references):
        h, r = "".join(hypothesis.split()), "".join(reference.split())
        for n in range(1, char_order + 1):
            h_grams = collections.Counter(h[i : i + n] for i in range(len(h) - n + 1))
            r_grams = collections.Counter(r[i : i + n] for i in range(len(r) - n + 1))
            stats[n - 1] += (sum(h_grams.values()), sum(r_grams.values()),
                             sum((h_grams & r_grams).values()))
    # Precision and recall averaged over the orders that occur on both sides.
    present = (stats[:, 0] > 0) & (stats[:, 1] > 0)
    if not present.any():
        return 0.0
    precision = np.mean(stats[present, 2] / stats[present, 0])
    recall = np.mean(stats[present, 2] / stats[present, 1])
    if precision + recall == 0:
        return 0.0
    factor = beta**2
    return 100.0 * (1 + factor) * precision * recall / (factor * precision + recall)


def split_sentences(text):
    """`text` with one sentence a line, as rouge-score's ROUGE-Lsum wants it:
    a break after ".", "!" or "?" followed by a space, and at line breaks.
    (Papers split with NLTK's punkt, whose model is a download; on SAMSum's
    summaries, mostly one or two plain sentences, the two agree.)"""
    return "\n".join(s for s in re.split(r"(?<=[.!?])\s+|\n", text.strip()) if s)


def corpus_rouge(hypotheses, references, use_stemmer=True):
    """ROUGE-1, -2, -L and -Lsum F1 averaged over texts, in [0, 1]."""
    import keras_hub
    from rouge_score import rouge_scorer

    hypotheses, references = _check(hypotheses, references)
    scores = {}
    for name, metric in (("rouge1", keras_hub.metrics.RougeN(1, use_stemmer=use_stemmer)),
                         ("rouge2", keras_hub.metrics.RougeN(2, use_stemmer=use_stemmer)),
                         ("rougeL", keras_hub.metrics.RougeL(use_stemmer=use_stemmer))):
        metric.update_state(references, hypotheses)
        scores[name] = float(metric.result()["f1_score"])
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=use_stemmer)
    scores["rougeLsum"] = float(np.mean([
        scorer.score(split_sentences(r), split_sentences(h))["rougeLsum"].fmeasure
        for h, r in zip(hypotheses, references)]))
    return scores


def novel_ngram_rate(summaries, sources, n=2):
    """The share of the n-grams of `summaries` that their own source lacks
    (rouge-score's tokens: lowercased runs of letters and digits)."""
    from rouge_score.tokenizers import DefaultTokenizer

    tokenize = DefaultTokenizer(use_stemmer=False).tokenize
    total = novel = 0
    for summary, source in zip(summaries, sources):
        source_words = tokenize(source)
        source_grams = {tuple(source_words[i: i + n]) for i in range(len(source_words) - n + 1)}
        words = tokenize(summary)
        for i in range(len(words) - n + 1):
            novel += tuple(words[i: i + n]) not in source_grams
            total += 1
    return novel / total if total else 0.0


def distinct_ngrams(texts, n=1):
    """Distinct-n (Li et al. 2016): the number of different n-grams over all
    `texts` divided by their total (whitespace-separated words); the
    diversity of a model's responses."""
    grams = [tuple(words[i: i + n]) for words in (t.split() for t in texts)
             for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def summary_statistics(summaries, sources):
    """How summaries were made: novel unigram and bigram rates (against each
    summary's source), repeated trigram rate, and mean length in words."""
    summaries, sources = list(summaries), list(sources)
    return {
        "novel_unigrams": novel_ngram_rate(summaries, sources, 1),
        "novel_bigrams": novel_ngram_rate(summaries, sources, 2),
        "repeated_trigrams": repeated_ngram_rate(summaries, 3),
        "mean_words": float(np.mean([len(s.split()) for s in summaries])) if summaries else 0.0,
    }


def perplexity(model, dataset):
    """exp of the mean token negative log-likelihood of teacher-forced targets.

    Args:
        model: a `SequenceModel` whose call gives logits [B, T, outputs]
            (or log-probabilities, as `PointerGenerator`'s: their softmax is
            the same distribution).
        dataset: batches `(inputs, target_ids)`, 0-padded.
    """
    import keras_hub
    import tensorflow as tf

    from keras_seq2seq.text import UNK_ID

    metric = keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=0)
    for inputs, targets in dataset:
        # Models that copy are scored as trained: without `<unk>` targets.
        weights = None
        if model.copies_source:
            weights = tf.cast(tf.not_equal(targets, UNK_ID), tf.float32)
        targets = model.target_index(targets)  # labels as the logits count them
        metric.update_state(targets, model(inputs, training=False), sample_weight=weights)
    return float(metric.result())


def repeated_ngram_rate(texts, n=3):
    """The share of the n-grams of `texts` that repeat an earlier n-gram of
    the same text (whitespace-separated words): the repetition that coverage
    is meant to remove (See et al. 2017, Figure 4)."""
    total = repeated = 0
    for text in texts:
        words = text.split()
        seen = set()
        for i in range(len(words) - n + 1):
            gram = tuple(words[i : i + n])
            repeated += gram in seen
            seen.add(gram)
            total += 1
    return repeated / total if total else 0.0


def score_text(hypotheses, references, metrics=("bleu", "chrf", "rouge", "exact_match")):
    """The named metrics as one dict (BLEU and chrF 0-100, the others 0-1)."""
    out = {}
    for name in metrics:
        if name == "bleu":
            out["bleu"] = corpus_bleu(hypotheses, references)
        elif name == "chrf":
            out["chrf"] = corpus_chrf(hypotheses, references)
        elif name == "rouge":
            out.update(corpus_rouge(hypotheses, references))
        elif name == "exact_match":
            out["exact_match"] = exact_match(hypotheses, references)
        else:
            raise ValueError(f"unknown metric {name!r}; choose from bleu, chrf, rouge, exact_match")
    return out
