"""Estimating or explaining an unsaved list definition says the segment must be saved first
(issue 13, defect 3)."""

from __future__ import annotations

from segments.v1 import definition_model_pb2 as dm
from segments.v1 import evaluator_service_pb2 as pb

from .serving import Served, invalid_fields, served

__all__ = ["served"]

LISTS = {
    "custom_list": dm.Definition(
        custom_list=dm.CustomListDefinition(identity_kind=dm.IDENTITY_KIND_USER_ID)
    ),
    "partner": dm.Definition(partner=dm.PartnerDefinition(partner="p", external_cohort_id="c")),
}


async def test_unsaved_list_definitions_must_be_saved_first(served: Served) -> None:
    for kind, definition in LISTS.items():
        for call in (
            served.evaluator.EstimateDefinition(
                pb.EstimateDefinitionRequest(parent=served.parent, definition=definition)
            ),
            served.evaluator.ExplainSegment(
                pb.ExplainSegmentRequest(parent=served.parent, definition=definition)
            ),
        ):
            fields = await invalid_fields(call)
            assert "saved first" in fields[f"definition.{kind}"], fields
