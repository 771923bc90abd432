"""Every identifier-system and code-system URI yilian writes or reads, named by meaning.

One place, so no URI is typed twice (STYLE.md §7, anti-pattern 4). Where a public URI exists we
use it (HL7's, LOINC's); China's national identifiers have no FHIR naming system we can cite, so
they live in yilian's own namespace ``http://yilian.health/fhir/``. docs/identifiers.md gives the
reasons, the value formats and the rules checked for each.
"""

from __future__ import annotations

_YILIAN = "http://yilian.health/fhir"

# --- Identifier systems (Identifier.system) -----------------------------------------------------
RESIDENT_ID = f"{_YILIAN}/sid/cn-resident-id"  # 居民身份证号, GB 11643-1999, 18 chars, checked
MEDICAL_INSURANCE_CARD = f"{_YILIAN}/sid/cn-medical-insurance-card"  # 医保卡号 / 医保电子凭证
MRN_PREFIX = f"{_YILIAN}/sid/mrn/"  # hospital MRN (病案号): MRN_PREFIX + facility USCC
USCC = f"{_YILIAN}/sid/cn-uscc"  # 统一社会信用代码 of organisations, GB 32100-2015, 18 chars
PRACTITIONER_LICENCE = f"{_YILIAN}/sid/cn-practitioner-licence"  # 医师执业证书编码
HL7_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"  # Identifier.type codes
# Identifier.type code ``unverified``: a resident ID kept although it fails GB 11643 (docs/mpi.md)
IDENTIFIER_VERIFICATION = f"{_YILIAN}/CodeSystem/identifier-verification"

# --- Code systems (Coding.system) ---------------------------------------------------------------
ICD10_CN = f"{_YILIAN}/CodeSystem/icd-10-cn"  # ICD-10 国家临床版 2.0 (GB/T 14396 extension codes)
ICD10_WHO = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10, as HL7 names it (international data)
LOINC = "http://loinc.org"  # LOINC, for laboratory and vital-sign observations
SNOMED_CT = "http://snomed.info/sct"  # SNOMED CT, met in data from foreign systems (Synthea)
LOCAL_LAB_PREFIX = f"{_YILIAN}/CodeSystem/lab/"  # a facility's own lab codes: + facility USCC
ORGANIZATION_TIER = f"{_YILIAN}/CodeSystem/organization-tier"  # 分级诊疗 tier: municipal…station
ORGANIZATION_TYPE = (
    f"{_YILIAN}/CodeSystem/organization-type"  # 医院, 社区卫生服务中心, 疾控中心 ...
)
UCUM = "http://unitsofmeasure.org"  # UCUM units of Quantity values
ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"  # Patient.gender codes


def mrn_system(facility_uscc: str) -> str:
    """The MRN identifier system of one facility, keyed by its unified social credit code."""
    return f"{MRN_PREFIX}{facility_uscc}"


def local_lab_system(facility_uscc: str) -> str:
    """The code system of one facility's local laboratory codes."""
    return f"{LOCAL_LAB_PREFIX}{facility_uscc}"


# --- Added for the synthetic district (src/yilian/synth, docs/synth.md) -------------------------
# yilian's own code systems and identifier systems (no citable national URI: docs/identifiers.md).
HOUSEHOLD = f"{_YILIAN}/sid/household"  # 户号: a household (Group) number, synthetic
TOWNSHIP = f"{_YILIAN}/CodeSystem/cn-township"  # 9-digit 乡级区划代码 of a 街道/镇 (GB/T 10114)
DEPARTMENT = f"{_YILIAN}/CodeSystem/department"  # 科室: general-practice, fever-clinic, ...
FAMILY_DOCTOR_CONTRACT = f"{_YILIAN}/CodeSystem/family-doctor-contract"  # 1+1+1 roles
# Extensions (Extension.url).
EXT_GEOLOCATION = "http://hl7.org/fhir/StructureDefinition/geolocation"  # HL7 core extension
EXT_SUBDISTRICT = f"{_YILIAN}/StructureDefinition/subdistrict"  # Address: valueCoding TOWNSHIP
EXT_FACILITY_CAPACITY = f"{_YILIAN}/StructureDefinition/facility-capacity"  # Location: beds ...
# HL7 terminology code systems (public URIs).
HL7_ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
HL7_PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
HL7_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
HL7_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
HL7_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
HL7_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
HL7_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"  # Encounter.class
HL7_DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"  # report category
HL7_LOCATION_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
HL7_TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
HL7_EPISODE_OF_CARE_TYPE = "http://terminology.hl7.org/CodeSystem/episodeofcare-type"

# --- Added for tiered care (src/yilian/referral, docs/referral.md) ------------------------------
# Slot channels: a Slot reserved for community referrals carries EXT_SLOT_CHANNEL (valueCode from
# SLOT_CHANNEL) and EXT_SLOT_RELEASE_TIME (valueDateTime: when an unused slot returns to the
# public pool); the channel is mirrored in Slot.meta.tag (SLOT_CHANNEL) so `_tag` can find them.
SLOT_CHANNEL = f"{_YILIAN}/CodeSystem/slot-channel"  # community-referral | public
EXT_SLOT_CHANNEL = f"{_YILIAN}/StructureDefinition/slot-reserved-channel"  # valueCode
EXT_SLOT_RELEASE_TIME = f"{_YILIAN}/StructureDefinition/slot-release-time"  # valueDateTime
EXT_SLOT_BOOKING_OPENS = f"{_YILIAN}/StructureDefinition/slot-booking-opens"  # valueDateTime
EXT_SLOT_RELEASED = f"{_YILIAN}/StructureDefinition/slot-released-to-public"  # valueDateTime
EXT_SCHEDULE_ORGANIZATION = f"{_YILIAN}/StructureDefinition/schedule-organization"  # valueRef
CLINIC_LEVEL = f"{_YILIAN}/CodeSystem/clinic-level"  # expert (专家门诊) | general (普通门诊)
# Referrals (ServiceRequest + Task).
REFERRAL_DIRECTION = f"{_YILIAN}/CodeSystem/referral-direction"  # up (上转) | down (下转)
REFERRAL_PRIORITY_GROUP = f"{_YILIAN}/CodeSystem/referral-priority-group"  # Task.meta.tag
REFERRAL_ACTION = f"{_YILIAN}/CodeSystem/referral-action"  # Task.businessStatus codes
REFERRAL_MESSAGE = f"{_YILIAN}/CodeSystem/referral-message"  # Communication.category
EXT_TASK_DEADLINE_KIND = f"{_YILIAN}/StructureDefinition/referral-deadline-rule"  # valueCode
CONTRACT_PRIORITY_GROUP = f"{_YILIAN}/CodeSystem/contract-priority-group"  # 60+, chronic, ...
EXT_CONTRACT_PRIORITY_GROUP = f"{_YILIAN}/StructureDefinition/contract-priority-group"
# Mutual recognition of results (检查检验结果互认).
RESULT_RECOGNITION = f"{_YILIAN}/CodeSystem/result-recognition"  # recognised | declined | offered
EXT_RECOGNITION = f"{_YILIAN}/StructureDefinition/result-recognition"  # complex extension
SNOMED_REFERRAL = "3457005"  # SNOMED CT "Patient referral" (R4 servicerequest-category)
