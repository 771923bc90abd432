"""Residents: age and sex, names, resident ID numbers, phones, addresses and households.

Age structure: Shanghai residents at the 2020 census, 0-14 = 9.8 %, 60+ = 23.4 %, 65+ = 16.3 %
(china-rules.md §7). Those three shares are hit exactly by ``AGE_BANDS``; the shape inside the
15-59 and 65+ ranges is an assumption (docs/synth.md A4). Sex: a resident sex ratio of about
107 men per 100 women below 60, fewer men in old age (assumption A4).

Households are formed in blocks of people drawn independently from the age/sex structure, so the
marginal distribution is exact: adults are sorted by age and grouped (couples and flat-mates of
similar age), then children join a household whose youngest adult is 22-55 (their parents).
Memory is one block, whatever the scale.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

from yilian.synth.fhir import geolocation, subdistrict_extension
from yilian.synth.geography import (
    CITY_NAME,
    DISTRICT_CODE,
    DISTRICT_NAME,
    Subdistrict,
    place_near,
    stable_unit,
)
from yilian.synth.identifiers import ResidentIdAllocator
from yilian.synth.names import given_name, surname

# (lowest age, highest age, per cent of residents). 0-14 = 9.8, 60-64 = 7.1, 65+ = 16.3 (§7).
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 4, 2.9), (5, 9, 3.5), (10, 14, 3.4),
    (15, 19, 2.9), (20, 24, 6.0), (25, 29, 8.4), (30, 34, 10.4), (35, 39, 9.2),
    (40, 44, 7.6), (45, 49, 7.3), (50, 54, 7.5), (55, 59, 7.5),
    (60, 64, 7.1),
    (65, 69, 6.6), (70, 74, 4.4), (75, 79, 2.2), (80, 84, 1.6), (85, 99, 1.5),
)  # fmt: skip
_BAND_CUM = tuple(accumulate(share for _, _, share in AGE_BANDS))

ADULT_AGE = 18
BLOCK = 2_000  # people per household-forming block (bounded memory)
# Adults per household: mean 2.04, which with 88 % adults gives about 2.3 people per household,
# Shanghai's 2020 average family-household size of 2.32 (assumption A9, recalled census figure).
_ADULTS_PER_HOUSEHOLD = ((1, 0.25), (2, 0.52), (3, 0.17), (4, 0.06))
# Where residents' ID numbers were issued (assumption A8): most in Changning, some elsewhere in
# Shanghai, some in other provinces (the address code is where the household was first registered,
# china-rules.md §6, so people who moved in keep theirs).
_ID_REGIONS = (
    (DISTRICT_CODE, 75), ("310101", 3), ("310104", 3), ("310106", 3), ("310107", 3),
    ("310112", 2), ("310115", 1), ("320102", 1), ("330106", 1), ("340104", 2), ("410102", 1),
    ("420102", 1), ("510104", 1), ("370102", 1), ("350102", 1), ("360102", 1),
)  # fmt: skip
_ID_REGION_CUM = tuple(accumulate(w for _, w in _ID_REGIONS))
_MOBILE_PREFIXES = ("139", "138", "137", "136", "135", "158", "159", "150", "186", "189", "180")
_MOBILE_PREFIXES_YOUNG = ("177", "199", "181", "188", "152", "131", "133", "153")


def male_share(age: int) -> float:
    """Share of men at ``age`` (assumption A4: ratio 107 below 60, women outlive men above)."""
    if age < 60:
        return 107 / 207
    return 0.485 if age < 80 else 0.42


@dataclass
class Person:
    index: int
    id: str
    age: int
    sex: str
    birth_date: dt.date
    family: str
    given: str
    resident_id: str
    phones: list[tuple[str, str]]  # (use, number)
    household: str = ""
    address: dict[str, object] | None = None
    latitude: float = 0.0
    longitude: float = 0.0

    @property
    def name(self) -> str:
        return self.family + self.given


@dataclass
class Household:
    id: str
    subdistrict: Subdistrict
    members: list[Person]
    line: str
    latitude: float
    longitude: float


def draw_age(rng: random.Random) -> int:
    low, high, _ = rng.choices(AGE_BANDS, cum_weights=_BAND_CUM)[0]
    if high == 99:  # 85+: fewer people at each older year
        return low + min(int(rng.expovariate(1 / 4.5)), high - low)
    return rng.randint(low, high)


def birth_date_for(age: int, end: dt.date, rng: random.Random) -> dt.date:
    """A birth date that makes the person ``age`` on ``end``."""
    latest = dt.date(end.year - age, end.month, min(end.day, 28))
    return latest - dt.timedelta(days=rng.randrange(0, 365))


def _phones(rng: random.Random, age: int) -> list[tuple[str, str]]:
    phones: list[tuple[str, str]] = []
    if age >= 12 and rng.random() < (0.97 if age < 75 else 0.7):
        prefixes = _MOBILE_PREFIXES_YOUNG if age < 35 else _MOBILE_PREFIXES
        phones.append(("mobile", f"{rng.choice(prefixes)}{rng.randrange(10**8):08d}"))
    if age >= 55 and rng.random() < 0.35 or not phones:
        phones.append(("home", f"021-{rng.choice('56')}{rng.randrange(10**7):07d}"))
    return phones


def family_surname(adults: list[Person]) -> str:
    """The surname a child of these adults carries: the father's by custom, so the oldest man's
    of the household (the youngest adult's when there is no man: a single mother), so that
    siblings and a parent agree on the surname — the hard negatives of patient matching
    (assumption A9)."""
    men = [p for p in adults if p.sex == "male" and p.age >= ADULT_AGE]
    if men:
        return max(men, key=lambda p: p.age).family
    return adults[0].family


class PeopleFactory:
    """Draws people and forms households, block by block, for one subdistrict at a time."""

    def __init__(self, seed: int, end: dt.date, ids: ResidentIdAllocator) -> None:
        self.seed = seed
        self.end = end
        self.ids = ids
        self.person_count = 0
        self.household_count = 0

    def _person(self, rng: random.Random) -> Person:
        age = draw_age(rng)
        sex = "male" if rng.random() < male_share(age) else "female"
        birth = birth_date_for(age, self.end, rng)
        region = rng.choices(_ID_REGIONS, cum_weights=_ID_REGION_CUM)[0][0]
        self.person_count += 1
        index = self.person_count
        return Person(
            index, f"p{self.seed}-{index:07d}", age, sex, birth, surname(rng),
            given_name(rng, sex, birth.year), self.ids.allocate(region, birth, sex),
            _phones(rng, age),
        )  # fmt: skip

    def households(self, subdistrict: Subdistrict, count: int) -> Iterator[Household]:
        """Households holding exactly ``count`` residents of ``subdistrict``."""
        rng = random.Random(f"{self.seed}/{subdistrict.code}/people")
        remaining = count
        while remaining > 0:
            block = [self._person(rng) for _ in range(min(BLOCK, remaining))]
            remaining -= len(block)
            yield from self._group(rng, subdistrict, block)

    def _group(
        self, rng: random.Random, sub: Subdistrict, block: list[Person]
    ) -> Iterator[Household]:
        adults = sorted((p for p in block if p.age >= ADULT_AGE), key=lambda p: p.age)
        children = [p for p in block if p.age < ADULT_AGE]
        groups: list[list[Person]] = []
        sizes = [size for size, _ in _ADULTS_PER_HOUSEHOLD]
        weights = [weight for _, weight in _ADULTS_PER_HOUSEHOLD]
        start = 0
        while start < len(adults):
            size = rng.choices(sizes, weights)[0]
            groups.append(adults[start : start + size])
            start += size
        if not groups:  # a block of children only (tiny scales): they still need a home
            groups = [children[:]]
            children = []
        parents = [g for g in groups if 22 <= g[0].age <= 55] or groups
        for child in children:
            family = rng.choice(parents)
            child.family = family_surname(family)
            family.append(child)
        rng.shuffle(groups)
        for members in groups:
            yield self._household(rng, sub, members)

    def _household(self, rng: random.Random, sub: Subdistrict, members: list[Person]) -> Household:
        self.household_count += 1
        road = rng.choice(sub.roads)
        # A road has a fixed set of lanes (弄, residential compounds) so neighbours share one.
        lane = 1 + int(stable_unit(sub.code, road, rng.randrange(30)) * 998)
        building, room = rng.randint(1, 40), rng.randint(1, 18) * 100 + rng.randint(1, 4)
        line = f"{road}{lane}弄{building}号{room}室"
        latitude, longitude = place_near(sub, road, lane)
        household = Household(
            f"h{self.seed}-{self.household_count:07d}", sub, members, line, latitude, longitude
        )
        for person in members:
            person.household = household.id
            person.latitude, person.longitude = latitude, longitude
        return household


def address(household: Household) -> dict[str, object]:
    """The Patient.address of a household's members (geolocation and subdistrict extensions)."""
    sub = household.subdistrict
    return {
        "extension": [
            subdistrict_extension(sub.code, sub.name),
            geolocation(household.latitude, household.longitude),
        ],
        "use": "home",
        "type": "physical",
        "text": f"{CITY_NAME}{DISTRICT_NAME}{sub.name}{household.line}",
        "line": [household.line],
        "city": CITY_NAME,
        "district": DISTRICT_NAME,
        "state": CITY_NAME,
        "postalCode": sub.postal_code,
        "country": "CN",
    }
