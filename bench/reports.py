"""Dashboard widgets: Formloom's compiled reports against hand-written SQL, on PostgreSQL.

The sales pack is published in a schema of its own (`formloom publish definitions/sales
--db URL`), the demo users are created (`runtime.seed.seed_users`, plus `--reps` more
sales reps), and the tables are filled with set-based SQL (`INSERT … SELECT …
generate_series`), not through the API:

* `--leads` leads (1,000,000) over two years: status, source channel, owner among the
  reps, the duplicate keys the records service keeps (`_dup_n`), 1% merged into another;
* their process history in `formloom_audit`: a `create` row per record and a
  `transition` row per state the record passed through (a converted lead has moved to
  MQL, SQL and converted), the same for opportunities, contracts and payment milestones;
* accounts, opportunities (one per converted lead, `--leads`/5 in all), a quote and a
  contract per opportunity (status, `signed_at`, amount), a sales order per signed
  contract topped up to `--leads`/5, and two payment milestones per order (amount,
  paid amount, due date, status; `balance` computed as its formula does).

Then every table is vacuumed and analysed. For each widget of the sales dashboard the
script times `ReportsService.data()` (the admin user, no parameters, then a `from`/`to`
range of `--days` days) against one hand-written SQL statement with the same result
(GROUP BY, FILTER, a window or a join where needed; for the funnel, per stage, the
records in the state now or with a transition into it in `formloom_audit`), executed and
fetched through the same engine. It checks that both give the same rows (numbers
compared with a tolerance), then alternates them over `--runs` runs, together with
Formloom's own statement executed alone (the "its SQL" column: what the SQL costs, the
rest of Formloom's time being Python), and prints the medians and the ratio
formloom/hand-written against the 1.3× target. The `--as-rep` widgets are also timed as
the sales rep li.rep, with the same row scope (`created_by` or `owner` is the rep)
written into the hand-written SQL. `--explain` prints EXPLAIN (ANALYZE, BUFFERS) of both
statements for every case above the target; `--no-jit` runs both sides with `jit = off`.

Only 127.0.0.1 is contacted; the schema `bench_<random>` is dropped at the end.

    .venv/bin/python bench/reports.py                   # 1,000,000 leads: 4-6 minutes
    .venv/bin/python bench/reports.py --leads 100000    # under a minute
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
TARGET = 1.3
ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "definitions" / "sales"
APP = "sales"
DASHBOARD = "sales"
ZONE = "Asia/Shanghai"  # the pack's time zone (app.yaml)
REP = "li.rep"  # the sales rep whose widgets are also timed (`--as-rep`)

SOURCES = (  # lead.source, in the order of the definition; the first ones are drawn more often
    "seo", "content", "social", "sem", "feed_ads", "online_expo", "webinar", "trade_show",
    "conference", "partner_referral", "customer_referral", "field_visit", "cross_sell",
    "upsell", "repeat_purchase", "service_referral",
)  # fmt: skip


# ------------------------------------------------------------------------ data generation


def sha40(text: str) -> str:
    """The duplicate key the records service stores: SHA-256 of the normalised values, 40 hex digits."""
    return f"left(encode(sha256(convert_to({text}, 'UTF8')), 'hex'), 40)"


def history_sql(form: str, table: str, path: str, initial: str, actions: dict[str, str]) -> str:
    """`transition` rows for every state in `path` (an SQL text[] per record `t`), a day apart."""
    action = "CASE s.state " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in actions.items()) + " END"
    return f"""
        INSERT INTO formloom_audit (app, form, record_id, action, channel, user_id, at, changes)
        SELECT 'sales', '{form}', t.id, 'transition', 'api', t.owner,
               least(t.created_at + s.n * interval '1 day', now()),
               jsonb_build_object('action', {action}, 'from', coalesce(p.path[s.n - 1], '{initial}'),
                                  'to', s.state)
        FROM {table} t
        CROSS JOIN LATERAL (SELECT CAST({path} AS text[]) AS path) p
        CROSS JOIN LATERAL unnest(p.path) WITH ORDINALITY AS s(state, n)
    """


def created_sql(form: str, table: str, status: str, initial: str) -> str:
    """A `create` row per record, as the records service writes one for every new record."""
    return f"""
        INSERT INTO formloom_audit (app, form, record_id, action, channel, user_id, at, changes)
        SELECT 'sales', '{form}', id, 'create', 'api', created_by, created_at,
               jsonb_build_object('{status}', jsonb_build_array(NULL, '{initial}'), 'owner',
                                  jsonb_build_array(NULL, owner))
        FROM {table}
    """


ACCOUNTS = f"""
    INSERT INTO sales__account (id, created_at, updated_at, created_by, version, name, industry, region,
                                owner, _dup_0)
    SELECT i, c, c, o, 1, 'Company ' || i,
           (ARRAY['manufacturing', 'it_software', 'finance', 'retail', 'healthcare', 'education',
                  'energy', 'logistics', 'construction', 'government', 'other'])[1 + i % 11],
           (ARRAY['north_china', 'northeast', 'east_china', 'south_china', 'central_china', 'southwest',
                  'northwest', 'hk_macao_taiwan', 'overseas'])[1 + i % 9],
           o, {sha40("'company' || i")}
    FROM (SELECT i, now() - interval '730 days' * random() AS c,
                 (CAST(:reps AS bigint[]))[1 + (i % :nreps)] AS o
          FROM generate_series(1, :accounts) i) a
"""

LEADS = f"""
    INSERT INTO sales__lead (
        id, created_at, updated_at, created_by, version, company, contact_name, title, phone, email,
        region, industry, company_size, budget, source, campaign, site_visits, downloads, email_opens,
        events_attended, interest_level, urgency, asked_for_price, asked_for_demo, purchase_timeline,
        status, disqualify_reason, owner, handed_off_at, last_contacted_at, account,
        _dup_0, _dup_1, _dup_2, _merged_into)
    SELECT i, created, least(created + interval '1 hour' * floor(r5 * 500), now()),
           CASE WHEN r6 < 0.6 THEN CAST(:marketing AS bigint) ELSE owner END, 1,
           company, contact, (ARRAY['CEO', 'CTO', 'IT manager', 'Purchasing manager', 'Engineer'])[1 + i % 5],
           phone, email,
           (ARRAY['north_china', 'northeast', 'east_china', 'south_china', 'central_china', 'southwest',
                  'northwest', 'hk_macao_taiwan', 'overseas'])[1 + i % 9],
           (ARRAY['manufacturing', 'it_software', 'finance', 'retail', 'healthcare', 'education',
                  'energy', 'logistics', 'construction', 'government', 'other'])[1 + (i / 9) % 11],
           (ARRAY['1_49', '50_199', '200_999', '1000_plus'])[1 + (i / 99) % 4],
           round(CAST(r5 * 800000 AS numeric), -2), source, 'campaign-' || (i % 50),
           i % 20, i % 7, i % 30, i % 4, 1 + i % 5, 1 + (i / 5) % 5, i % 3 = 0, i % 4 = 0,
           (ARRAY['within_1_month', 'in_1_3_months', 'in_3_6_months', 'over_6_months', 'none'])[1 + i % 5],
           status,
           CASE WHEN status = 'disqualified' THEN
               (ARRAY['no_budget', 'no_need', 'bad_timing', 'chose_competitor', 'unreachable',
                      'invalid_info', 'duplicate', 'other'])[1 + i % 8] END,
           owner,
           CASE WHEN status IN ('sql', 'converted') THEN least(created + interval '2 days', now()) END,
           CASE WHEN status <> 'new' THEN least(created + interval '1 day', now()) END,
           CASE WHEN status = 'converted' THEN 1 + i % :accounts END,
           {sha40("email")},
           CASE WHEN phone IS NOT NULL THEN {sha40("phone")} END,
           {sha40("'company' || (i % 400000) || chr(31) || 'contact' || i")},
           CASE WHEN i % 100 = 0 THEN i - 1 END
    FROM (
        SELECT i, created, status, source, owner, r5, r6,
               'Company ' || (i % 400000) AS company, 'Contact ' || i AS contact,
               'contact' || i || '@company' || (i % 400000) || '.example.com' AS email,
               CASE WHEN i % 2 = 0 THEN '+86138' || lpad(CAST(i % 100000000 AS text), 8, '0') END AS phone
        FROM (
            SELECT i, now() - interval '730 days' * r1 AS created,
                   CASE WHEN r2 < .25 THEN 'new' WHEN r2 < .40 THEN 'contacted' WHEN r2 < .50 THEN 'mql'
                        WHEN r2 < .60 THEN 'sql' WHEN r2 < .80 THEN 'converted'
                        ELSE 'disqualified' END AS status,
                   (CAST(:sources AS text[]))[1 + floor(16 * power(r3, 1.5))::int] AS source,
                   (CAST(:reps AS bigint[]))[1 + floor(:nreps * power(r4, 1.3))::int] AS owner, r5, r6
            FROM (SELECT i, random() r1, random() r2, random() r3, random() r4, random() r5, random() r6
                  FROM generate_series(1, :leads) i) a
        ) b
    ) c
"""

# new → contacted → MQL → SQL → converted; disqualified from any of the first four.
# Even ids pass through `contacted` on their way to MQL, odd ones reach MQL straight from new.
LEAD_PATH = """
    CASE WHEN t.id % 2 = 0 THEN ARRAY['contacted'] ELSE ARRAY[]::text[] END || CASE t.status
        WHEN 'new' THEN ARRAY[]::text[]
        WHEN 'contacted' THEN ARRAY['contacted']
        WHEN 'mql' THEN ARRAY['mql']
        WHEN 'sql' THEN ARRAY['mql', 'sql']
        WHEN 'converted' THEN ARRAY['mql', 'sql', 'converted']
        ELSE (CASE t.id % 4 WHEN 0 THEN ARRAY[]::text[] WHEN 1 THEN ARRAY[]::text[]
                            WHEN 2 THEN ARRAY['mql'] ELSE ARRAY['mql', 'sql'] END) || ARRAY['disqualified']
    END
"""
LEAD_ACTIONS = {
    "contacted": "contact",
    "mql": "reach_mql",
    "sql": "hand_off",
    "converted": "convert",
    "disqualified": "disqualify",
}

OPPORTUNITIES = """
    WITH converted AS (
        SELECT row_number() OVER (ORDER BY id) AS i, id, company, account, owner, created_at
        FROM sales__lead WHERE status = 'converted' AND _merged_into IS NULL ORDER BY id LIMIT :opportunities
    )
    INSERT INTO sales__opportunity (id, created_at, updated_at, created_by, version, name, account, lead,
                                    amount, expected_close_date, stage, probability, owner, loss_reason)
    SELECT i, c, c, o, 1, name, account, lead, amount, CAST(c + interval '90 days' AS date), stage,
           CASE stage WHEN 'needs_analysis' THEN 0.1 WHEN 'solution' THEN 0.3 WHEN 'presentation' THEN 0.5
                      WHEN 'negotiation' THEN 0.7 WHEN 'won' THEN 1 ELSE 0 END,
           o,
           CASE WHEN stage = 'lost' THEN
               (ARRAY['price', 'features', 'competitor', 'no_budget', 'no_decision', 'timing',
                      'other'])[1 + i % 7]
           END
    FROM (
        SELECT g.i, coalesce(v.company, 'Company ' || g.i) AS name,
               coalesce(v.account, 1 + g.i % :accounts) AS account, v.id AS lead,
               coalesce(v.owner,
                        (CAST(:reps AS bigint[]))[1 + floor(:nreps * power(random(), 1.3))::int]) AS o,
               coalesce(least(v.created_at + interval '3 days', now()),
                        now() - interval '730 days' * random()) AS c,
               round(CAST(10000 + 1990000 * power(random(), 3) AS numeric), 2) AS amount,
               CASE WHEN r < .20 THEN 'needs_analysis' WHEN r < .35 THEN 'solution'
                    WHEN r < .47 THEN 'presentation' WHEN r < .57 THEN 'negotiation'
                    WHEN r < .80 THEN 'won' ELSE 'lost' END AS stage
        FROM (SELECT i, random() AS r FROM generate_series(1, :opportunities) i) g
        LEFT JOIN converted v ON v.i = g.i
    ) x
"""
OPPORTUNITY_PATH = """
    CASE t.stage
        WHEN 'needs_analysis' THEN ARRAY[]::text[]
        WHEN 'solution' THEN ARRAY['solution']
        WHEN 'presentation' THEN ARRAY['solution', 'presentation']
        WHEN 'negotiation' THEN ARRAY['solution', 'presentation', 'negotiation']
        WHEN 'won' THEN ARRAY['solution', 'presentation', 'negotiation', 'won']
        ELSE (CASE t.id % 4 WHEN 0 THEN ARRAY[]::text[] WHEN 1 THEN ARRAY['solution']
                            WHEN 2 THEN ARRAY['solution', 'presentation']
                            ELSE ARRAY['solution', 'presentation', 'negotiation'] END) || ARRAY['lost']
    END
"""
OPPORTUNITY_ACTIONS = {
    "solution": "propose_solution",
    "presentation": "present",
    "negotiation": "negotiate",
    "won": "win",
    "lost": "lose",
}

QUOTES = """
    INSERT INTO sales__quote (id, created_at, updated_at, created_by, version, number, opportunity, account,
                              valid_until, status, owner, tax_rate, grand_total, max_discount_pct)
    SELECT id, c, c, owner, 1, 'QT-' || to_char(c, 'YYYY') || '-' || lpad(CAST(id AS text), 7, '0'), id,
           account, CAST(c + interval '30 days' AS date),
           CASE WHEN r < .10 THEN 'draft' WHEN r < .15 THEN 'pending_approval' WHEN r < .20 THEN 'approved'
                WHEN r < .35 THEN 'sent' WHEN r < .80 THEN 'accepted' WHEN r < .90 THEN 'rejected'
                ELSE 'expired' END,
           owner, 0.13, round(amount * 1.13, 2), 0.05 * (id % 4)
    FROM (SELECT o.*, random() AS r, least(o.created_at + interval '7 days' * (1 + random()), now()) AS c
          FROM sales__opportunity o) q
"""

CONTRACTS = """
    INSERT INTO sales__contract (id, created_at, updated_at, created_by, version, number, subject, quote,
                                 opportunity, account, template, status, owner, amount, delivery_date,
                                 signed_at)
    SELECT id, c, c, owner, 1, 'CT-' || to_char(c, 'YYYY') || '-' || lpad(CAST(id AS text), 7, '0'),
           'Contract with ' || name, id, id, account, 'standard_sales', status, owner, amount,
           CAST(c + interval '60 days' AS date),
           CASE WHEN status IN ('signed', 'active', 'completed', 'terminated')
                THEN least(c + interval '1 day' * (5 + 30 * random()), now()) END
    FROM (
        SELECT o.id, o.name, o.account, o.owner, round(coalesce(o.amount, 50000) * 1.13, 2) AS amount,
               least(o.created_at + interval '14 days', now()) AS c,
               CASE WHEN r < .04 THEN 'draft' WHEN r < .07 THEN 'in_approval' WHEN r < .09 THEN 'approved'
                    WHEN r < .11 THEN 'out_for_signature' WHEN r < .30 THEN 'signed'
                    WHEN r < .60 THEN 'active' WHEN r < .85 THEN 'completed'
                    WHEN r < .92 THEN 'terminated' ELSE 'expired' END AS status
        FROM (SELECT o.*, random() AS r FROM sales__opportunity o) o
    ) x
"""
CONTRACT_PATH = """
    CASE t.status
        WHEN 'draft' THEN ARRAY[]::text[]
        WHEN 'in_approval' THEN ARRAY['in_approval']
        WHEN 'approved' THEN ARRAY['in_approval', 'approved']
        WHEN 'out_for_signature' THEN ARRAY['in_approval', 'approved', 'out_for_signature']
        WHEN 'signed' THEN ARRAY['in_approval', 'approved', 'out_for_signature', 'signed']
        WHEN 'active' THEN ARRAY['in_approval', 'approved', 'out_for_signature', 'signed', 'active']
        WHEN 'completed' THEN
            ARRAY['in_approval', 'approved', 'out_for_signature', 'signed', 'active', 'completed']
        WHEN 'terminated' THEN
            ARRAY['in_approval', 'approved', 'out_for_signature', 'signed', 'active', 'terminated']
        ELSE ARRAY['in_approval', 'approved', 'expired']
    END
"""
CONTRACT_ACTIONS = {
    "in_approval": "submit",
    "approved": "approve",
    "out_for_signature": "send_for_signature",
    "signed": "sign",
    "active": "activate",
    "completed": "complete",
    "terminated": "terminate",
    "expired": "expire",
}

ORDERS = """
    WITH signed AS (
        SELECT row_number() OVER (ORDER BY id) AS i, id, account, owner, amount, signed_at
        FROM sales__contract WHERE signed_at IS NOT NULL ORDER BY id LIMIT :orders
    )
    INSERT INTO sales__sales_order (id, created_at, updated_at, created_by, version, number, contract,
                                    account, status, owner, amount, delivery_date)
    SELECT i, c, c, o, 1, 'SO-' || to_char(c, 'YYYY') || '-' || lpad(CAST(i AS text), 7, '0'), contract,
           account,
           CASE WHEN r < .10 THEN 'confirmed' WHEN r < .20 THEN 'in_production' WHEN r < .25 THEN 'ready'
                WHEN r < .35 THEN 'shipped' WHEN r < .50 THEN 'delivered' WHEN r < .65 THEN 'accepted'
                ELSE 'closed' END,
           o, amount, CAST(c + interval '1 day' * (30 + floor(90 * random())) AS date)
    FROM (
        SELECT g.i, g.r, s.id AS contract, coalesce(s.account, 1 + g.i % :accounts) AS account,
               coalesce(s.owner,
                        (CAST(:reps AS bigint[]))[1 + floor(:nreps * power(random(), 1.3))::int]) AS o,
               coalesce(s.amount, round(CAST(10000 + 990000 * power(random(), 3) AS numeric), 2)) AS amount,
               coalesce(s.signed_at, now() - interval '730 days' * random()) AS c
        FROM (SELECT i, random() AS r FROM generate_series(1, :orders) i) g
        LEFT JOIN signed s ON s.i = g.i
    ) x
"""

# Two milestones per order: 30% fifteen days after the order, 70% on delivery. Past due:
# paid or overdue (the workflow's timer makes an unpaid milestone overdue a day after its
# due date); not yet due: open, invoiced, partly paid or paid early.
MILESTONES = """
    INSERT INTO sales__payment_milestone (id, created_at, updated_at, created_by, version, sales_order,
                                          contract, name, percent, amount, due_date, paid_amount, balance,
                                          status, owner)
    SELECT id, created_at, created_at, owner, 1, sales_order, contract, name, percent, amount, due_date,
           paid, amount - coalesce(paid, 0), status, owner
    FROM (
        SELECT id, created_at, owner, sales_order, contract, name, percent, amount, due_date, status,
               CASE status WHEN 'paid' THEN amount WHEN 'partly_paid' THEN round(amount * 0.4, 2)
                           ELSE 0 END AS paid
        FROM (
            SELECT 2 * o.id - 1 + k.n AS id, o.created_at, o.owner, o.id AS sales_order, o.contract,
                   k.name, k.percent, round(coalesce(o.amount, 0) * k.percent, 2) AS amount,
                   CASE k.n WHEN 0 THEN CAST(timezone(:zone, o.created_at) AS date) + 15
                            ELSE o.delivery_date END AS due_date,
                   CASE WHEN (CASE k.n WHEN 0 THEN CAST(timezone(:zone, o.created_at) AS date) + 15
                                       ELSE o.delivery_date END) < CAST(:today AS date) - 1
                        THEN CASE WHEN r < .94 THEN 'paid' ELSE 'overdue' END
                        ELSE CASE WHEN r < .50 THEN 'open' WHEN r < .80 THEN 'invoiced'
                                  WHEN r < .85 THEN 'partly_paid' ELSE 'paid' END
                   END AS status
            FROM sales__sales_order o
            CROSS JOIN (VALUES (0, 'Prepayment', 0.3), (1, 'On delivery', 0.7)) AS k(n, name, percent)
            CROSS JOIN LATERAL (SELECT random() + 0 * o.id + 0 * k.n AS r) x
        ) m
    ) p
"""
MILESTONE_PATH = """
    CASE t.status
        WHEN 'open' THEN ARRAY[]::text[]
        WHEN 'invoiced' THEN ARRAY['invoiced']
        WHEN 'partly_paid' THEN ARRAY['invoiced', 'partly_paid']
        WHEN 'overdue' THEN CASE WHEN t.id % 2 = 0 THEN ARRAY['overdue'] ELSE ARRAY['invoiced', 'overdue'] END
        ELSE CASE t.id % 10 WHEN 0 THEN ARRAY['overdue', 'invoiced', 'paid'] WHEN 1 THEN ARRAY['paid']
                            WHEN 2 THEN ARRAY['paid'] ELSE ARRAY['invoiced', 'paid'] END
    END
"""
MILESTONE_ACTIONS = {
    "invoiced": "invoice",
    "partly_paid": "mark_partly_paid",
    "paid": "mark_paid",
    "overdue": "mark_overdue",
}

INDEXES = """
    SELECT c.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    WHERE t.relname = ANY(:tables) AND t.relnamespace = to_regnamespace(current_schema())
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY t.relname, c.relname
"""

TABLES = (
    "sales__account",
    "sales__lead",
    "sales__opportunity",
    "sales__quote",
    "sales__contract",
    "sales__sales_order",
    "sales__payment_milestone",
    "formloom_audit",
)


def generation_steps() -> list[tuple[str, str]]:
    """(what, SQL) in the order they run."""
    return [
        ("accounts", ACCOUNTS),
        ("leads", LEADS),
        ("lead history", history_sql("lead", "sales__lead", LEAD_PATH, "new", LEAD_ACTIONS)),
        ("opportunities", OPPORTUNITIES),
        (
            "opportunity history",
            history_sql(
                "opportunity", "sales__opportunity", OPPORTUNITY_PATH, "needs_analysis", OPPORTUNITY_ACTIONS
            ),
        ),
        ("quotes", QUOTES),
        ("contracts", CONTRACTS),
        (
            "contract history",
            history_sql("contract", "sales__contract", CONTRACT_PATH, "draft", CONTRACT_ACTIONS),
        ),
        ("sales orders", ORDERS),
        ("payment milestones", MILESTONES),
        (
            "milestone history",
            history_sql(
                "payment_milestone", "sales__payment_milestone", MILESTONE_PATH, "open", MILESTONE_ACTIONS
            ),
        ),
        (
            "create rows",
            ";".join(
                created_sql(form, f"sales__{form}", status, initial)
                for form, status, initial in (
                    ("lead", "status", "new"),
                    ("opportunity", "stage", "needs_analysis"),
                    ("quote", "status", "draft"),
                    ("contract", "status", "draft"),
                    ("sales_order", "status", "confirmed"),
                    ("payment_milestone", "status", "open"),
                )
            ),
        ),
    ]


# ------------------------------------------------------------- the cases and hand-written SQL


@dataclass
class Case:
    """One measurement: a widget, with or without a date range, as the admin or as a rep."""

    widget: str
    ranged: bool
    rep: bool = False
    formloom: list[float] = field(default_factory=list)
    hand: list[float] = field(default_factory=list)
    its_sql: list[float] = field(default_factory=list)  # Formloom's statement alone, executed and fetched
    rows: int = 0
    problem: str | None = None
    statement: tuple[str, Any] | None = None

    @property
    def name(self) -> str:
        return ("rep: " if self.rep else "") + self.widget

    @property
    def ratio(self) -> float:
        return statistics.median(self.formloom) / statistics.median(self.hand)


def hand_sql(widget: str, ranged: bool, scoped: bool) -> str:
    """The statement a developer would write for the widget (bound: :start, :end, :me, :today)."""

    def cond(alias: str = "", date: str = "created_at") -> str:
        prefix = f"{alias}." if alias else ""
        found = f" AND {prefix}{date} >= :start AND {prefix}{date} < :end" if ranged else ""
        if scoped:
            found += f" AND ({prefix}created_by = :me OR {prefix}owner = :me)"
        return found

    if widget == "funnel":
        moved = (
            "SELECT record_id FROM formloom_audit WHERE app = 'sales' AND form = '{}' "
            "AND action = 'transition' AND changes ->> 'to' = '{}'"
        )
        return f"""
            SELECT count(*),
                   count(*) FILTER (WHERE l.status = 'mql' OR l.id IN ({moved.format("lead", "mql")})),
                   count(*) FILTER (WHERE l.status = 'sql' OR l.id IN ({moved.format("lead", "sql")})),
                   (SELECT count(*) FROM sales__opportunity o WHERE true{cond("o")}),
                   (SELECT count(*) FROM sales__quote q WHERE true{cond("q")}),
                   (SELECT count(*) FROM sales__contract c
                    WHERE (c.status = 'signed' OR c.id IN ({moved.format("contract", "signed")})){cond("c")}),
                   (SELECT count(*) FROM sales__sales_order so WHERE true{cond("so")}),
                   (SELECT count(*) FROM sales__payment_milestone pm
                    WHERE (pm.status = 'paid'
                           OR pm.id IN ({moved.format("payment_milestone", "paid")})){cond("pm")})
            FROM sales__lead l WHERE l._merged_into IS NULL{cond("l")}
        """
    if widget == "leads_by_channel":
        return f"""
            SELECT source, count(*) AS leads, count(*) FILTER (WHERE status = 'converted') AS converted,
                   CAST(count(*) FILTER (WHERE status = 'converted') AS float8) / nullif(count(*), 0)
            FROM sales__lead WHERE _merged_into IS NULL{cond()}
            GROUP BY source ORDER BY leads DESC, source
        """
    if widget == "pipeline_by_stage":
        return f"""
            SELECT stage, count(*), sum(amount) FROM sales__opportunity
            WHERE stage <> 'lost'{cond()} GROUP BY stage ORDER BY stage
        """
    if widget == "won_revenue_by_month":
        return f"""
            SELECT to_char(signed_at AT TIME ZONE '{ZONE}', 'YYYY-MM') AS month, sum(amount), count(*)
            FROM sales__contract
            WHERE status IN ('signed', 'active', 'completed')
              AND signed_at IS NOT NULL{cond(date="signed_at")}
            GROUP BY month ORDER BY month
        """
    if widget == "ar_aging":
        return f"""
            SELECT CASE WHEN :today - due_date <= 30 THEN '0-30' WHEN :today - due_date <= 60 THEN '31-60'
                        WHEN :today - due_date <= 90 THEN '61-90' ELSE '90+' END AS age,
                   sum(balance), count(*)
            FROM sales__payment_milestone WHERE status <> 'paid'{cond()}
            GROUP BY age ORDER BY age
        """
    if widget == "overdue":
        return f"""
            SELECT m.sales_order, m.name, o.number, sum(m.balance), min(m.due_date)
            FROM sales__payment_milestone m JOIN sales__sales_order o ON o.id = m.sales_order
            WHERE m.status = 'overdue'{cond("m")}
            GROUP BY m.sales_order, m.name, o.number
            ORDER BY min(m.due_date), m.sales_order, m.name
            LIMIT 500
        """
    if widget == "rep_performance":
        return f"""
            WITH per_rep AS (
                SELECT owner, count(*) AS opportunities, count(*) FILTER (WHERE stage = 'won') AS won,
                       sum(amount) FILTER (WHERE stage = 'won') AS won_amount
                FROM sales__opportunity WHERE true{cond()} GROUP BY owner
            ), ranked AS (
                SELECT *, row_number() OVER (ORDER BY won_amount DESC NULLS LAST, owner) AS rank FROM per_rep
            )
            SELECT r.owner, u.display_name, r.opportunities, r.won, r.won_amount,
                   CAST(r.won AS float8) / nullif(r.opportunities, 0), r.rank
            FROM ranked r LEFT JOIN formloom_users u ON u.id = r.owner WHERE r.rank <= 10
            UNION ALL
            SELECT NULL, NULL, sum(opportunities), sum(won), sum(won_amount),
                   CAST(sum(won) AS float8) / nullif(sum(opportunities), 0), 11
            FROM ranked WHERE rank > 10 HAVING count(*) > 0
            ORDER BY 7
        """
    if widget == "team_performance":
        return f"""
            SELECT d.id, d.name, count(*), sum(o.amount) FILTER (WHERE o.stage = 'won') AS won_amount
            FROM sales__opportunity o
            LEFT JOIN formloom_users u ON u.id = o.owner
            LEFT JOIN formloom_departments d ON d.id = u.department_id
            WHERE true{cond("o")}
            GROUP BY d.id, d.name ORDER BY won_amount DESC NULLS LAST, d.id
        """
    if widget == "leads_this_period":
        return f"SELECT count(*) FROM sales__lead WHERE _merged_into IS NULL{cond()}"
    raise KeyError(widget)


# ------------------------------------------------------------------------- comparing results


def plain(value: Any) -> Any:
    """A value in a comparable form: numbers as float or int, dates as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def formloom_rows(data: dict[str, Any], displayed: list[bool]) -> list[list[Any]]:
    """Formloom's answer as plain rows: dimension values, displays of users, teams and links, measures."""
    if data["chart"] == "funnel":
        return [[row["values"][0]] for row in data["rows"]]
    found = []
    for row in data["rows"]:
        dims = row["dimensions"]
        values = [None if d.get("other") else d["value"] for d in dims]
        pairs = zip(dims, displayed, strict=True)
        shown = [None if d.get("other") else d["display"] for d, has in pairs if has]
        found.append([plain(v) for v in values + shown + list(row["values"])])
    return found


def hand_rows(widget: str, rows: list[Any]) -> list[list[Any]]:
    """The hand-written answer in the same shape."""
    if widget == "funnel":
        return [[int(v)] for v in rows[0]]
    if widget == "rep_performance":
        return [[plain(v) for v in row[:-1]] for row in rows]  # without the rank
    return [[plain(v) for v in row] for row in rows]


def same(a: list[list[Any]], b: list[list[Any]]) -> str | None:
    """None when equal (floats within 1e-4 absolute or 1e-9 relative), else the first difference."""
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for number, (left, right) in enumerate(zip(a, b, strict=True)):
        if len(left) != len(right):
            return f"row {number}: {left} against {right}"
        for x, y in zip(left, right, strict=True):
            if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-4):
                    return f"row {number}: {left} against {right}"
            elif x != y:
                return f"row {number}: {left} against {right}"
    return None


# ------------------------------------------------------------------------------- the bench


class Bench:
    """The published pack, its data, and both ways of answering each widget."""

    def __init__(self, url: str, folder: Path, args: argparse.Namespace) -> None:
        self.url, self.folder, self.args = url, folder, args
        self.problems: list[str] = []
        self.sizes: dict[str, tuple[int, int]] = {}

    # -- set-up --------------------------------------------------------------------------

    def publish(self) -> float:
        """`formloom publish definitions/sales --db URL`; then the runtime on the published pack."""
        from runtime.boot import start

        began = time.perf_counter()
        command = [
            sys.executable, "-m", "builder.cli", "publish", str(PACK), "--db", self.url,
            "--author", "bench", "--backups", str(self.folder / "backups"),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if done.returncode:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            self.problems.append(
                f"`formloom publish` failed on the empty schema ({' '.join(last)}); "
                "the tables were created by the runtime's first start instead"
            )
            print(f"  formloom publish failed: {' '.join(last)}", flush=True)
            print("  (the runtime's first start creates the tables instead)", flush=True)
        self.runtime = start([PACK], self.url, self.folder / "files")
        self.engine = self.runtime.engine
        return time.perf_counter() - began

    def users(self) -> None:
        """The demo users and departments, and `--reps` - 2 more reps split between the two sales teams."""
        from sqlalchemy import select

        from runtime.db import write
        from runtime.identity.directory import create_user
        from runtime.schema.system import user_roles, users
        from runtime.seed import demo_file, seed_users

        path = demo_file(PACK, "users.yaml")
        assert path is not None
        seed_users(self.runtime.service, path)
        with write(self.engine) as conn:
            for n in range(3, self.args.reps + 1):
                team = "sales_east" if n % 2 else "sales_south"
                create_user(conn, f"rep{n:02d}", None, f"Rep {n:02d}", ("sales_rep",), team, "en")
            reps = conn.execute(
                select(users.c.id)
                .join(user_roles, user_roles.c.user_id == users.c.id)
                .where(user_roles.c.role == "sales_rep")
                .order_by(users.c.id)
            ).scalars()
            self.reps = [int(r) for r in reps]
            ids = {r.username: int(r.id) for r in conn.execute(select(users.c.username, users.c.id))}
        self.marketing, self.admin_id, self.rep_id = ids["wu.marketing"], ids["admin"], ids[REP]
        self.reps.sort(key=lambda r: r != self.rep_id)  # the timed rep first: the most records

    def generate(self) -> float:
        """Every table filled with set-based SQL, then vacuumed and analysed."""
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        leads = self.args.leads
        binds = {
            "leads": leads,
            "accounts": max(1, leads // 10),
            "opportunities": max(1, leads // 5),
            "orders": max(1, leads // 5),
            "reps": self.reps,
            "nreps": len(self.reps),
            "marketing": self.marketing,
            "sources": list(SOURCES),
            "zone": ZONE,
            "today": self.today,
        }
        began = time.perf_counter()
        with self.engine.connect() as conn:
            conn.execute(text("SELECT setseed(0.42)"))
            conn.execute(text("SET maintenance_work_mem = '256MB'"))
            conn.commit()
            try:  # skip the foreign-key triggers while loading (the data is generated consistent)
                conn.execute(text("SET session_replication_role = replica"))
                conn.commit()
            except DBAPIError:
                conn.rollback()
            # Indexes not behind a constraint are dropped while loading and built again after:
            # the same indexes, built at once instead of row by row.
            indexes = conn.execute(text(INDEXES), {"tables": list(TABLES)}).all()
            for name, _ in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
            conn.commit()
            for what, sql in generation_steps():
                step = time.perf_counter()
                count = 0
                for statement in sql.split(";"):
                    used = {k: v for k, v in binds.items() if f":{k}" in statement}
                    count += conn.execute(text(statement), used).rowcount
                conn.commit()
                print(f"  {what:<20} {count:>10,} rows  {time.perf_counter() - step:6.1f} s", flush=True)
            step = time.perf_counter()
            for _, definition in indexes:
                conn.execute(text(definition))
            for table in TABLES:
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
                )
            conn.execute(text("RESET session_replication_role"))
            conn.execute(text("RESET maintenance_work_mem"))
            conn.commit()
            spent = time.perf_counter() - step
            print(f"  {'indexes':<20} {len(indexes):>10,}       {spent:6.1f} s", flush=True)
        step = time.perf_counter()
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in (*TABLES, "formloom_users", "formloom_departments", "formloom_user_roles"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
            for table in TABLES:
                rows, size = conn.execute(
                    text(f"SELECT (SELECT count(*) FROM {table}), pg_total_relation_size('{table}')")
                ).one()
                self.sizes[table] = (int(rows), int(size))
        print(f"  {'vacuum analyze':<20} {'':>10}       {time.perf_counter() - step:6.1f} s", flush=True)
        return time.perf_counter() - began

    # -- measuring -----------------------------------------------------------------------

    def prepare(self) -> None:
        from runtime.identity.directory import load_actor
        from runtime.reports.service import ReportsService

        self.reports = ReportsService(self.runtime.service)
        with self.engine.connect() as conn:
            self.admin = load_actor(conn, self.admin_id)
            self.rep = load_actor(conn, self.rep_id)
            self.jit = str(conn.exec_driver_sql("SHOW jit").scalar_one())
        assert self.admin is not None and self.admin.admin and self.rep is not None
        app = self.runtime.service.apps[APP]
        self.app = app
        self.widgets = {w.key: w for w in app.app.dashboard(DASHBOARD).widgets}
        zone = ZoneInfo(ZONE)
        self.start = self.today - dt.timedelta(days=self.args.days)
        self.bounds = {
            "start": dt.datetime.combine(self.start, dt.time(0), tzinfo=zone),
            "end": dt.datetime.combine(self.today + dt.timedelta(days=1), dt.time(0), tzinfo=zone),
        }

    @property
    def today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(ZONE)).date()

    def displayed(self, widget: Any) -> list[bool]:
        """Which dimensions come with a display column (a user, a team, a linked record)."""
        if widget.source is None:
            return []
        form = self.app.form(widget.source)
        found = []
        for dim in widget.dimensions:
            spec = form.fields.get(str(dim.field)) if dim.field and "." not in str(dim.field) else None
            kind = spec.type if spec is not None else None
            found.append(dim.bucket is None and dim.expression is None and kind in ("user", "link"))
        return found

    def run_formloom(self, case: Case) -> tuple[float, Any]:
        pairs = [("from", self.start.isoformat()), ("to", self.today.isoformat())] if case.ranged else []
        actor = self.rep if case.rep else self.admin
        began = time.perf_counter()
        data = self.reports.data(APP, DASHBOARD, case.widget, pairs, actor)
        return time.perf_counter() - began, data

    def run_hand(self, case: Case) -> tuple[float, Any]:
        from sqlalchemy import text

        sql = hand_sql(case.widget, case.ranged, case.rep)
        binds: dict[str, Any] = {"today": self.today, "me": self.rep_id, **self.bounds}
        binds = {k: v for k, v in binds.items() if f":{k}" in sql}
        began = time.perf_counter()
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql), binds).all()
        return time.perf_counter() - began, rows

    def capture(self, case: Case) -> tuple[str, Any]:
        """The last statement Formloom runs for the case, with its parameters."""
        from sqlalchemy import event

        seen: list[tuple[str, Any]] = []

        def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
            seen.append((statement, parameters))

        event.listen(self.engine, "before_cursor_execute", note)
        try:
            self.run_formloom(case)
        finally:
            event.remove(self.engine, "before_cursor_execute", note)
        return seen[-1]

    def measure(self, case: Case) -> None:
        """Warm-up and check, then `--runs` alternating runs of each."""
        _, data = self.run_formloom(case)
        _, rows = self.run_hand(case)
        mine = formloom_rows(data, self.displayed(self.widgets[case.widget]))
        theirs = hand_rows(case.widget, rows)
        case.rows = len(mine)
        case.problem = same(mine, theirs)
        if case.problem:
            self.problems.append(f"{case.name} ({'range' if case.ranged else 'all'}): {case.problem}")
        case.statement = self.capture(case)
        runs = [(self.run_formloom, case.formloom), (self.run_hand, case.hand), (self.run_sql, case.its_sql)]
        for n in range(self.args.runs):
            for run, into in runs[n % 3 :] + runs[: n % 3]:  # each goes first in turn
                seconds, _ = run(case)
                into.append(seconds * 1000)

    def run_sql(self, case: Case) -> tuple[float, Any]:
        """Formloom's statement alone, through the same engine: the SQL's share of its time."""
        assert case.statement is not None
        statement, parameters = case.statement
        began = time.perf_counter()
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(statement, parameters).all()
        return time.perf_counter() - began, rows

    def explain(self, case: Case) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of both statements."""
        from sqlalchemy import text

        statement, parameters = case.statement or self.capture(case)
        sql = hand_sql(case.widget, case.ranged, case.rep)
        binds: dict[str, Any] = {"today": self.today, "me": self.rep_id, **self.bounds}
        with self.engine.connect() as conn:
            print(f"\n=== {case.name} ({'range' if case.ranged else 'all'}): Formloom's statement")
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).scalars()
            print("\n".join(plan))
            print(f"\n=== {case.name} ({'range' if case.ranged else 'all'}): hand-written")
            found = {k: v for k, v in binds.items() if f":{k}" in sql}
            print("\n".join(conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"), found).scalars()))


# ------------------------------------------------------------------------------- reporting


def report(bench: Bench, cases: list[Case], timings: dict[str, float]) -> bool:
    args = bench.args
    print()
    print("Dashboard widgets: ReportsService.data() vs hand-written SQL (PostgreSQL)")
    print(f"  database : PostgreSQL {bench.server} on {HOST}, a schema of its own, jit {bench.jit}")
    print(
        f"  machine  : {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average now {os.getloadavg()[0]:.2f}, {dt.date.today().isoformat()}"
    )
    print(f"  code     : {code_version()}")
    sizes = ", ".join(
        f"{table.removeprefix('sales__')} {rows:,} ({size / 2**20:.0f} MB)"
        for table, (rows, size) in bench.sizes.items()
    )
    print(f"  data     : {sizes}")
    print(
        f"  set-up   : publish and start {timings['publish']:.1f} s, users {timings['users']:.1f} s, "
        f"data {timings['generate']:.1f} s"
    )
    print(
        f"  runs     : {args.runs} alternating runs per case after a warm-up, median; range = "
        f"from {bench.start.isoformat()} to {bench.today.isoformat()} ({args.days} days); "
        f"rep = {REP} ({len(bench.reps)} reps in all)"
    )
    print()
    print(
        f"{'widget':<24}{'params':<7}{'rows':>6}{'formloom ms':>12}{'its SQL':>9}{'hand ms':>9}"
        f"{'ratio':>8}  check"
    )
    for case in cases:
        ratio = case.ratio
        flag = "" if ratio <= TARGET else "  > target"
        print(
            f"{case.name:<24}{'range' if case.ranged else 'all':<7}{case.rows:>6}"
            f"{statistics.median(case.formloom):>12.1f}{statistics.median(case.its_sql):>9.1f}"
            f"{statistics.median(case.hand):>9.1f}{ratio:>7.2f}×  "
            f"{'same' if case.problem is None else 'DIFFERENT'}{flag}"
        )
    print(
        "(its SQL: Formloom's statement executed and fetched alone; the rest of the formloom column is "
        "compiling the widget and shaping, labelling and linking the rows in Python)"
    )
    over = [c for c in cases if c.ratio > TARGET]
    print()
    print(
        f"{len(cases) - len(over)} of {len(cases)} cases within {TARGET}× "
        f"(median ratio {statistics.median(c.ratio for c in cases):.2f}×)"
    )
    for problem in bench.problems:
        print(f"PROBLEM: {problem}")
    return not any(c.problem for c in cases)


def code_version() -> str:
    """The commit of the working tree, and whether runtime/ has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "runtime", "builder"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return commit + (" with uncommitted changes in runtime/ or builder/" if dirty else "")


# ------------------------------------------------------------------------------------ main


@contextmanager
def database(url: str, options: str = "") -> Iterator[tuple[str, str]]:
    """A schema of our own on 127.0.0.1: (SQLAlchemy URL, server version); dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from runtime.db import resolve_url

    resolved = make_url(resolve_url(url))
    if resolved.get_backend_name() != "postgresql":
        raise SystemExit("this benchmark needs PostgreSQL (--db postgresql://…@127.0.0.1/…)")
    if resolved.host != HOST:
        raise SystemExit(f"refusing to talk to {resolved.host}: the benchmark only uses {HOST}")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(resolved, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        version = str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]
    scoped = resolved.update_query_dict({"options": f"-csearch_path={schema}{options}"})
    try:
        yield scoped.render_as_string(hide_password=False), version
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--db",
        default=os.environ.get("FORMLOOM_BENCH_PG", DEFAULT_URL),
        help="PostgreSQL URL on 127.0.0.1 (default: $FORMLOOM_BENCH_PG, else %(default)s)",
    )
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads (default: 1,000,000)")
    parser.add_argument("--reps", type=int, default=20, help="sales reps owning the records (default: 20)")
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per case (default: 5)")
    parser.add_argument("--days", type=int, default=90, help="the date range's length in days (default: 90)")
    parser.add_argument("--only", nargs="*", default=None, help="only these widgets")
    parser.add_argument(
        "--as-rep",
        nargs="*",
        default=["leads_by_channel"],
        help=f"widgets also timed as the sales rep {REP} (default: leads_by_channel)",
    )
    parser.add_argument(
        "--no-jit", action="store_true", help="both sides with jit = off (default: the server's setting)"
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the cases above the target")
    parser.add_argument("--timeout", type=float, default=1200, help="hard stop after these seconds")
    args = parser.parse_args(argv)
    if args.leads < 1000 or args.runs < 1 or args.reps < 2 or args.days < 1:
        parser.error("--leads must be at least 1000, --reps 2, --runs and --days 1")

    def watchdog() -> None:
        """Interrupt the run, so the schema is still dropped."""
        print(f"\nbenchmark still running after {args.timeout:.0f}s: stopping", file=sys.stderr)
        last_resort = threading.Timer(60, lambda: os._exit(2))
        last_resort.daemon = True
        last_resort.start()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()
    began = time.perf_counter()
    try:
        options = " -cjit=off" if args.no_jit else ""
        with database(args.db, options) as (url, server), tempfile.TemporaryDirectory() as folder:
            load = os.getloadavg()[0]
            print(f"PostgreSQL {server}, {os.cpu_count()} CPUs, load average {load:.2f}", flush=True)
            bench = Bench(url, Path(folder), args)
            bench.server = server
            timings = {"publish": bench.publish()}
            names = [w.key for w in bench.runtime.service.apps[APP].app.dashboard(DASHBOARD).widgets]
            unknown = sorted((set(args.only or []) | set(args.as_rep)) - set(names))
            if unknown:
                raise SystemExit(f"no such widget: {', '.join(unknown)} (widgets: {', '.join(names)})")
            step = time.perf_counter()
            bench.users()
            timings["users"] = time.perf_counter() - step
            print(f"published and started in {timings['publish']:.1f} s; generating data", flush=True)
            timings["generate"] = bench.generate()
            bench.prepare()
            keys = [k for k in bench.widgets if args.only is None or k in args.only]
            cases = [Case(k, ranged) for k in keys for ranged in (False, True)]
            cases += [Case(k, ranged, rep=True) for k in args.as_rep for ranged in (False, True)]
            for case in cases:
                bench.measure(case)
                print(
                    f"  {case.name:<24} {'range' if case.ranged else 'all':<6} "
                    f"{statistics.median(case.formloom):9.1f} ms {statistics.median(case.hand):9.1f} ms "
                    f"{case.ratio:6.2f}×" + ("" if case.problem is None else f"  DIFFERENT: {case.problem}"),
                    flush=True,
                )
            ok = report(bench, cases, timings)
            if args.explain:
                for case in cases:
                    if case.ratio > TARGET:
                        bench.explain(case)
            bench.engine.dispose()
    except KeyboardInterrupt:
        print("interrupted: the schema was dropped", file=sys.stderr)
        return 2
    finally:
        timer.cancel()
    print(f"\n(whole run: {time.perf_counter() - began:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
