"""Lexical shortlists of several sizes against the whole vocabulary, on validation data.

    python benchmarks/shortlist_sizes.py --run runs/multi30k-de-en-attention \\
        --source ../shared/data/multi30k/val.de.gz --reference ../shared/data/multi30k/val.en.gz \\
        --sizes 10:100 20:200 50:200

For each PER_TOKEN:FREQUENT size, builds the run's shortlist from its
training files (`keras-seq2seq export --shortlist PER_TOKEN
--shortlist-frequent FREQUENT`) and translates the source file with the
run's beam search in the process (requests of 32 similar-length lines, as
`translate_texts` batches them): BLEU and chrF (sacrebleu), how many
translations differ from the whole vocabulary's, what share of the
reference's tokens the shortlist of their own sentence holds, and how many
outputs a request scores (of one line; of 32 lines in file order). Choose
the size here, on validation; time it with `serving_speed.py --shortlist`.
Prints one JSON line per size.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.common import machine, request_batches  # noqa: E402
from keras_seq2seq.data import iter_lines  # noqa: E402
from keras_seq2seq.export import RunFolder  # noqa: E402
from keras_seq2seq.tasks import translate_texts  # noqa: E402
from keras_seq2seq.text import PAD_ID  # noqa: E402


def quality(translations, references):
    import sacrebleu

    return {"bleu": round(sacrebleu.corpus_bleu(translations, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(translations, [references]).score, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained text run folder")
    parser.add_argument("--source", required=True, help="validation source lines")
    parser.add_argument("--reference", required=True, help="their reference translations")
    parser.add_argument("--sizes", nargs="+", default=["10:100", "20:200", "50:200"],
                        metavar="PER_TOKEN:FREQUENT")
    args = parser.parse_args()
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    sources, references = list(iter_lines(args.source)), list(iter_lines(args.reference))
    folder = RunFolder(args.run)
    translator = folder.load()
    whole = translate_texts(translator.serving_default, sources, 32)
    print(json.dumps({"run": args.run, "source": args.source, "shortlist": None,
                      **quality(whole, references), "machine": machine()}), flush=True)
    train_source, train_target = folder.training_files()
    # Each validation pair's source ids and reference output indices, once.
    text = tf.constant(sources)
    source_ids = translator.encode_text(text).numpy()
    reference_ids = translator.model.target_index(
        translator.encode_target(text, tf.constant(references))).numpy()
    reference_ids = [ids[ids != PAD_ID] for ids in reference_ids]
    for size in args.sizes:
        per_token, frequent = (int(n) for n in size.split(":"))
        shortlisted = translator.with_shortlist(iter_lines(train_source),
                                                iter_lines(train_target), per_token, frequent)
        shortlist = shortlisted.shortlist
        translations = translate_texts(shortlisted.serving_default, sources, 32)

        def outputs(lines):
            return shortlist.outputs(translator.encode_text(tf.constant(lines))).numpy()

        # One sentence's shortlist (its padding adds nothing: row 0 lists padding).
        alone = [shortlist.outputs(ids[None]).numpy() for ids in source_ids]
        held = sum(int(np.isin(target, listed).sum())
                   for target, listed in zip(reference_ids, alone))
        counted = sum(len(target) for target in reference_ids)
        print(json.dumps({
            "run": args.run, "source": args.source,
            "shortlist": {"per_token": per_token, "frequent": len(shortlist.frequent)},
            **quality(translations, references),
            "translations_that_differ": sum(a != b for a, b in zip(translations, whole)),
            "sentences": len(sources),
            "reference_tokens_held": round(held / counted, 4),
            "outputs_scored_batch1_mean": round(float(np.mean([len(o) for o in alone])), 1),
            "outputs_scored_batch32_file_order_mean": round(float(np.mean(
                [len(outputs(batch)) for batch in request_batches(sources, 32, sort=False)])),
                1),
            "output_vocabulary": translator.model.target_size,
            "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
