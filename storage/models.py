"""The data model: org tree, people and chat identities, households and pairings, visits with needs and
follow-ups, trainings, and the inbox / outbox / send ledger / audit log that make delivery safe."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.base import Base, JSONType, utcnow

# Big ids on PostgreSQL (a country's visits outgrow int4), plain INTEGER on SQLite so rowid aliasing works.
BigId = BigInteger().with_variant(Integer(), "sqlite")

LEVELS = ("district", "township", "village", "group")
ROLES = ("cadre", "secretary", "supervisor", "organiser", "admin")
HOUSEHOLD_TYPES = ("脱贫户", "监测户", "一般户", "低保户", "特困户")
VISIT_TYPES = ("入户走访", "电话回访", "集中走访")
NEED_CATEGORIES = ("住房", "饮水", "教育", "医疗", "就业", "产业", "生活物资", "兜底保障", "其他")


class OrgUnit(Base):
    """District → township → village → group. `path` is "/1/5/23/": a subtree is one prefix query."""

    __tablename__ = "org_unit"
    __table_args__ = (
        UniqueConstraint("parent_id", "name"),
        # varchar_pattern_ops lets PostgreSQL use the index for `path LIKE '/1/5/%'` whatever the collation.
        Index("ix_org_unit_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), default="")

    parent: Mapped[OrgUnit | None] = relationship(remote_side="OrgUnit.id")


class Person(Base):
    """A cadre, first secretary, supervisor, organiser or admin. Phone numbers are personal data."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    natural_key: Mapped[str] = mapped_column(String(160), unique=True)
    name: Mapped[str] = mapped_column(String(32), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16), default="cadre")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"), index=True)
    org_name: Mapped[str | None] = mapped_column(String(64))  # 责任人单位
    title: Mapped[str | None] = mapped_column(String(64))  # 责任人职务
    level: Mapped[str | None] = mapped_column(String(16))  # district/department/township/village pairing level
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # "21:00"; None = deployment default
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    snooze_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[OrgUnit | None] = relationship()
    identities: Mapped[list[ChatIdentity]] = relationship(back_populates="person")


class ChatIdentity(Base):
    """Who a chat account is: (channel, external id) → person. One person may use several channels."""

    __tablename__ = "chat_identity"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))  # the private chat to reach them in
    display_name: Mapped[str | None] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="identities")


class Invite(Base):
    """A one-time code. Only its hash is stored, so a database leak does not leak usable codes."""

    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_identity_id: Mapped[int | None] = mapped_column(ForeignKey("chat_identity.id"))


class ChatGroup(Base):
    """A group chat that receives bulletins and broadcasts (totals only, never personal data)."""

    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(128), default="")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"))
    bulletins: Mapped[bool] = mapped_column(Boolean, default=True)


class Household(Base):
    """A paired household. `phone` and `id_number` are personal data: mask them on every way out."""

    __tablename__ = "household"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    natural_key: Mapped[str] = mapped_column(String(200), unique=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)  # group if known, else village
    head_name: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int | None] = mapped_column(Integer)
    htype: Mapped[str] = mapped_column(String(16), default="一般户")
    poverty_cause: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    id_number: Mapped[str | None] = mapped_column(String(32))
    risk_flags: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    village: Mapped[OrgUnit] = relationship(foreign_keys=[village_id])
    unit: Mapped[OrgUnit] = relationship(foreign_keys=[unit_id])


class Pairing(Base):
    """一对一包保: a cadre is responsible for a household."""

    __tablename__ = "pairing"
    __table_args__ = (UniqueConstraint("person_id", "household_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)


class Entry(Base):
    """One message a cadre typed, understood once: the source of one or more visits (one entry, many uses).

    `state` is saved, pending (waiting for the user to pick a household) or undone.
    """

    __tablename__ = "entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    raw_text: Mapped[str] = mapped_column(Text)
    parse: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pending: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="saved")
    history: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    visits: Mapped[list[Visit]] = relationship(back_populates="entry", order_by="Visit.id")


class Visit(Base):
    __tablename__ = "visit"
    __table_args__ = (
        Index("ix_visit_household_date", "household_id", "visit_date"),
        # Live visits per household, newest last: "last visit" and "due?" are one index seek each.
        # `outcome` rides at the end so counting only met visits stays index-only.
        Index("ix_visit_live", "household_id", "deleted", "visit_date", "outcome"),
        # Visits in a date range without touching the table (digests' per-day counts).
        Index("ix_visit_date_live", "visit_date", "deleted", "household_id", "outcome"),
        # The few undone visits: needs and follow-ups are filtered against this set (storage/reports.py).
        Index("ix_visit_undone", "id", sqlite_where=text("deleted = 1"), postgresql_where=text("deleted")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(220), unique=True)  # entry key + "#n": idempotent
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entry.id"), index=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    visit_date: Mapped[date] = mapped_column(Date, index=True)
    visit_type: Mapped[str] = mapped_column(String(16), default="入户走访")
    household_size: Mapped[int | None] = mapped_column(Integer)
    raw_text: Mapped[str] = mapped_column(Text, default="")
    parse: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # met, or not_met (未遇: nobody home, call not answered): an attempt is kept but is not a visit in
    # coverage, digests, /my or the visit-due clock.
    outcome: Mapped[str] = mapped_column(String(8), default="met", server_default="met")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    entry: Mapped[Entry | None] = relationship(back_populates="visits")
    household: Mapped[Household] = relationship()
    needs: Mapped[list[Need]] = relationship(back_populates="visit", order_by="Need.id")
    follow_ups: Mapped[list[FollowUp]] = relationship(back_populates="visit", order_by="FollowUp.id")
    attachments: Mapped[list[VisitAttachment]] = relationship(back_populates="visit")


class RegistryChange(Base):
    """A household field stated in chat (人口, 电话): proposed until the cadre confirms it, never written silently.
    A confirmed change keeps the previous value so it can be restored. status: proposed, confirmed, restored,
    withdrawn (its entry was undone or re-derived), stale (the registry changed first, e.g. by an import)."""

    __tablename__ = "registry_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entry.id"), index=True)
    field: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class Need(Base):
    """缺一补一: something a household lacks, raised by a visit, open until met."""

    __tablename__ = "need"
    __table_args__ = (
        Index("ix_need_household_status", "household_id", "status"),
        # Digests: open needs oldest first and by category (covering), needs raised in a week (skip-scan
        # on status), needs met in a week.
        Index("ix_need_status_raised", "status", "raised_on", "category", "household_id", "visit_id"),
        Index("ix_need_status_met", "status", "met_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    category: Mapped[str] = mapped_column(String(16))
    item: Mapped[str] = mapped_column(String(128))
    qty: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    unit: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8), default="open")
    raised_on: Mapped[date] = mapped_column(Date)
    met_at: Mapped[datetime | None]
    met_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))

    visit: Mapped[Visit] = relationship(back_populates="needs")


class FollowUp(Base):
    __tablename__ = "follow_up"
    __table_args__ = (Index("ix_follow_up_open", "done_at", "due"),)  # open follow-ups by due date

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    action: Mapped[str] = mapped_column(String(200))
    due: Mapped[date | None] = mapped_column(Date, index=True)
    due_raw: Mapped[str | None] = mapped_column(String(32))
    done_at: Mapped[datetime | None]

    visit: Mapped[Visit] = relationship(back_populates="follow_ups")


class VisitAttachment(Base):
    __tablename__ = "visit_attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str | None] = mapped_column(String(255))
    file_name: Mapped[str | None] = mapped_column(String(255))
    mime: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    visit: Mapped[Visit] = relationship(back_populates="attachments")


class Course(Base):
    __tablename__ = "course"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    category: Mapped[str] = mapped_column(String(16), default="就业")
    description: Mapped[str | None] = mapped_column(Text)


class TrainingSession(Base):
    __tablename__ = "training_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime | None]
    place: Mapped[str] = mapped_column(String(128), default="")
    capacity: Mapped[int] = mapped_column(Integer, default=50)
    village_quota: Mapped[int | None] = mapped_column(Integer)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    deadline: Mapped[datetime | None]
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    contact: Mapped[str | None] = mapped_column(String(64))
    checkin_code: Mapped[str | None] = mapped_column(String(8))
    # Bumped on every seat change; the conditional UPDATE on it is what makes the last seat race-safe.
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    # draft (parsed from a notice, waiting for the organiser's confirm button), open, cancelled.
    status: Mapped[str] = mapped_column(String(16), default="open")
    notice_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    course: Mapped[Course] = relationship()


class Signup(Base):
    """status: confirmed, placeholder (a seat held for a name to come), waitlisted, cancelled,
    attended, no_show."""

    __tablename__ = "signup"
    __table_args__ = (Index("ix_signup_session_status", "session_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id"))
    participant_name: Mapped[str | None] = mapped_column(String(32))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"))
    # As written, for villages not (yet) in the org tree; kept alongside village_id for the roster.
    village_name: Mapped[str | None] = mapped_column(String(32))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    phone: Mapped[str | None] = mapped_column(String(32))
    age: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(128))  # e.g. "替换 韦小兵"
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    wait_position: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    session: Mapped[TrainingSession] = relationship()


class InboxMessage(Base):
    """Every incoming update, raw, written before anything else. state: received, done, failed, ignored."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("channel", "chat_id", "message_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    message_key: Mapped[str] = mapped_column(String(128))
    sender_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    error_ref: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """Every outgoing message and its delivery state: pending, sent, failed, blocked."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "not_before"),
        Index("ix_outbox_transport_msg", "channel", "chat_id", "transport_message_id"),
        Index("ix_outbox_card", "channel", "chat_id", "card_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_kind: Mapped[str | None] = mapped_column(String(16))  # document | photo
    file_content: Mapped[bytes | None] = mapped_column(LargeBinary)
    card_key: Mapped[str | None] = mapped_column(String(64))
    edit_of_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    transport_message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(255))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    batch: Mapped[str | None] = mapped_column(String(64), index=True)  # a broadcast's delivery report
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class SendLedger(Base):
    """(kind, period, recipient) → sent at most once, across restarts and processes."""

    __tablename__ = "send_ledger"
    __table_args__ = (UniqueConstraint("kind", "period", "recipient"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(96))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class CacheVersion(Base):
    """A change token per cached kind of data, replaced with a random value by database triggers (migration
    0003) on every write that could make a process's cache stale: 'people' (people, chat identities,
    pairings, org units: who a sender is and what they may see) and 'households' (households and org-unit
    names: the name registry). Random, not a counter, so a truncated and refilled database can never
    reproduce a token a process cached; a missing row means "do not trust any cache"."""

    __tablename__ = "cache_version"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)
