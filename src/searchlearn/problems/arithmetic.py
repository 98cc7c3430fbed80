"""Seeded arithmetic word problems with worked solutions in the step format.

A problem is a short story: someone starts with a quantity (given, or built in one
step: "3 bags with 6 in each"), then events change it (buys more, gives some away,
gives away half, a friend has twice as many...), and the question asks for the final
quantity. Each event is one step "<sentence>: a op b = c." The wording is spread over 16 scenarios and ~115
templates on purpose: a small model fitted to one phrasing family does not transfer
to other word problems (ENVIRONMENT.md, "calibration run").

Splits are routed by a hash of the question text, so train and test never share a
question, for any seed, and the same question always lands in the same split.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from searchlearn.formatting import format_solution
from searchlearn.problems.base import Problem

TEST_BUCKETS = 4  # one question in 4 (by text hash) belongs to the test split
_NAMES = [("Tom", "m"), ("Anna", "f"), ("Liam", "m"), ("Maya", "f"), ("Omar", "m"), ("Sofia", "f"),
          ("Ben", "m"), ("Chloe", "f"), ("Raj", "m"), ("Elena", "f"), ("Jack", "m"), ("Priya", "f"),
          ("Diego", "m"), ("Hana", "f"), ("Noah", "m"), ("Grace", "f"), ("Kenji", "m"), ("Lucy", "f"),
          ("Mateo", "m"), ("Zara", "f"), ("Sam", "m"), ("Ivy", "f"), ("Felix", "m"), ("Nora", "f")]
_PRONOUNS = {"m": ("he", "him", "his"), "f": ("she", "her", "her")}
_RELATIVES = ["sister", "brother", "cousin", "friend", "neighbor", "grandmother", "uncle", "aunt"]
_CONNECTORS = ["Then", "After that,", "Later,", "Next,"]


@dataclass(frozen=True)
class Op:
    """One event template. `factor` fixes the operand ("twice" = 2), else it is drawn.

    `kind` decides where it may appear: 'final' ops change what is asked (each
    friend's share, a price total), so they only end a problem; 'compare' ops hand
    the story to a new person.
    """

    kind: str  # gain | loss | scale | compare | final
    sign: str  # + - * /
    text: str
    factor: int | None = None
    lead: str | None = None  # step wording when the sentence reads badly as a step
    question: str | None = None  # for 'final' ops


@dataclass(frozen=True)
class Scenario:
    key: str
    items: tuple[str, ...]
    gain: tuple[str, ...]
    loss: tuple[str, ...] = ()
    starts: tuple[str, ...] = ()  # one-step openings: "{k} ... {n}" (product) or "{a} ... {b}" (sum)
    plain: tuple[str, ...] = ("{S} {has} {a} {items}.",)
    has: str = "has"
    ask: str = "How many {items} does {name} have"
    scales: tuple[Op, ...] = ()
    finals: tuple[Op, ...] = ()
    group: tuple[str, str] = ("friends", "friend")
    box: str = "bags"


_DOUBLE = Op("scale", "*", "{S} ends up with twice as many {items} as before.", factor=2)
_TRIPLE = Op("scale", "*", "{S} ends up with three times as many {items} as before.", factor=3)
_HALF = Op("scale", "/", "{S} gives away half of {his} {items}.", factor=2, lead="{S0} keeps half of {his} {items}")
_THIRD = Op("scale", "/", "{S} keeps a third of {his} {items} and gives the rest away.", factor=3,
            lead="{S0} keeps a third of {his} {items}")
_PILES = Op("scale", "/", "{S} divides {his} {items} into {n} equal piles and keeps one pile.")
_SCALES = (_DOUBLE, _TRIPLE, _HALF, _THIRD, _PILES)

_SHARE = Op("final", "/", "{S} shares the {items} equally among {n} {group}.",
            question="How many {items} does each {member} get?")
_PACK = Op("final", "/", "{S} packs the {items} into {box} of {n}.", question="How many {box} does {he} fill?")
_SELL = Op("final", "*", "{S} sells all of the {items} for ${n} each.", question="How many dollars does {he} earn?")

_COMPARES = (
    Op("compare", "+", "{other} {has} {n} more {items} than {prev}."),
    Op("compare", "-", "{other} {has} {n} fewer {items} than {prev}."),
    Op("compare", "*", "{other} {has} twice as many {items} as {prev}.", factor=2),
    Op("compare", "*", "{other} {has} three times as many {items} as {prev}.", factor=3),
    Op("compare", "*", "{other} {has} {n} times as many {items} as {prev}."),
    Op("compare", "/", "{other} {has} half as many {items} as {prev}.", factor=2),
)

SCENARIOS = (
    Scenario("fruit", ("apples", "oranges", "pears", "peaches", "lemons", "plums"),
             gain=("{S} buys {n} more {items} at the market.", "{S} picks {n} more {items} from the tree.",
                   "{S} gets {n} more {items} from {his} {rel}."),
             loss=("{S} gives {n} {items} to {his} {rel}.", "{S} eats {n} of the {items}.",
                   "{S} uses {n} of the {items} to make juice.", "{n} of the {items} are rotten and get thrown away."),
             starts=("{S} picks {a} {items} in the morning and {b} {items} in the afternoon.",
                     "{S} buys {k} bags of {items} with {n} {items} in each bag."),
             scales=_SCALES, finals=(_SHARE, _PACK, _SELL)),
    Scenario("baking", ("cookies", "muffins", "cupcakes", "brownies", "bread rolls"),
             gain=("{S} bakes another {n} {items}.", "{S} gets {n} more {items} from a neighbor."),
             loss=("{S} sells {n} {items} at the bake sale.", "{n} of the {items} get burnt and are thrown away.",
                   "{S} eats {n} of the {items}."),
             starts=("{S} bakes {k} trays of {items} with {n} {items} on each tray.",
                     "{S} bakes {a} {items} on Saturday and {b} {items} on Sunday."),
             scales=_SCALES, finals=(_SHARE, _PACK, _SELL), box="boxes"),
    Scenario("classroom", ("pencils", "stickers", "crayons", "markers", "erasers", "notebooks"),
             gain=("{S} receives a delivery of {n} new {items}.", "{S} finds {n} more {items} in the supply closet."),
             loss=("{S} hands out {n} {items} to {his} students.", "{n} of the {items} go missing."),
             starts=("{S} has {k} packs of {items} with {n} {items} in each pack.",
                     "{S} has {a} {items} on {his} desk and {b} {items} in a drawer."),
             scales=(_HALF, _PILES), finals=(_SHARE, _PACK), group=("students", "student"), box="boxes"),
    Scenario("farm", ("potatoes", "carrots", "pumpkins", "tomatoes", "onions"),
             gain=("{S} harvests {n} more {items}.", "{S} collects another {n} {items} from the field."),
             loss=("{S} sells {n} {items} at the farmers' market.", "{S} feeds {n} of the {items} to the pigs."),
             starts=("{S} fills {k} crates with {n} {items} each.",
                     "{S} harvests {a} {items} on Monday and {b} {items} on Tuesday."),
             scales=_SCALES, finals=(_SHARE, _PACK, _SELL), group=("neighbors", "neighbor"), box="crates"),
    Scenario("eggs", ("eggs",),
             gain=("{S} collects {n} more eggs from the henhouse.", "{S} buys {n} more eggs at the store."),
             loss=("{S} uses {n} eggs to bake a cake.", "{n} of the eggs crack and are thrown away.",
                   "{S} sells {n} eggs to a neighbor."),
             starts=("{S} collects {n} eggs a day for {k} days.",),
             scales=(_HALF, _DOUBLE), finals=(_PACK, _SELL), box="cartons"),
    Scenario("savings", ("dollars",),
             gain=("{S} earns {n} more dollars mowing lawns.", "{S} gets {n} dollars from {his} {rel} as a gift.",
                   "{S} saves another {n} dollars."),
             loss=("{S} spends {n} dollars on a new book.", "{S} pays {n} dollars for lunch.",
                   "{S} lends {n} dollars to {his} {rel}."),
             starts=("{S} saves {n} dollars a week for {k} weeks.",
                     "{S} has {a} dollars in {his} wallet and {b} dollars in a piggy bank."),
             scales=(_DOUBLE, _HALF),
             finals=(Op("final", "/", "{S} splits the money equally among {n} {group}.",
                        question="How many dollars does each {member} get?"),
                     Op("final", "/", "{S} spends all of the money on comic books that cost {n} dollars each.",
                        question="How many comic books does {he} buy?"))),
    Scenario("reading", ("pages",),
             gain=("{S} reads {n} more pages on Sunday.", "{S} reads another {n} pages before bed."),
             starts=("{S} reads {n} pages a day for {k} days.", "{S} reads {a} pages on Monday and {b} pages on Tuesday."),
             plain=("{S} has read {a} pages of {his} book.",), has="has read", ask="How many pages has {name} read"),
    Scenario("running", ("laps", "kilometers"),
             gain=("{S} runs {n} more {items} after a short break.", "{S} runs another {n} {items} in the evening."),
             starts=("{S} runs {n} {items} a day for {k} days.", "{S} runs {a} {items} on Saturday and {b} {items} on Sunday."),
             plain=("{S} runs {a} {items} in the morning.",), has="runs", ask="How many {items} does {name} run"),
    Scenario("travel", ("miles", "kilometers"),
             gain=("{S} drives {n} more {items} after lunch.", "{S} travels another {n} {items} by train."),
             starts=("{S} drives at {n} {items} per hour for {k} hours.",
                     "{S} drives {a} {items} on Monday and {b} {items} on Tuesday."),
             plain=("{S} drives {a} {items} in the morning.",), has="travels", ask="How many {items} does {name} travel"),
    Scenario("collection", ("stamps", "marbles", "baseball cards", "seashells", "coins"),
             gain=("{S} gets {n} more {items} for {his} birthday.", "{S} trades with {his} {rel} and gets {n} more {items}.",
                   "{S} buys {n} more {items} at a flea market."),
             loss=("{S} trades away {n} {items}.", "{S} gives {n} {items} to {his} {rel}.", "{S} loses {n} {items}."),
             starts=("{S} keeps {n} {items} in each of {k} boxes.", "{S} has {a} {items} and {his} {rel} gives {him} {b} more."),
             scales=_SCALES, finals=(_SHARE, _PACK), box="boxes"),
    Scenario("library", ("books",),
             gain=("{S} buys {n} more books at a yard sale.", "{S} borrows {n} books from the library."),
             loss=("{S} donates {n} books to the library.", "{S} lends {n} books to {his} {rel}."),
             starts=("{S} has {k} shelves with {n} books on each shelf.", "{S} has {a} novels and {b} comic books."),
             scales=(_HALF, _DOUBLE), finals=(_SHARE, _PACK, _SELL), group=("classmates", "classmate"), box="boxes"),
    Scenario("garden", ("flowers", "tulips", "roses", "daisies", "sunflowers"),
             gain=("{S} plants {n} more {items}.", "{S} buys {n} more {items} at the garden center."),
             loss=("{n} of the {items} are eaten by rabbits.", "{S} gives {n} {items} to {his} {rel}."),
             starts=("{S} plants {k} rows of {items} with {n} {items} in each row.",
                     "{S} plants {a} {items} in the front yard and {b} {items} in the back yard."),
             scales=(_HALF, _THIRD, _DOUBLE),
             finals=(_SELL, Op("final", "/", "{S} puts all of the {items} into bouquets of {n}.",
                               question="How many bouquets does {he} make?"))),
    Scenario("aquarium", ("fish", "goldfish", "guppies"),
             gain=("{S} buys {n} more {items} for the tank.", "{S} wins {n} {items} at the fair."),
             loss=("{S} gives {n} {items} to {his} {rel}.", "{S} sells {n} {items} to the pet shop."),
             starts=("{S} has {k} tanks with {n} {items} in each tank.",),
             scales=(_HALF, _DOUBLE),
             finals=(Op("final", "/", "{S} moves the {items} into tanks that hold {n} {items} each.",
                        question="How many tanks does {he} need?"),)),
    Scenario("party", ("balloons",),
             gain=("{S} blows up {n} more balloons.", "{S} buys a pack of {n} balloons."),
             loss=("{n} of the balloons pop.", "{S} gives {n} balloons to the children."),
             starts=("{S} buys {k} packs of balloons with {n} balloons in each pack.",
                     "{S} blows up {a} red balloons and {b} blue balloons."),
             scales=(_HALF, _PILES), group=("tables", "table"),
             finals=(_SHARE, Op("final", "/", "{S} ties the balloons into bunches of {n}.",
                                question="How many bunches does {he} make?"))),
    Scenario("game", ("coins", "gems", "stars"),
             gain=("{S} collects {n} more {items} on the next level.", "{S} wins {n} bonus {items}."),
             loss=("{S} loses {n} {items} when {he} falls into a trap.", "{S} spends {n} {items} on a new sword."),
             starts=("{S} completes {k} levels and earns {n} {items} on each level.",
                     "{S} earns {a} {items} in the first round and {b} {items} in the second round."),
             scales=(_DOUBLE, _TRIPLE, _HALF), group=("teammates", "teammate"),
             finals=(_SHARE, Op("final", "/", "{S} trades all of the {items} for potions that cost {n} {items} each.",
                                question="How many potions does {he} get?"))),
    Scenario("basketball", ("points",),
             gain=("{S} scores {n} more points in overtime.", "{S} scores another {n} points from free throws."),
             starts=("{S} scores {n} points in each of {k} games.",
                     "{S} scores {a} points in the first half and {b} points in the second half."),
             plain=("{S} scores {a} points in the first game.",), has="scores", ask="How many points does {name} score"),
)


def all_template_keys() -> list[str]:
    """Every template id a problem's meta can name (for coverage checks)."""
    keys = [f"common.compare{i}" for i in range(len(_COMPARES))]
    for sc in SCENARIOS:
        keys += [f"{sc.key}.{kind}{i}" for kind in ("plain", "start", "gain", "loss", "scale", "final")
                 for i in range(len(_scenario_list(sc, kind)))]
    return keys


def _scenario_list(sc: Scenario, kind: str) -> tuple:
    return {"plain": sc.plain, "start": sc.starts, "gain": sc.gain, "loss": sc.loss,
            "scale": sc.scales, "final": sc.finals, "compare": _COMPARES}[kind]


class _Story:
    """Mutable state while one problem is written: who holds the quantity, its value,
    the question sentences and the solution steps so far."""

    def __init__(self, rng: random.Random, sc: Scenario, max_value: int):
        self.rng, self.sc, self.max_value = rng, sc, max_value
        self.cap = max(1000, 10 * max_value)  # keep intermediates small enough for a 135M model
        self.items = rng.choice(sc.items)
        self.rel = rng.choice(_RELATIVES)
        self.holder = rng.choice(_NAMES)
        self.named_next = True  # first mention, or just after a new person appears
        self.value = 0
        self.sentences: list[str] = []
        self.steps: list[str] = []
        self.templates: list[str] = []
        self.equations: list[list] = []  # [a, sign, b, c] per step: the step oracle's reference

    def fields(self, **extra) -> dict:
        name, gender = self.holder
        he, him, his = _PRONOUNS[gender]
        subject = name if self.named_next or self.rng.random() < 0.25 else he
        s0 = subject[0].upper() + subject[1:]
        lead_in = self.rng.choice(_CONNECTORS) if self.sentences and self.rng.random() < 0.5 else ""
        s = f"{lead_in} {subject}" if lead_in else s0
        return {"S": s, "S0": s0, "name": name, "he": he, "him": him, "his": his, "items": self.items,
                "rel": self.rel, "has": self.sc.has, "group": self.sc.group[0], "member": self.sc.group[1],
                "box": self.sc.box, **extra}

    def add(self, key: str, sentence: str, lead: str | None, a: int, sign: str, b: int, c: int) -> None:
        sentence = sentence[0].upper() + sentence[1:]
        lead = (lead or sentence.rstrip("."))
        self.sentences.append(sentence)
        self.steps.append(f"{lead}: {a} {sign} {b} = {c}.")
        self.equations.append([a, sign, b, c])
        self.templates.append(key)
        self.value = c


def _draw_operand(st: _Story, op: Op) -> tuple[int, int] | None:
    """(operand, result) for `op` applied to the current value, or None when no
    operand keeps every number a modest non-negative integer."""
    rng, a = st.rng, st.value
    if op.sign == "+":
        b = rng.randint(2, max(2, st.max_value // 2))
        return (b, a + b) if a + b <= st.cap else None
    if op.sign == "-":
        if a < 3:
            return None
        b = rng.randint(2, min(a - 1, st.max_value))  # from 2: "loses 1 gems" reads wrong
        return b, a - b
    if op.sign == "*":
        b = op.factor or rng.randint(2, 9 if op.kind == "final" else 5)
        return (b, a * b) if a * b <= st.cap else None
    divisors = [d for d in range(2, 13) if a % d == 0 and a // d >= 2]
    if op.factor:
        divisors = [op.factor] if op.factor in divisors else []
    if not divisors:
        return None
    b = rng.choice(divisors)
    return b, a // b


def _open(st: _Story, compound: bool) -> None:
    rng, sc = st.rng, st.sc
    kind = "start" if compound else "plain"
    i = rng.randrange(len(_scenario_list(sc, kind)))
    text = _scenario_list(sc, kind)[i]
    key = f"{sc.key}.{kind}{i}"
    if not compound:
        st.value = rng.randint(min(5, st.max_value), st.max_value)
        st.sentences.append(text.format(**st.fields(a=st.value)))
        st.templates.append(key)
    elif "{k}" in text:
        k = rng.randint(2, 9)
        n = rng.randint(2, max(2, st.max_value // k))
        # the equation follows the sentence's order ("saves 12 a week for 5 weeks": 12 * 5)
        a, b = (k, n) if text.index("{k}") < text.index("{n}") else (n, k)
        st.add(key, text.format(**st.fields(k=k, n=n)), None, a, "*", b, k * n)
    else:
        a = rng.randint(2, max(2, st.max_value // 2))
        b = rng.randint(2, max(2, st.max_value // 2))
        st.add(key, text.format(**st.fields(a=a, b=b)), None, a, "+", b, a + b)
    st.named_next = False


_KIND_WEIGHTS = {"gain": 3.0, "loss": 3.0, "scale": 1.5, "compare": 1.5, "final": 2.0}


def _event(st: _Story, last: bool) -> Op | None:
    """Append one event step; return its Op, or None if nothing fits the value."""
    kinds = [k for k in _KIND_WEIGHTS if _scenario_list(st.sc, k) and (last or k != "final")]
    for _ in range(12):
        kind = st.rng.choices(kinds, weights=[_KIND_WEIGHTS[k] for k in kinds])[0]
        pool = _scenario_list(st.sc, kind)
        i = st.rng.randrange(len(pool))
        scope = "common" if kind == "compare" else st.sc.key
        key = f"{scope}.{kind}{i}"
        op = pool[i] if isinstance(pool[i], Op) else Op(kind, "+" if kind == "gain" else "-", pool[i])
        drawn = None if key in st.templates else _draw_operand(st, op)
        if drawn is None:
            continue
        b, c = drawn
        a = st.value
        extra = {"n": b}
        if kind == "compare":
            # the new person has the other gender so later pronouns stay unambiguous
            other = st.rng.choice([p for p in _NAMES if p[1] != st.holder[1]])
            extra.update(other=other[0], prev=st.holder[0])
            st.holder, st.named_next = other, True
        f = st.fields(**extra)
        lead = op.lead.format(**f) if op.lead else None
        st.add(key, op.text.format(**f), lead, a, op.sign, b, c)
        if kind != "compare":
            st.named_next = False
        return op
    return None


def _question(st: _Story, last: Op | None) -> str:
    f = st.fields()
    if last is not None and last.kind == "final":
        return last.question.format(**f)
    if last is not None and last.kind == "compare":
        suffix = "?"
    elif last is not None and (last.kind == "loss" or last.sign == "/"):
        suffix = st.rng.choice(["?", " now?", " left?"]) if st.sc.has == "has" else "?"
    else:
        suffix = st.rng.choice(["?", " now?", " in total?", " altogether?"])
    return st.sc.ask.format(**f) + suffix


def make_problem(rng: random.Random, num_steps: int, max_value: int) -> Problem | None:
    """One problem with exactly `num_steps` steps (id left blank), or None if the
    random choices painted it into a corner (the caller just draws again)."""
    st = _Story(rng, rng.choice(SCENARIOS), max_value)
    compound = rng.random() < 0.35
    _open(st, compound)
    last = None
    events = num_steps - (1 if compound else 0)
    for i in range(events):
        last = _event(st, last=i == events - 1)
        if last is None:
            return None
    question = " ".join(st.sentences + [_question(st, last)])
    answer = str(st.value)
    meta = {"num_steps": num_steps, "scenario": st.sc.key, "templates": st.templates, "equations": st.equations}
    return Problem(id="", question=question, answer=answer, solution=format_solution(st.steps, answer), meta=meta)


def split_of(question: str) -> str:
    """'test' or 'train', fixed by the question text alone (not by seed or size)."""
    digest = hashlib.blake2b(question.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") % TEST_BUCKETS == 0 else "train"


def make_splits(train_size: int, test_size: int, min_steps: int, max_steps: int, max_value: int,
                seed: int) -> tuple[list[Problem], list[Problem]]:
    """Disjoint, deterministic train/test lists; step counts uniform in [min_steps, max_steps]."""
    if not 1 <= min_steps <= max_steps <= 4:
        raise ValueError(f"need 1 <= min_steps <= max_steps <= 4, got {min_steps}..{max_steps}")
    if max_value < 10:
        raise ValueError(f"max_value must be at least 10, got {max_value}")
    if train_size < 0 or test_size < 0:
        raise ValueError("train_size and test_size must be non-negative")
    rng = random.Random(seed)
    want = {"train": train_size, "test": test_size}
    out: dict[str, list[Problem]] = {"train": [], "test": []}
    seen: set[str] = set()
    budget = 50 * (train_size + test_size) + 1000  # guards tiny spaces from looping forever
    while any(len(out[s]) < want[s] for s in out):
        budget -= 1
        if budget < 0:
            raise ValueError(f"could only generate {len(out['train'])} train / {len(out['test'])} test "
                             f"problems; raise max_value or widen the step range")
        p = make_problem(rng, rng.randint(min_steps, max_steps), max_value)
        if p is None or p.question in seen:
            continue
        seen.add(p.question)
        split = split_of(p.question)
        if len(out[split]) < want[split]:
            out[split].append(_with_id(p, split, len(out[split])))
    return out["train"], out["test"]


def _with_id(p: Problem, split: str, index: int) -> Problem:
    return Problem(id=f"arith-{split}-{index:05d}", question=p.question, answer=p.answer,
                   solution=p.solution, meta=p.meta)
