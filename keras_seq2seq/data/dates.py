"""A generated date-normalisation task: many written forms -> ISO dates.

"3rd of March 1999", "03/03/99", "Mar 3, 1999" and "Wednesday, 3 March 1999"
all map to "1999-03-03". Solving it needs attention: the output's digits come
from different places in the input depending on the form. Numeric forms follow
one convention each (US month-first with slashes, day-first with dots, ISO with
dashes), so every source has exactly one answer. Two-digit years mean
1950-2049.

Examples are deterministic by seed.
"""

import datetime
import os
import random

MONTHS = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FIRST_DAY = datetime.date(1950, 1, 1)
LAST_DAY = datetime.date(2049, 12, 31)


def _ordinal(n):
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _forms(d):
    month, mon = MONTHS[d.month - 1], MONTHS[d.month - 1][:3]
    yy = f"{d.year % 100:02d}"
    return [
        f"{d.day} {month} {d.year}",
        f"{_ordinal(d.day)} of {month} {d.year}",
        f"{_ordinal(d.day)} of {month}, {d.year}",
        f"the {_ordinal(d.day)} of {month} {d.year}",
        f"{month} {d.day}, {d.year}",
        f"{month} {_ordinal(d.day)}, {d.year}",
        f"{mon} {d.day}, {d.year}",
        f"{mon}. {d.day}, {d.year}",
        f"{d.day} {mon} {d.year}",
        f"{d.day:02d} {mon} {yy}",
        f"{d.day}-{mon}-{d.year}",
        f"{month.upper()} {d.day} {d.year}",
        f"{month.lower()} {_ordinal(d.day)} {d.year}",
        f"{WEEKDAYS[d.weekday()]}, {month} {d.day}, {d.year}",
        f"{WEEKDAYS[d.weekday()]}, {d.day} {month} {d.year}",
        f"{WEEKDAYS[d.weekday()][:3]} {d.day} {mon} {d.year}",
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.month}/{d.day}/{yy}",
        f"{d.month:02d}/{d.day:02d}/{yy}",
        f"{d.day:02d}.{d.month:02d}.{d.year}",
        f"{d.day}.{d.month}.{yy}",
        f"{d.year}-{d.month:02d}-{d.day:02d}",
        f"{d.year}/{d.month:02d}/{d.day:02d}",
        f"{d.year}{d.month:02d}{d.day:02d}",
    ]


def random_date_pair(rng):
    """One `(written form, ISO date)` pair drawn from `rng` (`random.Random`)."""
    span = (LAST_DAY - FIRST_DAY).days
    d = FIRST_DAY + datetime.timedelta(days=rng.randint(0, span))
    return rng.choice(_forms(d)), d.isoformat()


def generate_date_pairs(n, seed=0):
    """A list of `n` `(source, target)` pairs, the same for the same seed."""
    rng = random.Random(seed)
    return [random_date_pair(rng) for _ in range(n)]


def write_dates_dataset(directory, train=20_000, val=1_000, test=1_000, seed=0):
    """Writes `{train,val,test}.{src,tgt}` under `directory`.

    The splits use different seeds, and no validation or test source occurs
    in the training split, so held-out accuracy measures generalisation.
    Returns a dict `split -> (source_path, target_path)`.
    """
    os.makedirs(directory, exist_ok=True)
    paths = {}
    seen = set()
    for offset, (split, n) in enumerate(
        [("train", train), ("val", val), ("test", test)]
    ):
        rng = random.Random(seed * 1000 + offset)
        pairs = []
        while len(pairs) < n:
            pair = random_date_pair(rng)
            if split == "train" or pair[0] not in seen:
                pairs.append(pair)
        if split == "train":
            seen.update(s for s, _ in pairs)
        src = os.path.join(directory, f"{split}.src")
        tgt = os.path.join(directory, f"{split}.tgt")
        with open(src, "w", encoding="utf-8") as fs, open(tgt, "w", encoding="utf-8") as ft:
            for s, t in pairs:
                fs.write(s + "\n")
                ft.write(t + "\n")
        paths[split] = (src, tgt)
    return paths
