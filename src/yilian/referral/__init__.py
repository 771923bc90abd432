"""Tiered care (分级诊疗): reserved referral slots, two-way referral, 1+1+1 contracts, recognition.

Everything is a FHIR resource in the store (Schedule, Slot, Appointment, ServiceRequest, Task,
CareTeam, EpisodeOfCare, DocumentReference, CarePlan); this package holds the rules.
docs/referral.md describes the model, the extensions, the state machine, the configuration
and the API.
"""
