"""The care network of Changning: hospitals, CHCs, stations, the CDC and municipal hospitals.

Facilities and their addresses: china-rules.md §7 and the district plan (seed 004: "10 个中心、
1 个分中心、44 个服务站", 2.推进标准化达标建设). Capacity rules: ICU beds ≥10 % of beds and
convertible ICU beds ≥10 % (seed 004, 应急医疗救治体系; annex 6 indicator 13); every CHC and
station has a fever clinic or sentinel room (annex 6 indicator 15: 100 %). Bed counts other than
Tongren's 1,200 are assumptions (docs/synth.md A5). Facilities do not depend on the seed: the same
ids, names and places come out of every run, so two districts can share one directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from yilian.fhir import systems
from yilian.synth.fhir import Json, coding, concept, geolocation, identifier, ref
from yilian.synth.fhir import subdistrict_extension as subdistrict_ext
from yilian.synth.geography import (
    BY_CODE,
    CITY_NAME,
    DISTRICT_CODE,
    DISTRICT_NAME,
    SUBDISTRICTS,
    apportion,
    place_near,
)
from yilian.synth.identifiers import uscc

# Care-network tiers (分级诊疗), codes of systems.ORGANIZATION_TIER (docs/synth.md "Codes").
TIERS = {
    "municipal": "市级医院",
    "district-regional": "区域医疗中心/区级医院",
    "community": "社区卫生服务中心",
    "station": "社区卫生服务站",
    "public-health": "公共卫生机构",
}
# Facility types, codes of systems.ORGANIZATION_TYPE.
TYPES = {
    "general-hospital": "综合医院",
    "integrated-hospital": "中西医结合医院",
    "tcm-hospital": "中医医院",
    "maternal-child-hospital": "妇幼保健院",
    "mental-health-center": "精神卫生中心",
    "cdc": "疾病预防控制中心",
    "chc": "社区卫生服务中心",
    "station": "社区卫生服务站",
}
# Departments (科室), codes of systems.DEPARTMENT; also Encounter.serviceType and
# PractitionerRole.specialty, so a visit and a doctor name the same department.
DEPARTMENTS = {
    "general-practice": "全科",
    "internal-medicine": "内科",
    "cardiology": "心内科",
    "endocrinology": "内分泌科",
    "respiratory": "呼吸科",
    "neurology": "神经内科",
    "gastroenterology": "消化科",
    "surgery": "外科",
    "orthopaedics": "骨科",
    "paediatrics": "儿科",
    "obstetrics-gynaecology": "妇产科",
    "psychiatry": "精神科",
    "tcm": "中医科",
    "rehabilitation": "康复科",
    "geriatrics": "老年医学科",
    "emergency": "急诊科",
    "icu": "重症医学科",
    "fever-clinic": "发热门诊",
    "laboratory": "检验科",
    "radiology": "放射科",
    "public-health": "公共卫生科",
    "infectious-disease-control": "传染病防制科",
}

_GENERAL = (
    "internal-medicine", "cardiology", "endocrinology", "respiratory", "neurology",
    "gastroenterology", "surgery", "orthopaedics", "paediatrics", "obstetrics-gynaecology",
    "psychiatry", "geriatrics", "rehabilitation", "emergency", "icu", "fever-clinic",
    "laboratory", "radiology",
)  # fmt: skip
_CHC_DEPARTMENTS = (
    "general-practice", "tcm", "rehabilitation", "paediatrics", "fever-clinic",
    "public-health", "laboratory", "radiology",
)  # fmt: skip


@dataclass(frozen=True)
class Facility:
    key: str  # stable id stem: Organization/{key}, Location/{key}
    name: str
    tier: str
    type: str
    subdistrict: str | None  # township code, None for municipal hospitals outside Changning
    address: str
    latitude: float
    longitude: float
    beds: int = 0
    icu_beds: int = 0
    convertible_icu_beds: int = 0
    fever_clinic: bool = False
    departments: tuple[str, ...] = ()
    part_of: str | None = None  # a station's CHC
    serial: int = 0

    @property
    def uscc(self) -> str:
        return uscc("310000" if self.subdistrict is None else DISTRICT_CODE, self.serial)


def _icu(beds: int) -> tuple[int, int]:
    """ICU and convertible ICU beds at the plan's floor of 10 % each (seed 004)."""
    return -(-beds // 10), -(-beds // 10)


def _hospital(
    key: str, name: str, tier: str, kind: str, where: str | None, address: str,
    at: tuple[float, float], beds: int, departments: tuple[str, ...], serial: int,
) -> Facility:  # fmt: skip
    icu, convertible = _icu(beds) if "icu" in departments else (0, 0)
    return Facility(
        key, name, tier, kind, where, address, at[0], at[1], beds, icu, convertible,
        "fever-clinic" in departments, departments, None, serial,
    )  # fmt: skip


def district_hospitals() -> list[Facility]:
    """The district-level hospitals, the CDC and three municipal hospitals for referral."""
    return [
        _hospital(
            "tongren",
            "上海市同仁医院",
            "district-regional",
            "general-hospital",
            "310105102",
            "仙霞路1111号",
            (31.2081, 121.3748),
            1200,
            _GENERAL,
            1,
        ),
        _hospital(
            "guanghua",
            "上海市光华中西医结合医院",
            "district-regional",
            "integrated-hospital",
            "310105004",
            "新华路540号",
            (31.2040, 121.4258),
            400,
            (
                "internal-medicine",
                "orthopaedics",
                "rehabilitation",
                "tcm",
                "respiratory",
                "cardiology",
                "icu",
                "fever-clinic",
                "laboratory",
                "radiology",
            ),
            2,
        ),
        _hospital(
            "tianshan-tcm",
            "长宁区天山中医医院",
            "district-regional",
            "tcm-hospital",
            "310105006",
            "娄山关路868号",
            (31.2148, 121.4052),
            200,
            (
                "tcm",
                "internal-medicine",
                "rehabilitation",
                "fever-clinic",
                "laboratory",
                "radiology",
            ),
            3,
        ),
        _hospital(
            "mch",
            "长宁区妇幼保健院",
            "district-regional",
            "maternal-child-hospital",
            "310105001",
            "武夷路773号",
            (31.2165, 121.4228),
            250,
            ("obstetrics-gynaecology", "paediatrics", "icu", "laboratory", "radiology"),
            4,
        ),
        _hospital(
            "mental-health",
            "长宁区精神卫生中心",
            "district-regional",
            "mental-health-center",
            "310105010",
            "协和路299号",
            (31.2035, 121.3702),
            300,
            ("psychiatry", "laboratory"),
            5,
        ),
        _hospital(
            "cdc",
            "长宁区疾病预防控制中心",
            "public-health",
            "cdc",
            "310105006",
            "长宁区",
            (31.2120, 121.4105),
            0,
            ("infectious-disease-control", "laboratory"),
            6,
        ),
        _hospital(
            "huashan",
            "复旦大学附属华山医院",
            "municipal",
            "general-hospital",
            None,
            "静安区乌鲁木齐中路12号",
            (31.2165, 121.4437),
            1300,
            _GENERAL,
            7,
        ),
        _hospital(
            "ruijin",
            "上海交通大学医学院附属瑞金医院",
            "municipal",
            "general-hospital",
            None,
            "黄浦区瑞金二路197号",
            (31.2117, 121.4680),
            2100,
            _GENERAL,
            8,
        ),
        _hospital(
            "zhongshan",
            "复旦大学附属中山医院",
            "municipal",
            "general-hospital",
            None,
            "徐汇区枫林路180号",
            (31.1995, 121.4527),
            2000,
            _GENERAL,
            9,
        ),
    ]


STATIONS_TOTAL = 44  # seed 004: "44 个服务站"
CHC_BEDS = 40  # assumption A5: community nursing/rehabilitation beds per CHC


def chc_key(code: str) -> str:
    return f"chc-{code}"


def community_facilities(populations: dict[str, int]) -> list[Facility]:
    """One CHC per subdistrict and the 44 stations, split by population share (at least 2).

    The station split uses the scale-1.0 weights, not ``populations``, so the network is the
    same at every scale (only staff numbers scale).
    """
    del populations  # the network does not depend on scale; staff does (see staff.py)
    extra = apportion(
        STATIONS_TOTAL - 2 * len(SUBDISTRICTS), [s.population_weight for s in SUBDISTRICTS]
    )
    facilities: list[Facility] = []
    for index, (sub, more) in enumerate(zip(SUBDISTRICTS, extra, strict=True)):
        lat, lon = place_near(sub, "chc")
        chc = Facility(
            chc_key(sub.code), f"上海市长宁区{sub.short}社区卫生服务中心", "community", "chc",
            sub.code, f"{sub.roads[0]}{100 + index * 37}号", lat, lon, CHC_BEDS, 0, 0, True,
            _CHC_DEPARTMENTS, None, 100 + index,
        )  # fmt: skip
        facilities.append(chc)
        for n in range(2 + more):
            road = sub.roads[(n + 1) % len(sub.roads)]
            lat, lon = place_near(sub, "station", n)
            facilities.append(
                Facility(
                    f"chs-{sub.code}-{n + 1:02d}",
                    f"{chc.name}{road}服务站",
                    "station",
                    "station",
                    sub.code,
                    f"{road}{20 + n * 53}号",
                    lat,
                    lon,
                    0,
                    0,
                    0,
                    True,
                    ("general-practice",),
                    chc.key,
                    200 + 10 * index + n,
                )  # fmt: skip
            )
    return facilities


@dataclass
class Network:
    facilities: list[Facility] = field(default_factory=list)

    def by_key(self, key: str) -> Facility:
        return next(f for f in self.facilities if f.key == key)

    def chc_of(self, subdistrict: str) -> Facility:
        return self.by_key(chc_key(subdistrict))

    def stations_of(self, subdistrict: str) -> list[Facility]:
        return [f for f in self.facilities if f.tier == "station" and f.subdistrict == subdistrict]


def build_network(populations: dict[str, int]) -> Network:
    return Network(district_hospitals() + community_facilities(populations))


def department_id(facility: Facility, department: str) -> str:
    return f"{facility.key}-{department}"


def _address(facility: Facility) -> Json:
    address: Json = {"use": "work", "type": "physical", "city": CITY_NAME, "state": CITY_NAME}
    if facility.subdistrict is None:
        address["line"] = [facility.address]
        address["text"] = f"{CITY_NAME}{facility.address}"
    else:
        sub = BY_CODE[facility.subdistrict]
        address |= {
            "line": [facility.address],
            "district": DISTRICT_NAME,
            "postalCode": sub.postal_code,
            "text": f"{CITY_NAME}{DISTRICT_NAME}{facility.address}",
            "extension": [subdistrict_ext(sub.code, sub.name)],
        }
    address.setdefault("extension", []).append(geolocation(facility.latitude, facility.longitude))
    return address


def organization(facility: Facility) -> Json:
    org: Json = {
        "resourceType": "Organization",
        "id": facility.key,
        "identifier": [identifier(systems.USCC, facility.uscc, "XX")],
        "active": True,
        "type": [
            concept(systems.HL7_ORGANIZATION_TYPE, "prov", "Healthcare Provider")
            if facility.tier != "public-health"
            else concept(systems.HL7_ORGANIZATION_TYPE, "govt", "Government"),
            concept(systems.ORGANIZATION_TIER, facility.tier, TIERS[facility.tier]),
            concept(systems.ORGANIZATION_TYPE, facility.type, TYPES[facility.type]),
        ],
        "name": facility.name,
        "address": [_address(facility)],
    }
    if facility.part_of:
        org["partOf"] = ref("Organization", facility.part_of)
    return org


def capacity_extension(facility: Facility) -> Json:
    """Beds, ICU beds, convertible ICU beds and fever clinic (docs/synth.md "Capacity")."""
    return {
        "url": systems.EXT_FACILITY_CAPACITY,
        "extension": [
            {"url": "beds", "valueUnsignedInt": facility.beds},
            {"url": "icuBeds", "valueUnsignedInt": facility.icu_beds},
            {"url": "convertibleIcuBeds", "valueUnsignedInt": facility.convertible_icu_beds},
            {"url": "feverClinic", "valueBoolean": facility.fever_clinic},
        ],
    }


def location(facility: Facility) -> Json:
    return {
        "resourceType": "Location",
        "id": facility.key,
        "extension": [capacity_extension(facility)],
        "status": "active",
        "name": facility.name,
        "mode": "instance",
        "type": [concept(systems.ORGANIZATION_TYPE, facility.type, TYPES[facility.type])],
        "address": _address(facility),
        "physicalType": concept(systems.HL7_LOCATION_PHYSICAL_TYPE, "bu", "Building"),
        "position": {"longitude": facility.longitude, "latitude": facility.latitude},
        "managingOrganization": ref("Organization", facility.key, facility.name),
    }


def department(facility: Facility, code: str) -> Json:
    return {
        "resourceType": "Organization",
        "id": department_id(facility, code),
        "active": True,
        "type": [
            concept(systems.HL7_ORGANIZATION_TYPE, "dept", "Hospital Department"),
            {"coding": [coding(systems.DEPARTMENT, code, DEPARTMENTS[code])]},
        ],
        "name": f"{facility.name}{DEPARTMENTS[code]}",
        "partOf": ref("Organization", facility.key, facility.name),
    }


def network_resources(network: Network) -> Iterator[Json]:
    """Organization + Location per facility, then one Organization per department."""
    for facility in network.facilities:
        yield organization(facility)
        yield location(facility)
        if facility.tier != "station":
            for code in facility.departments:
                yield department(facility, code)
