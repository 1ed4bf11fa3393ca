"""`TextTask`: text in, text out (translation, normalisation, spelling)."""

import itertools
import os

from keras_seq2seq.data import (
    check_parallel_files,
    iter_lines,
    parallel_text_dataset,
    text_line_dataset,
    write_dates_dataset,
)
from keras_seq2seq.data.atomic import atomic_path
from keras_seq2seq.data.pipeline import batches_per_epoch, length_report
from keras_seq2seq.data.records import write_parallel_files
from keras_seq2seq.distribute import shard_batches
from keras_seq2seq.errors import RecipeError
from keras_seq2seq.export import Translator
from keras_seq2seq.tasks.base import Task
from keras_seq2seq.text import (
    SubwordTokenizer,
    WordTokenizer,
    build_word_vocabulary,
    character_tokenizer,
    load_tokenizer,
    train_sentencepiece,
    vocabulary_in_use,
)

# Training files of up to this much text (gzipped ones counted at 4 times
# their size) are tokenized once and their ids kept for later epochs.
CACHED_TEXT_BYTES = 256 * 2 ** 20


class TextTask(Task):
    """A recipe whose inputs and outputs are text.

    Data: generated (`data.generate: dates`), or per split a pair of
    parallel line files or one record file (TSV, CSV, JSONL); plain or
    gzipped. Tokenizer: SentencePiece subwords (joint), characters
    (SentencePiece's char model), or words (`WordTokenizer`, extended ids for
    copying). The model is any text `SequenceModel` of `models.MODELS`; the
    exportable a `Translator`; the metric exact match, BLEU or chrF (by
    sacrebleu's definition), or ROUGE (rouge-score's, stemmed) on the test split (the validation split if the
    recipe has none).
    """

    task_model_options = ("vocabulary_size", "source_vocabulary", "target_vocabulary")

    def prepare(self, work_dir, on_bad_line="fail", strategy=None):
        self.strategy = strategy
        self.paths = self._data_files(work_dir, on_bad_line)
        max_chars = self.recipe.data["max_line_chars"]
        reports = {split: check_parallel_files(*paths, on_bad_line=on_bad_line,
                                               max_line_chars=max_chars)
                   for split, paths in self.paths.items()}
        self.skipped = {f"{split} records": (
            f"Skipping {len(errors)} bad {split} records of {self.recipe.data[split]['file']} "
            f"(the first: {errors[0]})") for split, errors in self.bad_records.items() if errors}
        for split, report in reports.items():
            skipped = report["pairs"] - report["usable"]
            if skipped:
                self.skipped[split] = (f"Skipping {skipped} of {report['pairs']} {split} pairs: "
                                       f"{report['blank']} blank, {report['undecodable']} not "
                                       f"UTF-8, {report['overlong']} over {max_chars} characters")
        if self.init_from is not None:
            # Fine-tuning keeps the vocabulary the weights were trained with.
            self.tokenizer = load_tokenizer(self.init_from.path)
        else:
            self.tokenizer = self._build_tokenizer(work_dir)
        self.length_note = self._length_note()
        return self

    def notes(self):
        return list(self.skipped.values()) + ([self.length_note] if self.length_note else [])

    def _length_note(self):
        """What the token limits do to the training pairs, counted (never silent)."""
        training = self.recipe.training
        limits = (training["max_source_length"], training["max_target_length"])
        report = length_report(*self.paths["train"], self.tokenizer, *limits,
                               max_line_chars=self.recipe.data["max_line_chars"],
                               truncate_source=training["truncate_source"])
        self.train_length_counts = report["length_counts"]
        sources = f"{report['long_sources']} sources over {limits[0]} tokens"
        targets = f"{report['long_targets']} targets over {limits[1]}"
        if training["truncate_source"]:
            notes = []
            if report["long_sources"]:
                notes.append(f"Truncating {sources} (of {report['pairs']} train pairs)")
            if report["long_targets"]:
                notes.append(f"dropping {report['long_targets']} of {report['pairs']} train "
                             f"pairs: {targets}")
            return "; ".join(notes)
        if report["long_pairs"]:
            return (f"Dropping {report['long_pairs']} of {report['pairs']} train pairs over the "
                    f"length limits: {sources}, {targets}")
        return ""

    @property
    def held_out(self):
        """The split `evaluate` scores: test if the recipe has one, else val."""
        return "test" if "test" in self.paths else "val"

    def datasets(self):
        training = self.recipe.training

        def batches(split, shuffle):
            return shard_batches(parallel_text_dataset(
                *self.paths[split],
                self.tokenizer,
                batch_size=training["batch_size"],
                batch_tokens=training["batch_tokens"],
                max_source_length=training["max_source_length"],
                max_target_length=training["max_target_length"],
                shuffle=shuffle,
                seed=training["seed"],
                check_files=False,
                max_line_chars=self.recipe.data["max_line_chars"],
                extended_ids=self.model_class.copies_source,
                truncate_source=training["truncate_source"],
                cache=shuffle and self._fits_in_memory(split),
            ), self.strategy)

        return batches("train", shuffle=True), batches("val", shuffle=False)

    def _fits_in_memory(self, split):
        """Whether a split's tokenized pairs can be kept for later epochs:
        files of up to `CACHED_TEXT_BYTES` of text together (their ids take
        about as many bytes)."""
        return sum(os.path.getsize(path) * (4 if path.endswith(".gz") else 1)
                   for path in set(self.paths[split])) <= CACHED_TEXT_BYTES

    @property
    def steps_per_epoch(self):
        # Counted bucket by bucket, as the pipeline batches the kept pairs.
        training = self.recipe.training
        return batches_per_epoch(self.train_length_counts, training["batch_size"],
                                 training["batch_tokens"])

    def new_model(self):
        return self._construct(vocabulary_size=self.tokenizer.vocab_size,
                               **self._side_vocabularies())

    def trial_arguments(self):
        return {"vocabulary_size": 8}

    def exportable(self, model):
        training, decoding = self.recipe.training, self.recipe.decoding
        return Translator(
            model, self.tokenizer, training["max_source_length"], training["max_target_length"],
            beam_size=decoding["beam_size"], alpha=decoding["alpha"], beta=decoding["beta"],
            no_repeat_ngram_size=decoding["no_repeat_ngram_size"],
            check_texts=list(itertools.islice(iter_lines(self.paths[self.held_out][0]), 8)),
        )

    def with_export_settings(self, exportable):
        exportable = super().with_export_settings(exportable)
        settings = self.recipe.export
        if not settings["shortlist"]:
            return exportable
        return exportable.with_shortlist(*map(iter_lines, self.paths["train"]),
                                         per_token=settings["shortlist"],
                                         frequent=settings["shortlist_frequent"])

    # Responses are also sampled for the "response" metric: nucleus sampling
    # (Holtzman et al. 2020) at this top_p, with a fixed seed.
    response_top_p = 0.9

    def evaluate(self, exportable):
        """On the held-out split: exact match (greedy); BLEU and chrF, or
        ROUGE and summary statistics (beam search); or, for responses,
        BLEU-1/2 and distinct-1/2 of beam search and of sampling."""
        from keras_seq2seq.metrics import corpus_rouge, exact_match, score_text, summary_statistics

        source, target = self.paths[self.held_out]
        references = list(iter_lines(target))
        metric = self.recipe.metric or "bleu"
        if metric == "exact_match":
            hypotheses = translate_file(exportable, source)
            return {"split": self.held_out, "search": "greedy",
                    "exact_match": exact_match(hypotheses, references)}
        hypotheses = translate_file(exportable, source, beam=True)
        if metric == "response":
            sampled = translate_file(exportable, source, top_p=self.response_top_p)
            return {"split": self.held_out, "search": f"beam {exportable.beam_size}",
                    "sampling": f"top_p {self.response_top_p}, seed 0",
                    **response_scores(hypotheses, references, "beam"),
                    **response_scores(sampled, references, "sampled")}
        if metric == "rouge":
            # As summarization papers report them: F1 x 100, stemmed.
            scores = {name: 100 * value for name, value in corpus_rouge(hypotheses, references).items()}
            scores.update(summary_statistics(hypotheses, iter_lines(source)))
            return {"split": self.held_out, "search": f"beam {exportable.beam_size}", **scores}
        scores = score_text(hypotheses, references, ("bleu", "chrf"))
        return {"split": self.held_out, "search": f"beam {exportable.beam_size}",
                "bleu": scores["bleu"], "chrf": scores["chrf"]}

    def describe(self, scores):
        where = f"{scores['split']} ({self.paths[scores['split']][0]}, {scores['search']})"
        if "exact_match" in scores:
            return f"Held-out exact match, {where}: {scores['exact_match']:.2%}"
        if "rouge1" in scores:
            return (f"{where}: ROUGE-1 {scores['rouge1']:.2f}, ROUGE-2 {scores['rouge2']:.2f}, "
                    f"ROUGE-L {scores['rougeL']:.2f}, ROUGE-Lsum {scores['rougeLsum']:.2f} "
                    f"(rouge-score, stemmed); novel bigrams {scores['novel_bigrams']:.1%}, "
                    f"repeated trigrams {scores['repeated_trigrams']:.1%}, "
                    f"{scores['mean_words']:.1f} words")
        if "distinct2_beam" in scores:
            return "; ".join(
                f"{name} ({how}): BLEU-1 {scores['bleu1_' + key]:.2f}, BLEU-2 "
                f"{scores['bleu2_' + key]:.2f} (sacrebleu's exponential smoothing), distinct-1 "
                f"{scores['distinct1_' + key]:.3f}, distinct-2 {scores['distinct2_' + key]:.3f}"
                for name, how, key in ((where, "beam search", "beam"),
                                       ("sampled", scores["sampling"], "sampled")))
        return f"{where}: BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f}"

    # -- data and tokenizer ------------------------------------------------

    def _data_files(self, work_dir, on_bad_line="fail"):
        """`{split: (source file, target file)}` of line files; record files'
        bad records (skipped with `on_bad_line="skip"`) in `self.bad_records`."""
        data = self.recipe.data
        folder = os.path.join(work_dir, "data")
        self.bad_records = {}
        if data["generate"] == "dates":
            return write_dates_dataset(folder, train=data["train_size"] or 20_000, seed=0)
        paths = {}
        for split in ("train", "val", "test"):
            spec = data[split]
            if not spec:
                continue
            if "file" in spec:
                self.bad_records[split] = [] if on_bad_line == "skip" else None
                paths[split] = write_parallel_files(spec, folder, split, self.bad_records[split])
            else:
                paths[split] = (spec["source"], spec["target"])
        if data["augment"] == "invented_names":
            paths["train"] = _with_invented_names(paths["train"], folder)
        return paths

    def _build_tokenizer(self, work_dir):
        """The recipe's tokenizer from both sides of the training data, or the
        one a resumed run saved."""
        settings = self.recipe.tokenizer
        cls = WordTokenizer if settings["type"] == "words" else SubwordTokenizer
        path = os.path.join(work_dir, cls.file_name)
        if os.path.exists(path):
            return cls.from_file(path)

        def sentences():
            lines = itertools.chain.from_iterable(zip(*(iter_lines(p) for p in self.paths["train"])))
            return (s for s in lines if s.strip())

        if settings["type"] == "words":
            tokenizer = WordTokenizer(build_word_vocabulary(
                sentences(), settings["vocabulary_size"], min_count=settings["min_word_count"]))
        elif settings["type"] == "characters":
            tokenizer = character_tokenizer(list(sentences()))
        else:
            try:
                tokenizer = SubwordTokenizer(train_sentencepiece(
                    sentences(), vocab_size=settings["vocabulary_size"],
                    split_digits=settings["split_digits"]))
            except ValueError as e:
                raise RecipeError(f"{self.recipe.source}: tokenizer.vocabulary_size: {e}") from None
        os.makedirs(work_dir, exist_ok=True)
        # Whole or not at all: a resumed run reads this file back.
        with atomic_path(path) as part:
            tokenizer.save(part)
        return tokenizer

    def _side_vocabularies(self):
        """Each side's ids in the training text (OpenNMT's per-side
        vocabularies over a joint SentencePiece model), if the recipe asks."""
        if not self.recipe.tokenizer["side_vocabularies"]:
            return {}
        # The lines as the training pipeline reads them.
        return {
            f"{side}_vocabulary": vocabulary_in_use(
                self.tokenizer, text_line_dataset(path).as_numpy_iterator())
            for side, path in zip(("source", "target"), self.paths["train"])
        }


def _with_invented_names(train_paths, folder):
    """The training pair files with `name_augmented_pairs` added."""
    from keras_seq2seq.data.names import name_augmented_pairs

    os.makedirs(folder, exist_ok=True)
    augmented = tuple(os.path.join(folder, f"train.augmented.{side}") for side in ("source", "target"))
    if not all(os.path.exists(p) for p in augmented):
        pairs = list(zip(*(iter_lines(p) for p in train_paths)))
        # Not seed 0, the probes' (which skip any name seen in training anyway).
        pairs += name_augmented_pairs(pairs, seed=100)
        for path, side in zip(augmented, (0, 1)):
            with atomic_path(path) as part, open(part, "w", encoding="utf-8") as f:
                f.write("".join(pair[side] + "\n" for pair in pairs))
    return augmented


def response_scores(responses, references, key):
    """BLEU-1, BLEU-2 (sacrebleu's definition: corpus statistics, exponential
    smoothing) and distinct-1, -2 of `responses`, named `NAME_key`."""
    from keras_seq2seq.metrics import corpus_bleu, distinct_ngrams

    return {f"bleu1_{key}": corpus_bleu(responses, references, max_order=1),
            f"bleu2_{key}": corpus_bleu(responses, references, max_order=2),
            f"distinct1_{key}": distinct_ngrams(responses, 1),
            f"distinct2_{key}": distinct_ngrams(responses, 2)}


def translate_file(translator, source_path, batch_size=256, beam=False, top_p=None):
    """Translations of every line of `source_path`, as a list of str: greedy,
    the export's beam search, or (`top_p`) one sample each, seed 0."""
    import tensorflow as tf

    def sample(text):
        return translator.sampling(text, tf.constant(1.0), tf.constant(0),
                                   tf.constant(top_p, tf.float32), tf.constant([0, 0]))

    search = (sample if top_p is not None else
              translator.serving_default if beam else translator.greedy)
    return translate_texts(search, list(iter_lines(source_path)), batch_size)


def translate_texts(search, lines, batch_size):
    """`search`'s translations of `lines` (str), in batches of similar length.

    Args:
        search: a text signature, `text` string [batch] -> {"translation":
            string [batch], ...}: a `Translator`'s or a loaded export's.
    """
    import tensorflow as tf

    from keras_seq2seq.decoding import translate_in_length_batches

    def translate_batch(batch):
        return [t.decode("utf-8") for t in search(text=tf.constant(batch))["translation"].numpy()]

    return translate_in_length_batches(translate_batch, lines, batch_size)
