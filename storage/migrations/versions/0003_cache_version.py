"""cache_version: change tokens, replaced by triggers, that let every process keep per-sender and registry
caches without serving stale data after another process changed people, pairings or households.

Revision ID: 0003_cache_version
Revises: 0002_visit_outcome
Create Date: 2026-12-07 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_cache_version"
down_revision: str | None = "0002_visit_outcome"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (token, table, events). Triggers of one table fire in name order, so "households" is always locked before
# "people" on PostgreSQL (an import writes both): one order, no deadlock between two such transactions.
# The household registry ignores size and the rest, so only these columns move its token.
BUMPS: list[tuple[str, str, list[str]]] = [
    ("households", "household", ["INSERT", "DELETE", "UPDATE OF head_name, village_id"]),
    ("households", "org_unit", ["INSERT", "DELETE", "UPDATE OF name, level"]),
    ("people", "person", ["INSERT", "DELETE", "UPDATE"]),
    ("people", "chat_identity", ["INSERT", "DELETE", "UPDATE"]),
    ("people", "pairing", ["INSERT", "DELETE", "UPDATE"]),
    ("people", "org_unit", ["INSERT", "DELETE", "UPDATE"]),
]

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION bangfu_bump_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cache_version (name, token) VALUES (TG_ARGV[0], (random() * 9.2e18)::bigint - 4.6e18::bigint)
  ON CONFLICT (name) DO UPDATE SET token = excluded.token;
  RETURN NULL;
END $$
"""


def _trigger_name(token: str, table: str, event: str) -> str:
    return f"bump_{token}_{table}_{event.split()[0].lower()}"


def upgrade() -> None:
    op.create_table(
        "cache_version",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_version")),
    )
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute(PG_FUNCTION)
    for token, table, events in BUMPS:
        for event in events:
            name = _trigger_name(token, table, event)
            if pg:
                # Per statement: a 10,000-row import moves the token once.
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH STATEMENT "
                           f"EXECUTE FUNCTION bangfu_bump_cache_version('{token}')")
            else:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN "
                           f"INSERT INTO cache_version (name, token) VALUES ('{token}', random()) "
                           f"ON CONFLICT (name) DO UPDATE SET token = excluded.token; END")
    tokens = sa.table("cache_version", sa.column("name", sa.String), sa.column("token", sa.BigInteger))
    op.bulk_insert(tokens, [{"name": "households", "token": 1}, {"name": "people", "token": 1}])


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for token, table, events in BUMPS:
        for event in events:
            name = _trigger_name(token, table, event)
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if pg else f"DROP TRIGGER IF EXISTS {name}")
    if pg:
        op.execute("DROP FUNCTION IF EXISTS bangfu_bump_cache_version()")
    op.drop_table("cache_version")
