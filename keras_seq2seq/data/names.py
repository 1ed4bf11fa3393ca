"""A generated German -> English task whose outputs must copy invented names.

Each pair fills a sentence template with names made of random syllables,
("Kalumbo fährt Fahrrad ." -> "Kalumbo rides a bike ."). The names of the
test split are drawn apart from training's and checked to occur nowhere in
it, so only a model that copies from its input can get them right.
"""

import os

import numpy as np

SYLLABLES = (
    "ka lu mbo ri ta no xe vi zu dor mi sa pe lo gra ten bi ku fa rel "
    "jo qua wen tsi or bal nek hu sim dra ly po ve gan tor mei ush cal fi ro"
).split()

# (German, English); {a} and {b} are names. Some templates reorder them.
TEMPLATES = (
    ("{a} spielt Fußball .", "{a} plays soccer ."),
    ("{a} fährt Fahrrad .", "{a} rides a bike ."),
    ("Ein Mann namens {a} liest ein Buch .", "A man named {a} reads a book ."),
    ("Eine Frau namens {a} singt .", "A woman named {a} is singing ."),
    ("{a} und {b} gehen in den Park .", "{a} and {b} walk in the park ."),
    ("{a} sieht {b} .", "{a} sees {b} ."),
    ("{b} wird von {a} gesehen .", "{a} sees {b} ."),
    ("Der Hund von {a} läuft zu {b} .", "{a} 's dog runs to {b} ."),
    ("{a} gibt {b} einen Ball .", "{a} gives {b} a ball ."),
    ("Heute besucht {a} die Stadt .", "Today {a} visits the city ."),
)


def invented_names(count, seed, exclude=()):
    """`count` distinct capitalised names of 2-3 random syllables, none in `exclude`."""
    rng = np.random.default_rng(seed)
    exclude = set(exclude)
    names = []
    seen = set()
    while len(names) < count:
        parts = rng.choice(SYLLABLES, size=rng.integers(2, 4))
        name = "".join(parts).capitalize()
        if name not in seen and name not in exclude:
            seen.add(name)
            names.append(name)
    return names


def name_pairs(count, names, seed):
    """`count` (German, English) pairs filling the templates with `names`."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        german, english = TEMPLATES[rng.integers(len(TEMPLATES))]
        a, b = rng.choice(names, size=2, replace=False)
        pairs.append((german.format(a=a, b=b), english.format(a=a, b=b)))
    return pairs


def write_names_dataset(directory, train=4000, test=500, names=3000, seed=0):
    """Writes `{train,val,test}.{de,en}` to `directory`.

    Training and validation use `names` invented names (each occurs about
    `2 * train / names` times, too rarely for most to enter a vocabulary);
    test uses other names, checked to occur nowhere in training.

    Returns:
        `{split: (source_path, target_path)}` and the test names.
    """
    os.makedirs(directory, exist_ok=True)
    train_names = invented_names(names, seed)
    test_names = invented_names(max(test // 2, 2), seed + 1, exclude=train_names)
    splits = {
        "train": name_pairs(train, train_names, seed),
        "val": name_pairs(test, train_names, seed + 2),
        "test": name_pairs(test, test_names, seed + 3),
    }
    paths = {}
    for split, pairs in splits.items():
        paths[split] = tuple(os.path.join(directory, f"{split}.{side}") for side in ("de", "en"))
        for path, side in zip(paths[split], (0, 1)):
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(pair[side] + "\n" for pair in pairs))
    return paths, test_names


# Subjects of Multi30k's German captions that a name can stand in for.
SUBJECTS = (
    "Ein kleiner Junge", "Ein kleines Mädchen", "Ein junger Mann", "Eine junge Frau",
    "Ein älterer Mann", "Eine ältere Frau", "Ein Mann", "Eine Frau", "Ein Junge",
    "Ein Mädchen", "Ein Kind",
)


def name_probes(sentences, known_words, seed=0):
    """Sentences whose subject is replaced by an invented name.

    Every sentence of `sentences` that starts with one of `SUBJECTS` followed
    by a space gets a different invented name in its place ("Ein Mann fährt
    Fahrrad." -> "Kalumbo fährt Fahrrad."). Names are checked against
    `known_words` (compared lowercased): none occurs there.

    Returns:
        A list of `(sentence, name)`.
    """
    known = {w.lower() for w in known_words}
    probes = []
    for sentence in sentences:
        subject = next((x for x in SUBJECTS if sentence.startswith(x + " ")), None)
        if subject is not None:
            probes.append(sentence[len(subject):])
    # Drawn in one go, so that no two probes share a name.
    names = [n for n in invented_names(2 * len(probes) + 10, seed) if n.lower() not in known]
    return [(name + rest, name) for rest, name in zip(probes, names)]


# Subjects a name replaces in training augmentation: disjoint from SUBJECTS,
# so that the probes measure copying into a position augmentation never showed.
AUGMENTATION_SUBJECTS = (("Eine Person", "A person"), ("Ein Hund", "A dog"), ("Eine Dame", "A lady"))


def name_augmented_pairs(pairs, seed=0):
    """Extra training pairs that show a model unknown names being copied.

    Image captions hardly ever name anyone, so a model trained on them has
    little reason to copy an unknown word it sees. Two kinds of pairs are
    made, each with its own invented name:

    - a pair whose source and target share a capitalised word or a number
      (a name or brand: "London", "Frisbee", "2012"), with that word
      replaced on both sides;
    - a pair starting with a subject of `AUGMENTATION_SUBJECTS` on both
      sides ("Eine Person ..." / "A person ..."), with the subject replaced.

    Args:
        pairs: (source, target) str pairs.

    Returns:
        The new pairs (the originals are not included).
    """
    import re

    made = []
    for source, target in pairs:
        shared = set(re.findall(r"\w+", source)) & set(re.findall(r"\w+", target)[1:])
        shared = sorted(w for w in shared if w[0].isupper() or w.isdigit())
        if shared:
            made.append((source, target, shared[0]))
        for german, english in AUGMENTATION_SUBJECTS:
            if source.startswith(german + " ") and target.startswith(english + " "):
                made.append((source[len(german):], target[len(english):], None))
    names = invented_names(len(made), seed)
    out = []
    for (source, target, word), name in zip(made, names):
        if word is None:
            out.append((name + source, name + target))
        else:
            pattern = rf"(?<!\w){re.escape(word)}(?!\w)"
            out.append((re.sub(pattern, name, source), re.sub(pattern, name, target)))
    return out
