"""Named recipes: data, model and training settings in one place.

A recipe's measured scores are filled in only from a run that measured them.
"""

import dataclasses
import functools
import os

from keras_seq2seq.data import write_dates_dataset
from keras_seq2seq.data.text_files import DataError


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Settings:
    """What every recipe has (see `Recipe` and `PointerRecipe`)."""

    name: str
    description: str
    model: str
    model_config: dict = dataclasses.field(default_factory=dict)
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    clipnorm: float = 5.0
    seed: int = 0
    measured: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe(_Settings):
    """Everything `keras-seq2seq train --recipe NAME` needs for a text model.

    Args:
        name: the recipe's name on the command line.
        description: one line for `keras-seq2seq zoo`.
        prepare_data: `(data_dir, work_dir) -> {split: (source, target)}`
            with splits `train`, `val`, `test`.
        model: model class name in `keras_seq2seq.models.MODELS`.
        model_config: keyword arguments of the model (vocabulary size aside).
        tokenizer: `"sentencepiece"` (subwords, `SubwordTokenizer`) or
            `"words"` (`WordTokenizer`: the most frequent words, extended
            ids for copying).
        vocabulary_size: SentencePiece vocabulary size (a soft limit), or
            the number of words (specials included).
        min_word_count: words seen fewer times stay out of the vocabulary.
        split_digits: tokenize numbers digit by digit.
        side_vocabularies: give the model each side's own vocabulary, the
            ids its training text uses (`text.vocabulary_in_use`), as
            OpenNMT does: a smaller output layer and softmax.
        batch_size, epochs, learning_rate, clipnorm: Adam and `fit` settings
            (clipnorm: global gradient norm clipping).
        metric: the held-out metric reported (`"exact_match"` or `"bleu"`).
        seed: seeds weights, dropout and shuffling.
        decay_learning_rate: cosine decay to 5% over the planned steps
            (otherwise constant).
        measured: measured scores for `zoo`, as printed by a run.
    """

    prepare_data: object
    model: str = "attention_seq2seq"
    tokenizer: str = "sentencepiece"
    vocabulary_size: int = 8000
    min_word_count: int = 1
    split_digits: bool = False
    side_vocabularies: bool = False
    label_smoothing: float = 0.0
    max_source_length: int = 100
    max_target_length: int = 100
    metric: str = "exact_match"
    decay_learning_rate: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class PointerRecipe(_Settings):
    """A pointer-network recipe: a generated geometric task and its model.

    Args:
        name: the recipe's name on the command line.
        description: one line for `keras-seq2seq zoo`.
        problem: `"convex_hull"`, `"tsp"` or `"sort"`
            (`keras_seq2seq.data.points`).
        points: points per instance.
        model_config: keyword arguments of `PointerNetwork`.
        train_size, val_size: generated instances (seeded by `seed`).
        learning_rate: initial Adam learning rate; it decays (cosine, to 5%)
            over the planned epochs.
        beam_size: beam width of the export.
        measured: measured scores for `zoo`, as printed by a run.
    """

    problem: str
    points: int
    model: str = "pointer_network"
    train_size: int = 500_000
    val_size: int = 1000
    batch_size: int = 128
    clipnorm: float = 2.0
    beam_size: int = 5


def _pointer_recipe(problem, n, **settings):
    title = {"convex_hull": "convex hull", "tsp": "travelling salesman"}[problem]
    name = f"{problem.replace('_', '-')}-{n}"
    # The glimpse (an attention read of the encoded points before pointing)
    # measured +2 points of convex-hull-5 accuracy at equal training time.
    model_config = dict(units=128, glimpse="bahdanau", mask_chosen=True,
                        permutation=problem == "tsp")
    model_config.update(settings.pop("model_config", {}))
    return PointerRecipe(
        name=name,
        description=f"{title} of {n} points in the unit square (generated), pointer network",
        problem=problem,
        points=n,
        model_config=model_config,
        **settings,
    )


def _generated_dates(data_dir, work_dir, train=20_000):
    return write_dates_dataset(os.path.join(work_dir, "data"), train=train, seed=0)


def _multi30k(data_dir, work_dir, source, target):
    return _files_in(data_dir, {
        split: (f"{prefix}.{source}.gz", f"{prefix}.{target}.gz")
        for split, prefix in (("train", "train"), ("val", "val"), ("test", "test_2016_flickr"))
    })


def _multi30k_copy_augmented(data_dir, work_dir, source, target):
    """Multi30k, with `name_augmented_pairs` added to the training split."""
    from keras_seq2seq.data import iter_lines
    from keras_seq2seq.data.names import name_augmented_pairs

    paths = _multi30k(data_dir, work_dir, source, target)
    folder = os.path.join(work_dir, "data")
    os.makedirs(folder, exist_ok=True)
    augmented = tuple(os.path.join(folder, f"train.{side}") for side in (source, target))
    if not all(os.path.exists(p) for p in augmented):
        pairs = list(zip(*(iter_lines(p) for p in paths["train"])))
        # Not seed 0, the probes' (which skip any name seen in training anyway).
        pairs += name_augmented_pairs(pairs, seed=100)
        for path, side in zip(augmented, (0, 1)):
            with open(path + ".part", "w", encoding="utf-8") as f:
                f.write("".join(pair[side] + "\n" for pair in pairs))
            os.replace(path + ".part", path)
    return dict(paths, train=augmented)


def _files_in(data_dir, names):
    if data_dir is None:
        raise DataError("this recipe needs --data DIR")
    paths = {}
    for split, (src, tgt) in names.items():
        pair = tuple(os.path.join(data_dir, n) for n in (src, tgt))
        for p in pair:
            if not os.path.exists(p):
                raise DataError(f"{p}: no such file (expected in --data {data_dir})")
        paths[split] = pair
    return paths


# The Multi30k recipes' shared sizes (OpenNMT-py's in ../shared/peers) and training.
_MULTI30K_MODEL = dict(embedding_dim=256, units=256, encoder_layers=2, decoder_layers=2,
                       bidirectional=True, input_feeding=True, dropout=0.3, init_scale=0.1)
_MULTI30K_TRAINING = dict(batch_size=64, epochs=15, learning_rate=1e-3, clipnorm=5.0,
                          label_smoothing=0.1, decay_learning_rate=True, max_source_length=100,
                          max_target_length=100, metric="bleu")

RECIPES = {
    "dates-attention": Recipe(
        name="dates-attention",
        description="date normalisation (generated): written dates -> ISO, "
        "bi-LSTM 128 + Luong general attention",
        prepare_data=_generated_dates,
        model_config=dict(
            embedding_dim=64,
            units=128,
            attention="luong_general",
            # Measured on seeds 0-2: without input feeding, held-out exact
            # match is at least as high and each step is cheaper.
            input_feeding=False,
        ),
        vocabulary_size=400,
        split_digits=True,
        batch_size=64,
        epochs=10,
        learning_rate=3e-3,
        max_source_length=48,
        max_target_length=24,
        metric="exact_match",
        # From `keras-seq2seq quickstart` in a fresh virtual environment.
        measured={
            "held-out exact match": "100.00% greedy",
            "training": "1.8 min",
            "machine": "2 CPU cores, no GPU",
        },
    ),
    **{
        f"multi30k-{source}-{target}-attention": Recipe(
            name=f"multi30k-{source}-{target}-attention",
            description=f"Multi30k {source}->{target} (--data DIR with train/val/"
            "test_2016_flickr .gz files): 2x256 bi-LSTM, 2x256 LSTM, Luong general "
            "attention with input feeding, joint SentencePiece 8k with a vocabulary "
            "per side",
            prepare_data=functools.partial(_multi30k, source=source, target=target),
            model_config=dict(_MULTI30K_MODEL, attention="luong_general"),
            vocabulary_size=8000,
            # Multi30k English uses 3,853 of the 8,000 joint pieces, German 5,304.
            side_vocabularies=True,
            **_MULTI30K_TRAINING,
            measured={
                # benchmarks/side_by_side.py: OpenNMT-py 36.74 / 56.37 in the same run.
                "test_2016_flickr": "BLEU 39.50, chrF 58.38 beam 5 (19.9 min, mixed_bfloat16); "
                "BLEU 40.28, chrF 59.63 with --epochs 22 (29.7 min)",
                "machine": "2 CPU cores, no GPU",
            } if (source, target) == ("de", "en") else {},
        )
        for source, target in (("de", "en"), ("en", "de"))
    },
    "multi30k-de-en-pointer-generator": Recipe(
        name="multi30k-de-en-pointer-generator",
        description="Multi30k de->en (--data DIR): the attention recipe's sizes as a "
        "pointer-generator with coverage over the 10,000 most frequent words, copying "
        "the rest (names, numbers, rare words) from the source",
        # Captions hardly ever name anyone: training adds pairs with invented
        # names put in (`data.names.name_augmented_pairs`: 1,664 pairs).
        prepare_data=functools.partial(_multi30k_copy_augmented, source="de", target="en"),
        model="pointer_generator",
        model_config=dict(
            _MULTI30K_MODEL,
            # See et al.'s additive attention with the coverage vector as input.
            attention="coverage",
            # Not tuned. In translation one source word may rightly align to
            # several target words, so the penalty is kept weak (See et al.
            # used 1.0 for summarisation).
            coverage_loss_weight=0.1,
        ),
        # Words seen in training beyond these are copied: Multi30k's joint
        # de+en word list at 10,000 keeps words seen about 3 times or more,
        # leaving 4.6% of German and 2.3% of English test words outside.
        tokenizer="words",
        vocabulary_size=10_000,
        **_MULTI30K_TRAINING,
        # benchmarks/pointer_generator.py, 351 name probes through the export.
        measured={
            "test_2016_flickr": "BLEU 36.27, chrF 54.05 beam 5 (20.4 min, mixed_bfloat16)",
            "invented names verbatim": "94.6%",
            "machine": "2 CPU cores, no GPU",
        },
    ),
    "convex-hull-5": _pointer_recipe(
        "convex_hull", 5, epochs=7, learning_rate=2e-3,
        # benchmarks/pointer_networks.py, 1,000 fresh instances.
        measured={"accuracy": "96.0% beam 5 (paper 92.0%)", "area coverage": "99.96%",
                  "training": "9.1 min", "machine": "2 CPU cores, no GPU"},
    ),
    "convex-hull-10": _pointer_recipe(
        "convex_hull", 10, epochs=8, learning_rate=2e-3,
        measured={"accuracy": "89.3% beam 5 (paper 87.0%)", "area coverage": "99.93%",
                  "training": "18.6 min", "machine": "2 CPU cores, no GPU"},
    ),
    "tsp-5": _pointer_recipe(
        "tsp", 5, epochs=5, learning_rate=2e-3,
        measured={"mean tour": "2.158 beam 5, optimum 2.156 (+0.10%); invalid tours 0",
                  "training": "7.2 min", "machine": "2 CPU cores, no GPU"},
    ),
    "tsp-10": _pointer_recipe(
        "tsp", 10, train_size=300_000, epochs=10, learning_rate=2e-3,
        measured={"mean tour": "2.900 beam 5, optimum 2.883 (+0.59%); invalid tours 0",
                  "training": "12.8 min", "machine": "2 CPU cores, no GPU"},
    ),
}


def get_recipe(name):
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; `keras-seq2seq zoo` lists them: {sorted(RECIPES)}")
    return RECIPES[name]
