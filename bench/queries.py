"""The benchmark's segment and its SQL forms, measured on the same data in one run.

* `complex_definition`: profile filters + count in a date range + did-not in the last 14 days
  + inaction within 10 minutes + sum of a property, compiled by the evaluator (one events scan).
* `PLAIN_SCAN_SQL`: a plain filtered scan of the same columns, grouped by user, every
  aggregate used (so the engine cannot skip reading a column): the floor any segment query
  over that data pays.
* `NAIVE_SQL`: the same definition as one subquery per clause (six: each yields the users of
  one clause), combined over the project's users as of the instant, the way a clause-by-clause
  engine runs it.
* `NAIVE_FOLDED_SQL`: the naive form with the two profile clauses folded into one driving
  scan of the profiles (four event subqueries): reported for comparison, not the goal's form.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.data import PROJECT
from libs.model import definition as m

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def complex_definition() -> m.PastBehaviorQuery:
    charged = m.EventSpec("Charged")
    return m.PastBehaviorQuery(
        root=m.Node(
            operator=m.BooleanOperator.AND,
            children=(
                m.Node(
                    condition=m.UserProperty(
                        m.PropertyFilter(
                            "city",
                            m.Comparison(m.ComparisonOperator.IN_LIST, ("New York", "Boston")),
                        )
                    )
                ),
                m.Node(
                    condition=m.UserProperty(
                        m.PropertyFilter(
                            "age", m.Comparison(m.ComparisonOperator.GREATER_THAN_OR_EQUAL, (21.0,))
                        )
                    )
                ),
                m.Node(
                    condition=m.DidEvent(
                        charged,
                        m.RangeWindow(
                            m.TimePoint(date=date(2026, 8, 1)), m.TimePoint(date=date(2026, 10, 1))
                        ),
                        m.Aggregate(
                            m.AggregateFunction.COUNT,
                            m.ComparisonOperator.GREATER_THAN_OR_EQUAL,
                            (2.0,),
                        ),
                    )
                ),
                m.Node(
                    condition=m.DidNotEvent(
                        charged, m.LastWindow(m.RelativeOffset(14, m.TimeUnit.DAY))
                    )
                ),
                m.Node(
                    condition=m.Inaction(
                        m.EventSpec("Added To Cart"),
                        charged,
                        m.LastWindow(m.RelativeOffset(90, m.TimeUnit.DAY)),
                        within=timedelta(minutes=10),
                    )
                ),
                m.Node(
                    condition=m.DidEvent(
                        charged,
                        m.LastWindow(m.RelativeOffset(180, m.TimeUnit.DAY)),
                        m.Aggregate(
                            m.AggregateFunction.SUM,
                            m.ComparisonOperator.GREATER_THAN_OR_EQUAL,
                            (100.0,),
                            property="amount",
                        ),
                    )
                ),
            ),
        )
    )


def naive_params() -> dict[str, Any]:
    return {
        "project": PROJECT,
        "as_of": AS_OF,
        "range_start": datetime(2026, 8, 1, tzinfo=UTC),
        "range_end": datetime(2026, 10, 1, tzinfo=UTC),
        "last14": AS_OF - timedelta(days=14),
        "last90": AS_OF - timedelta(days=90),
        "last180": AS_OF - timedelta(days=180),
        "cities": ["New York", "Boston"],
    }


# The rows the compiled segment reads (the same event names and the same earliest time per
# name), grouped by user; the outer query uses every aggregate, so that none of them (nor the
# column it reads) is pruned.
EVENTS_SCAN_SQL = """
SELECT count() + sum(c) + sum(s) + toUnixTimestamp(max(t)) FROM (
    SELECT user_id, count() AS c, sum(num_props['amount']) AS s, max(event_time) AS t
    FROM events
    WHERE project = {project:String} AND event_name IN ('Charged', 'Added To Cart')
      AND event_time <= {as_of:DateTime64(3)}
      AND ((event_name = 'Charged' AND event_time >= {last180:DateTime64(3)})
        OR (event_name = 'Added To Cart' AND event_time >= {last90:DateTime64(3)}))
    GROUP BY user_id
)"""


def scan_params() -> dict[str, Any]:
    p = naive_params()
    return {k: p[k] for k in ("project", "as_of", "last90", "last180")}


# The same columns as the segment reads: the events scan above plus the profile maps the
# profile filters read, with a filter that keeps every profile.
PLAIN_SCAN_SQL = (
    "SELECT ("  # noqa: S608 (constant text)
    + EVENTS_SCAN_SQL
    + """) + (
    SELECT count() FROM profiles FINAL
    WHERE project = {project:String}
      AND (str_props['city'] != 'x' OR num_props['age'] >= 0)
)"""
)

# The four behavioural clauses, each its own subquery (its own scan of `events`) yielding the
# users it holds for ("did not" yields the users who did, for NOT IN).
_EVENT_CLAUSES = """
  AND user_id IN (
    SELECT user_id FROM events
    WHERE project = {project:String} AND event_name = 'Charged'
      AND event_time >= {range_start:DateTime64(3)} AND event_time < {range_end:DateTime64(3)}
    GROUP BY user_id HAVING count() >= 2)
  AND user_id NOT IN (
    SELECT user_id FROM events
    WHERE project = {project:String} AND event_name = 'Charged'
      AND event_time >= {last14:DateTime64(3)} AND event_time <= {as_of:DateTime64(3)})
  AND user_id IN (
    SELECT a.user_id FROM (
      SELECT user_id, event_time FROM events
      WHERE project = {project:String} AND event_name = 'Added To Cart'
        AND event_time >= {last90:DateTime64(3)}
        AND event_time + INTERVAL 10 MINUTE <= {as_of:DateTime64(3)}) AS a
    LEFT JOIN (
      SELECT user_id, groupArray(event_time) AS times FROM events
      WHERE project = {project:String} AND event_name = 'Charged'
        AND event_time <= {as_of:DateTime64(3)}
      GROUP BY user_id) AS b ON a.user_id = b.user_id
    WHERE NOT arrayExists(t -> t > a.event_time AND t <= a.event_time + INTERVAL 10 MINUTE,
                          b.times))
  AND user_id IN (
    SELECT user_id FROM events
    WHERE project = {project:String} AND event_name = 'Charged'
      AND event_time >= {last180:DateTime64(3)} AND event_time <= {as_of:DateTime64(3)}
    GROUP BY user_id HAVING sum(num_props['amount']) >= 100)"""

# Six subqueries, one per clause, over the project's users as of the instant.
_NAIVE_HEAD = """
SELECT uniqExact(user_id) FROM users
WHERE project = {project:String} AND seen_at <= {as_of:DateTime64(3)}
  AND user_id IN (
    SELECT user_id FROM profiles FINAL
    WHERE project = {project:String} AND mapContains(str_props, 'city')
      AND str_props['city'] IN {cities:Array(String)})
  AND user_id IN (
    SELECT user_id FROM profiles FINAL
    WHERE project = {project:String} AND mapContains(num_props, 'age')
      AND num_props['age'] >= 21)"""
NAIVE_SQL = _NAIVE_HEAD + _EVENT_CLAUSES

# The two profile clauses folded into one driving scan of the profiles.
_FOLDED_HEAD = """
SELECT count() FROM profiles FINAL
WHERE project = {project:String}
  AND mapContains(str_props, 'city') AND str_props['city'] IN {cities:Array(String)}
  AND mapContains(num_props, 'age') AND num_props['age'] >= 21"""
NAIVE_FOLDED_SQL = _FOLDED_HEAD + _EVENT_CLAUSES
