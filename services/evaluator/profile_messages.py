"""Profiles to and from evaluator messages: UpsertProfiles, GetProfile and the profile fields
of StreamAudience."""

from __future__ import annotations

from libs.common.errors import InvalidArgument
from libs.model.definition_proto import (
    datetime_to_timestamp,
    instant_from_proto,
    map_items,
    value_to_proto,
)
from segments.v1 import evaluator_service_pb2 as pb
from services.evaluator.domain.records import CHANNELS, ChannelState, Profile


def profile_to_pb(project: str, p: Profile) -> pb.Profile:
    return pb.Profile(
        name=f"projects/{project}/profiles/{p.user_id}",
        user_id=p.user_id, email=p.email, phone=p.phone, display_name=p.display_name,
        test_user=p.test_user, blocked=p.blocked,
        channels=[
            pb.ChannelState(channel=pb.Channel.Value(f"CHANNEL_{c}"), address=s.address,
                            unsubscribed=s.unsubscribed, blocked=s.blocked)
            for c, s in p.channels.items()
        ],
        properties={k: value_to_proto(v) for k, v in p.properties.items()},
        update_time=datetime_to_timestamp(p.update_time) if p.update_time else None,
    )  # fmt: skip


def profile_from_pb(msg: pb.Profile, path: str) -> Profile:
    channels: dict[str, ChannelState] = {}
    for i, c in enumerate(msg.channels):
        known = c.channel in pb.Channel.values()
        name = pb.Channel.Name(c.channel).removeprefix("CHANNEL_") if known else ""
        if name not in CHANNELS:
            raise InvalidArgument.field(f"{path}.channels[{i}].channel", "must be set")
        channels[name] = ChannelState(c.address, c.unsubscribed, c.blocked)
    return Profile(
        user_id=msg.user_id, email=msg.email.strip(), phone=msg.phone.strip(),
        display_name=msg.display_name, test_user=msg.test_user, blocked=msg.blocked,
        channels=channels, properties=map_items(msg.properties.items(), f"{path}.properties"),
        update_time=instant_from_proto(msg.update_time, f"{path}.update_time")
        if msg.HasField("update_time") else None,
    )  # fmt: skip


def audience_member(user_id: str, profile: Profile | None, fields: list[str]) -> pb.AudienceMember:
    member = pb.AudienceMember(user_id=user_id)
    if profile is None:
        return member
    builtin = {"user_id": profile.user_id, "email": profile.email, "phone": profile.phone,
               "display_name": profile.display_name}  # fmt: skip
    for f in fields:
        if f in builtin:
            if builtin[f]:
                member.fields[f].CopyFrom(value_to_proto(builtin[f]))
        elif f in profile.properties:
            member.fields[f].CopyFrom(value_to_proto(profile.properties[f]))
    return member
