"""Duplicate registrations, the way reality makes them (opt-in: ``yilian synth --duplicates RATE``).

Each hospital and CHC registers the same resident separately (issue #6). With ``--duplicates R``,
each resident is registered again at a district hospital with probability R (a second or third
time with smaller probability), and each new registration is re-keyed with the errors a clerk
makes: a homophone or a traditional/variant character in the given name, digits transposed in
the phone or the ID, a day/month swap or a year off by one in the birth date, the ID number left
out (children, foreigners, people without their card) or given in the legacy 15-digit form, a
changed phone or address (people move), an address written without the city or district.

Hard negatives are added too: a share of children get a twin (same surname, birth date, address,
phone and ID region/birth date; different given name and ID sequence), and a child registered at a
hospital gives a parent's phone. Members of one household already share the address.

The ground truth goes beside the NDJSON in ``mpi-truth.csv``: for every Patient its true person
(``entity_id``), its household (the address it was first registered with), and whether it is an
``original``, a ``duplicate`` or a ``twin``. Every rate below is an assumption (docs/synth.md
"Duplicates"); nothing in shared/domain gives measured error rates of Chinese registration desks.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yilian.fhir import systems
from yilian.mpi.resident_id import check_digit
from yilian.synth.facilities import Facility, Network
from yilian.synth.fhir import identifier
from yilian.synth.names import given_name, human_name

Json = dict[str, Any]
TRUTH_FILE = "mpi-truth.csv"

# Characters of the generator's given-name vocabulary with homophones (same toneless pinyin per
# pypinyin, checked by tests/synth/test_duplicates.py) that a clerk who hears the name may type.
_HOMOPHONE_TEXT = (
    "伟玮炜韦 丽莉俐 明铭鸣 华骅桦 军君钧 静婧靖 敏珉 杰捷洁 涛韬 斌彬 峰锋丰 浩昊皓 俊骏峻 "
    "辉晖徽 燕艳雁 娟鹃 婷亭庭 颖莹盈 琳林霖 雯文闻 晶菁 慧惠蕙 宇雨羽语 轩萱宣 子紫梓 涵含晗 "
    "欣馨心新 怡宜仪 思斯丝 彤桐童 嘉佳家 琪琦淇棋 泽择 航杭 熙希曦 翔祥 睿瑞锐 英瑛 兰岚蓝 "
    "珍真贞 芳方 凤奉 琴勤芹 美梅玫媚 玉钰毓 萍平苹 月悦越 德得 忠中钟 福富 荣蓉容 宝保葆 "
    "生升笙 兴星 磊垒 勇永涌 超潮 鹏朋 刚钢 飞菲 倩茜 蕾雷 霞夏 然冉 辰晨臣 一依伊 诗师 可柯 "
    "秀绣 桂贵 娣弟 爱艾"
)
_HOMOPHONE_GROUPS = _HOMOPHONE_TEXT.split()
HOMOPHONES: dict[str, tuple[str, ...]] = {
    ch: tuple(other for other in group if other != ch)
    for group in _HOMOPHONE_GROUPS
    for ch in group
}
# Simplified -> traditional forms a registration may carry (《简化字总表》 pairs; the inverse of
# part of yilian.mpi.chinese_names.VARIANTS).
TRADITIONAL = {"华": "華", "伟": "偉", "丽": "麗", "国": "國", "东": "東", "红": "紅", "军": "軍"}
TRADITIONAL |= {"强": "強", "峰": "峯", "张": "張", "陈": "陳", "刘": "劉", "杨": "楊", "吴": "吳"}

# Assumed rates (docs/synth.md "Duplicates"): each applies independently to a new registration.
P_SECOND_MORE = 0.25  # a duplicated resident is registered once more (a third record)
P_HOMOPHONE = 0.15
P_TRADITIONAL = 0.03
P_ID_MISSING_ADULT = 0.15
P_ID_MISSING_CHILD = 0.6  # children are registered on the parents' documents
P_ID_LEGACY = 0.3  # of IDs of people born before 1985 (15-digit numbers were issued until 1999)
P_ID_TYPO = 0.03
P_DOB_SWAP = 0.03
P_DOB_YEAR = 0.02
P_DOB_TYPO = 0.02
P_PHONE_NEW = 0.2
P_PHONE_TYPO = 0.03
P_PHONE_MISSING = 0.1
P_MOVED = 0.15
P_ADDRESS_SHORT = 0.2
P_ADDRESS_MISSING = 0.05
P_SEX_WRONG = 0.003
P_TWIN = 0.03  # children with a twin sibling (hard negatives; assumption)
CHILD_AGE = 16  # below this a resident ID card is optional (assumption A-dup)


@dataclass
class DuplicateMaker:
    """Wraps the generator's resource stream, adding registrations and recording the truth."""

    rate: float
    seed: int
    hospitals: list[Facility]
    end_date: dt.date
    truth: list[tuple[str, str, str, str]] = field(default_factory=list)
    _household_phone: tuple[str, str] = ("", "")  # (address text, first adult's phone)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"duplicates rate must be between 0 and 1, got {self.rate}")
        if not self.hospitals:
            raise ValueError("duplicates need at least one hospital to register at")
        self._mrn_serial = 0
        self._twin_sequences: set[tuple[str, int]] = set()

    def process(self, resources: Iterator[Json]) -> Iterator[Json]:
        for resource in resources:
            yield resource
            if resource.get("resourceType") == "Patient":
                yield from self._after_patient(resource)

    def _after_patient(self, patient: Json) -> Iterator[Json]:
        rng = random.Random(f"{self.seed}/duplicates/{patient['id']}")
        household = _address_text(patient)
        self.truth.append((patient["id"], patient["id"], household, "original"))
        age = _age(patient, self.end_date)
        phone = _phone(patient)
        if age >= 18 and phone and self._household_phone[0] != household:
            self._household_phone = (household, phone)
        parent_phone = self._household_phone[1] if self._household_phone[0] == household else ""
        people = [patient]
        if age < 18 and rng.random() < P_TWIN:
            twin = self._twin(rng, patient)
            self.truth.append((twin["id"], twin["id"], household, "twin"))
            people.append(twin)
            yield twin
        for person in people:
            copies = 0
            if rng.random() < self.rate:
                copies = 1 + (rng.random() < P_SECOND_MORE)
            for k in range(copies):
                duplicate = self._duplicate(rng, person, k, age, parent_phone)
                self.truth.append((duplicate["id"], person["id"], household, "duplicate"))
                yield duplicate

    def _registration(self, base: Json, new_id: str, hospital: Facility) -> Json:
        self._mrn_serial += 1
        body = {k: v for k, v in base.items() if k not in ("generalPractitioner",)}
        body["id"] = new_id
        body["identifier"] = [
            i for i in base.get("identifier", []) if i.get("system") == systems.RESIDENT_ID
        ] + [identifier(systems.mrn_system(hospital.uscc), f"H{self._mrn_serial:09d}", "MR")]
        body["managingOrganization"] = {
            "reference": f"Organization/{hospital.key}",
            "display": hospital.name,
        }
        return body

    def _duplicate(self, rng: random.Random, base: Json, k: int, age: int, parent: str) -> Json:
        body = self._registration(base, f"{base['id']}-d{k + 1}", rng.choice(self.hospitals))
        family, given = _names(base)
        given = "".join(
            rng.choice(HOMOPHONES[ch]) if ch in HOMOPHONES and rng.random() < P_HOMOPHONE else ch
            for ch in given
        )
        if rng.random() < P_TRADITIONAL:
            family = "".join(TRADITIONAL.get(ch, ch) for ch in family)
            given = "".join(TRADITIONAL.get(ch, ch) for ch in given)
        body["name"] = [human_name(family, given)]
        body["identifier"] = self._resident_id(rng, body["identifier"], age)
        body["birthDate"] = _birth_date(rng, base["birthDate"])
        body["telecom"] = _telecom(rng, base.get("telecom", []), parent if age < 18 else "")
        body["address"] = _address(rng, base.get("address", []))
        if rng.random() < P_SEX_WRONG:
            body["gender"] = "female" if base.get("gender") == "male" else "male"
        return body

    def _resident_id(self, rng: random.Random, identifiers: list[Json], age: int) -> list[Json]:
        out = []
        for ident in identifiers:
            if ident.get("system") != systems.RESIDENT_ID:
                out.append(ident)
                continue
            value = str(ident["value"])
            if rng.random() < (P_ID_MISSING_CHILD if age < CHILD_AGE else P_ID_MISSING_ADULT):
                continue
            if value[6:8] == "19" and int(value[6:10]) < 1985 and rng.random() < P_ID_LEGACY:
                value = value[:6] + value[8:17]  # the 15-digit number the person had first
            elif rng.random() < P_ID_TYPO:
                value = _transpose(rng, value[:17]) + value[17]  # fails its check digit
            out.append({**ident, "value": value})
        return out

    def _twin(self, rng: random.Random, child: Json) -> Json:
        body = self._registration(child, f"{child['id']}-twin", rng.choice(self.hospitals))
        body["identifier"] = [
            i for i in body["identifier"] if i.get("system") != systems.RESIDENT_ID
        ]
        family, given = _names(child)
        sex = rng.choice(("male", "female"))
        birth = dt.date.fromisoformat(child["birthDate"])
        other = given
        while other == given:
            other = given_name(rng, sex, birth.year)
        body["name"] = [human_name(family, other)]
        body["gender"] = sex
        ids = [i for i in child.get("identifier", []) if i.get("system") == systems.RESIDENT_ID]
        if ids:
            # Twins get sequences from 900 up, which the generator's allocator (a few numbers per
            # region, day and sex) never reaches, so a twin's number is nobody else's.
            value = str(ids[0]["value"])
            prefix, used = value[:14], self._twin_sequences
            sequence = 901 if sex == "male" else 902
            while (prefix, sequence) in used:
                sequence += 2
            used.add((prefix, sequence))
            first17 = f"{prefix}{sequence:03d}"
            body["identifier"].insert(
                0, identifier(systems.RESIDENT_ID, first17 + check_digit(first17), "NI")
            )
        return body

    def write_truth(self, directory: Path) -> Path:
        path = directory / TRUTH_FILE
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("patient_id", "entity_id", "household", "kind"))
            writer.writerows(self.truth)
        return path


def hospitals(network: Network) -> list[Facility]:
    """Where duplicate registrations happen: the general and specialist hospitals."""
    return [f for f in network.facilities if f.type.endswith("hospital")]


def _names(patient: Json) -> tuple[str, str]:
    name = (patient.get("name") or [{}])[0]
    return str(name.get("family", "")), "".join(name.get("given", []))


def _address_text(patient: Json) -> str:
    addresses = patient.get("address") or [{}]
    return str(addresses[0].get("text", ""))


def _phone(patient: Json) -> str:
    for telecom in patient.get("telecom", []):
        if telecom.get("system") == "phone":
            return str(telecom.get("value", ""))
    return ""


def _age(patient: Json, end: dt.date) -> int:
    birth = dt.date.fromisoformat(patient["birthDate"])
    return end.year - birth.year - ((end.month, end.day) < (birth.month, birth.day))


def _transpose(rng: random.Random, digits: str) -> str:
    """Swap two adjacent different digits (if any)."""
    spots = [k for k in range(len(digits) - 1) if digits[k] != digits[k + 1]]
    if not spots:
        return digits
    k = rng.choice(spots)
    return digits[:k] + digits[k + 1] + digits[k] + digits[k + 2 :]


def _birth_date(rng: random.Random, text: str) -> str:
    birth = dt.date.fromisoformat(text)
    roll = rng.random()
    if roll < P_DOB_SWAP and birth.day <= 12 and birth.day != birth.month:
        return dt.date(birth.year, birth.day, birth.month).isoformat()
    roll -= P_DOB_SWAP
    if roll < P_DOB_YEAR:
        try:
            return birth.replace(year=birth.year + rng.choice((-1, 1))).isoformat()
        except ValueError:  # 29 February
            return text
    roll -= P_DOB_YEAR
    if roll < P_DOB_TYPO:
        digits = _transpose(rng, birth.strftime("%Y%m%d"))
        try:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
        except ValueError:
            return text
    return text


def _telecom(rng: random.Random, telecoms: list[Json], parent_phone: str) -> list[Json]:
    if parent_phone:
        return [{"system": "phone", "value": parent_phone, "use": "mobile"}]
    if rng.random() < P_PHONE_MISSING:
        return []
    out = []
    for telecom in telecoms:
        value = str(telecom.get("value", ""))
        if telecom.get("system") == "phone":
            if rng.random() < P_PHONE_NEW:
                value = rng.choice(("139", "186", "137", "158")) + f"{rng.randrange(10**8):08d}"
            elif rng.random() < P_PHONE_TYPO:
                value = _transpose(rng, value)
        out.append({**telecom, "value": value})
    return out


def _address(rng: random.Random, addresses: list[Json]) -> list[Json]:
    if not addresses or rng.random() < P_ADDRESS_MISSING:
        return []
    address = dict(addresses[0])
    text = str(address.get("text", ""))
    line = str((address.get("line") or [""])[0])
    if rng.random() < P_MOVED:
        # Moved within the district: another lane and number on a road of the same subdistrict.
        road = line.split("路")[0] + "路" if "路" in line else line
        line = f"{road}{rng.randrange(1, 999)}弄{rng.randrange(1, 40)}号{rng.randrange(1, 18)}01室"
        text = text[: text.find(road)] + line if road and road in text else line
    if rng.random() < P_ADDRESS_SHORT:
        text = text.replace("上海市", "").replace("长宁区", "长宁", 1)
    address["text"], address["line"] = text, [line]
    address.pop("extension", None)  # a hospital desk does not geocode
    return [address]
