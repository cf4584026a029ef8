"""visit outcome (未遇 attempts) and chat-proposed registry changes

Revision ID: 0002_visit_outcome
Revises: 0001
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0002_visit_outcome"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        # Existing rows were all counted as visits: they stay "met".
        batch_op.add_column(sa.Column("outcome", sa.String(length=8), server_default="met", nullable=False))
        batch_op.drop_index("ix_visit_live")
        batch_op.drop_index("ix_visit_date_live")
        batch_op.create_index("ix_visit_live", ["household_id", "deleted", "visit_date", "outcome"], unique=False)
        batch_op.create_index("ix_visit_date_live", ["visit_date", "deleted", "household_id", "outcome"],
                              unique=False)

    op.create_table(
        "registry_change",
        sa.Column("id", _ID, nullable=False),
        sa.Column("household_id", _ID, nullable=False),
        sa.Column("entry_id", _ID, nullable=True),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("old_value", sa.String(length=64), nullable=True),
        sa.Column("new_value", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("proposed_by_id", _ID, nullable=True),
        sa.Column("decided_by_id", _ID, nullable=True),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"],
                                name=op.f("fk_registry_change_household_id_household")),
        sa.ForeignKeyConstraint(["entry_id"], ["entry.id"], name=op.f("fk_registry_change_entry_id_entry")),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["person.id"],
                                name=op.f("fk_registry_change_proposed_by_id_person")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["person.id"],
                                name=op.f("fk_registry_change_decided_by_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_change")),
    )
    with op.batch_alter_table("registry_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_change_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registry_change_entry_id"), ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("registry_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_change_entry_id"))
        batch_op.drop_index(batch_op.f("ix_registry_change_household_id"))
    op.drop_table("registry_change")
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_date_live")
        batch_op.drop_index("ix_visit_live")
        batch_op.create_index("ix_visit_date_live", ["visit_date", "deleted", "household_id"], unique=False)
        batch_op.create_index("ix_visit_live", ["household_id", "deleted", "visit_date"], unique=False)
        batch_op.drop_column("outcome")
